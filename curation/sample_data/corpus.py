"""The offline corpus: screened prose packed into chunks, doctest blocks, summaries, foreign text.

It does not depend on the seed, so it is read once per process and cached.
"""

from __future__ import annotations

import doctest
import functools
import random
import re
import sysconfig
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import django

from curation.sample_data.base import _Chunk, _Corpus, _Section, normalize, shingles
from curation.sample_data.locales import _foreign_pool, _po_strings
from curation.sample_data.prose import (
    _clean_enough,
    _docstrings,
    _english_share,
    _reference_topics,
    _reflow,
)

CHUNK_MIN_WORDS = 50


OTHER_LANGUAGES = ("de", "es", "fr", "it", "pl", "pt", "ru")


@functools.lru_cache(maxsize=1)
def _load_corpus() -> _Corpus:
    """Read and screen the offline corpus once per process; it does not depend on the seed."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    django_root = Path(django.__file__).parent
    prose: list[tuple[str, str, str]] = []
    long_material: dict[str, str] = {}
    reserved_sections: list[tuple[str, str, str]] = []
    for source, qualname, doc, reserved in _docstrings(stdlib, django_root):
        if not reserved:
            prose.append((source, qualname, doc))
        elif normalize(doc) not in long_material:
            long_material[normalize(doc)] = _reflow(doc)
            if _clean_enough(doc, min_words=8) and ">>>" not in doc:
                reserved_sections.append((source, qualname, _reflow(doc)))
    prose.extend(_reference_topics())

    seen_text: set[str] = set()
    seen_shingles: set[tuple[str, ...]] = set()
    kept: list[tuple[str, str, str]] = []
    code_docs: list[tuple[str, str]] = []
    summaries: dict[str, tuple[str, str]] = {}
    for source, qualname, doc in prose:
        first = doc.split("\n\n")[0].split("\n")[0].strip()
        if _clean_enough(first, min_words=1) and "(" not in first:
            summaries.setdefault(normalize(first), (_qualified(source, qualname), first))
        key = normalize(doc)
        # A docstring about Django's {% lorem %} tag would put placeholder text in the sample.
        if key in seen_text or "lorem" in f"{source} {qualname} {key}".lower():
            continue
        seen_text.add(key)
        examples = _doctest_block(doc) if ">>>" in doc else ""
        if examples and not _repeats(examples, seen_shingles):
            code_docs.append((_qualified(source, qualname), examples))
        # Paragraphs of code, markup or tables are dropped rather than the whole docstring,
        # so examples and grammar rules do not cost the prose around them.
        paragraphs = []
        for paragraph in re.split(r"\n\s*\n", doc):
            if ">>>" in paragraph or not _clean_enough(paragraph, min_words=1):
                continue
            if not _repeats(paragraph, seen_shingles):
                paragraphs.append(_reflow(paragraph))
        body = "\n\n".join(paragraphs)
        if _clean_enough(body, min_words=8) and _english_share(body) >= 0.1:
            kept.append((source, qualname, body))

    foreign = {lang: tuple(_foreign_pool(django_root, lang)) for lang in OTHER_LANGUAGES}
    rtl = [
        s for lang in ("he", "ar") for s in _po_strings(django_root, lang) if len(s.split()) >= 4
    ]
    accented = [s for s in _po_strings(django_root, "fr") if len(s.split()) >= 4]
    accented = [s for s in accented if unicodedata.normalize("NFD", s) != s]
    return _Corpus(
        chunks=tuple(c for c in _pack(kept) if _english_share(c.text) >= 0.1),
        code=tuple(_pack_code(code_docs)),
        summaries=tuple(summaries[k] for k in sorted(summaries)),
        long_material=tuple(long_material.values()),
        long_chunks=tuple(_pack(reserved_sections)),
        foreign=foreign,
        rtl=tuple(rtl),
        accented=tuple(accented),
    )


def _repeats(text: str, seen: set[tuple[str, ...]]) -> bool:
    """Whether ``text`` mostly repeats earlier text; if not, remember its 5-grams in ``seen``.

    Overrides restate their base class, reference topics nest each other and examples are
    copied between functions; leaving such text out keeps the injected near duplicates the
    only ones in the sample.
    """
    grams = shingles(text)
    if len(grams & seen) > 0.3 * len(grams):
        return True
    seen |= grams
    return False


def _qualified(source: str, qualname: str) -> str:
    """``source`` extended by an object's dotted name (not by a reference topic's title)."""
    module = source.split(":", 1)[1]
    if qualname == module or not re.fullmatch(r"[\w.]+", qualname):
        return source
    return f"{source}.{qualname}"


def _pack(docs: Sequence[tuple[str, str, str]]) -> Iterator[_Chunk]:
    """Group consecutive docstrings of one module into reference-page chunks of 50+ words.

    Chunk sizes come from a generator seeded by the module name, so the pool does not depend
    on the sample's seed and can be cached.
    """
    by_module: dict[str, list[_Section]] = {}
    for source, qualname, doc in docs:
        by_module.setdefault(source, []).append(_Section(qualname, doc))
    for source, sections in by_module.items():
        sizer = random.Random(source)
        current: list[_Section] = []
        words = 0
        target = sizer.randint(CHUNK_MIN_WORDS, 150)
        for section in _split_long(sections):
            current.append(section)
            words += len(section.heading.split()) + len(section.body.split())
            if words >= target:
                yield _chunk(source, current)
                current, words = [], 0
                target = sizer.randint(CHUNK_MIN_WORDS, 150)
        if words >= CHUNK_MIN_WORDS:
            yield _chunk(source, current)


def _chunk(source: str, sections: list[_Section]) -> _Chunk:
    name = _qualified(source, sections[0].heading)
    if len(sections) > 1:
        name += f"+{len(sections) - 1}"
    return _Chunk(name, tuple(sections))


def _split_long(sections: Sequence[_Section]) -> Iterator[_Section]:
    """Cut long docstrings at paragraph breaks into pieces of about 150 words.

    Pieces after the first have no heading, so a chunk reads on from one to the next.
    """
    for section in sections:
        heading = section.heading
        piece: list[str] = []
        for paragraph in section.body.split("\n\n"):
            piece.append(paragraph)
            if sum(len(p.split()) for p in piece) >= 150:
                yield _Section(heading, "\n\n".join(piece))
                heading, piece = "", []
        if piece:
            yield _Section(heading, "\n\n".join(piece))


def _doctest_block(doc: str) -> str:
    try:
        examples = doctest.DocTestParser().get_examples(doc)
    except ValueError:
        return ""
    lines: list[str] = []
    for example in examples:
        source = example.source.rstrip("\n").split("\n")
        lines.append(f">>> {source[0]}")
        lines.extend(f"... {line}" for line in source[1:])
        lines.extend(example.want.rstrip("\n").split("\n") if example.want else [])
    return "\n".join(lines)


def _pack_code(blocks: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Join consecutive doctest blocks until each document has at least 12 lines."""
    current: list[str] = []
    first = ""
    for source, block in blocks:
        first = first or source
        current.append(block)
        if sum(b.count("\n") + 1 for b in current) >= 12:
            yield first, "\n\n".join(current)
            current, first = [], ""
