"""Other-language text: translated messages read from the gettext catalogs Django ships."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator
from pathlib import Path

import django

_PLACEHOLDER = re.compile(r"%|\{|\}|<|>|\\")


def _foreign_pool(django_root: Path, lang: str) -> Iterator[tuple[str, str]]:
    """Documents of 40-200 words made of consecutive translated messages of one catalog."""
    sizer = random.Random(f"po:{lang}")
    for path in _po_paths(django_root, lang):
        source = f"django-locale:{lang}:{path.relative_to(django_root.parent).as_posix()}"
        sentences: list[str] = []
        words = 0
        target = sizer.randint(40, 90)
        for text in _usable_messages(path):
            if text[-1] not in ".!?:;…":
                text += "."
            sentences.append(text)
            words += len(text.split())
            if words >= target:
                paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
                yield source, "\n\n".join(paragraphs)
                sentences, words = [], 0
                target = sizer.randint(40, 90)


def _po_paths(django_root: Path, lang: str) -> list[Path]:
    catalogs = [django_root / "conf" / "locale", *sorted(django_root.glob("contrib/*/locale"))]
    found = [p for c in catalogs for p in (c / lang / "LC_MESSAGES").glob("*.po")]
    return sorted(found, key=lambda p: p.relative_to(django_root).as_posix())


def _po_strings(django_root: Path, lang: str) -> list[str]:
    return [text for path in _po_paths(django_root, lang) for text in _usable_messages(path)]


@functools.cache
def _usable_messages(path: Path) -> tuple[str, ...]:
    """Translated sentences of at least three words, without placeholders or markup."""
    out: dict[str, None] = {}
    for msgid, msgstr in _parse_po(path):
        text = " ".join(msgstr.split())
        if msgid and text and text != msgid and len(text.split()) >= 3:
            if not _PLACEHOLDER.search(text):
                out.setdefault(text)
    return tuple(out)


def _parse_po(path: Path) -> Iterator[tuple[str, str]]:
    """(msgid, first msgstr) of each translated, non-fuzzy entry of a gettext catalog.

    Names of languages (the msgids of the LANGUAGES setting) are skipped: they are not prose.
    """
    entry: dict[str, str] = {}
    key = ""
    skip = False
    languages = _language_names()
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if entry and not skip and entry.get("msgid") not in languages:
                yield entry.get("msgid", ""), entry.get("msgstr", entry.get("msgstr[0]", ""))
            entry, key, skip = {}, "", False
        elif line.startswith("#,") and "fuzzy" in line:
            skip = True
        elif line.startswith("#"):
            continue
        elif line.startswith('"') and key:
            entry[key] += _po_unquote(line)
        else:
            head, _, value = line.partition(" ")
            if value.startswith('"'):
                key = head
                entry[key] = _po_unquote(value)


@functools.lru_cache(maxsize=1)
def _language_names() -> frozenset[str]:
    settings = Path(django.__file__).parent / "conf" / "global_settings.py"
    return frozenset(re.findall(r'gettext_noop\("([^"]+)"\)', settings.read_text(encoding="utf-8")))


_PO_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _po_unquote(quoted: str) -> str:
    """The value of a C-style quoted gettext string (unknown escapes keep their letter)."""
    return re.sub(r"\\(.)", lambda m: _PO_ESCAPES.get(m.group(1), m.group(1)), quoted[1:-1])
