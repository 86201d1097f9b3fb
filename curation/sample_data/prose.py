"""English prose read from the standard library and Django sources, and the screens it passes.

Docstrings and comment blocks are read with :mod:`ast` and a regex (nothing is imported), the
Language Reference topics from ``pydoc_data.topics``.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path

# Parsing, not importing, keeps these harmless; they are still left out of the prose pool because
# their docstrings are test fixtures, demos, generated data or deprecated tooling (pydoc_data's
# topics are read as data by _reference_topics instead).
_SKIPPED_PARTS = frozenset(
    {
        "__pycache__",
        "test",
        "tests",
        "idle_test",
        "turtledemo",
        "lib2to3",
        "distutils",
        "ensurepip",
        "pydoc_data",
        "encodings",
        "site-packages",
        "dist-packages",
        "antigravity.py",
        "this.py",
        "__hello__.py",
        "__phello__",
        "lorem_ipsum.py",
    }
)


# Big modules reserved as material for the very long documents, so that these never repeat
# the text of a clean document; list, symbol and ellipsis documents reuse it, transformed.
_LONG_MATERIAL = frozenset({"turtle.py", "tkinter", "idlelib", "_pydecimal.py"})


_HTML_TAG = re.compile(
    r"</?(?:a|b|i|p|br|em|hr|li|ol|ul|td|th|tr|div|img|pre|code|span|form|html|body|head|"
    r"input|label|table|select|option|script|strong|textarea|h[1-6])\b[^<>]*>",
    re.IGNORECASE,
)


_BLOCK_LINE = re.compile(r"^(?:\s|[-*•+|]\s|\d+[.)]\s|>>>|\.\.\.|[-=~^*#]{3,}\s*$|\S+\s+--?\s)")


_UNDERLINE = re.compile(r"^\s*([*=~^-])\1{2,}\s*$")


_NOT_PROSE = re.compile(
    r"copyright|licen[cs]e|all rights reserved|-\*-|noqa|type: ?ignore|pragma|fmt: |XXX|TODO",
    re.IGNORECASE,
)


_PROSE_WORD = re.compile(r"^[(\"']?[A-Za-z][a-z']*[)\"']?[,.;:!?]?[)\"']?$")


_COMMENT_RUN = re.compile(r"(?m)(?:^[ \t]*#(?!!).*(?:\n|\Z))+")


_NON_ALPHA_WORD = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")


# Two spaces after a sentence are old typing habit; elsewhere they align table columns.
_ALIGNED = re.compile(r"(?<![.!?:)\"']) {2,}|\t")


# English function words that are rare in the other languages of the sample.
_STOP_WORDS = frozenset(
    "the of and to is that it for with this be are if by from not which when will should can "
    "has have was were been".split()
)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _docstrings(stdlib: Path, django_root: Path) -> Iterator[tuple[str, str, str, bool]]:
    """Yield (source, qualname, docstring, reserved_for_long) in a fixed, sorted order."""
    roots = ((stdlib, "stdlib", stdlib), (django_root, "django", django_root.parent))
    for root, label, base in roots:
        for path in _python_files(root):
            rel = path.relative_to(root)
            reserved = label == "stdlib" and rel.parts[0] in _LONG_MATERIAL
            module = ".".join(path.relative_to(base).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            try:
                text = path.read_text(encoding="utf-8")
                tree = ast.parse(text)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for qualname, doc in _walk(tree, module):
                yield f"{label}:{module}", qualname, doc, reserved
            for block in _comment_blocks(text):
                yield f"{label}-comments:{module}", "", block, reserved


def _comment_blocks(source: str) -> Iterator[str]:
    """Runs of whole-line comments that read as prose, joined into one paragraph each.

    Licence headers and commented-out code are left out: the first would look like injected
    boilerplate, the second is not prose.
    """
    for match in _COMMENT_RUN.finditer(source):
        lines = match.group().split("\n")
        text = " ".join(" ".join(line.strip().lstrip("#") for line in lines).split())
        words = text.split()
        if len(words) < 20 or _NOT_PROSE.search(text):
            continue
        if sum(1 for w in words if _PROSE_WORD.match(w)) >= 0.7 * len(words):
            yield text


def _reference_topics() -> Iterator[tuple[str, str, str]]:
    """Sections of the Python Language Reference that pydoc ships as plain text."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for key in sorted(topics):
        lines = topics[key].strip().split("\n")
        body = "\n".join(line for line in lines[1:] if not _UNDERLINE.match(line))
        yield f"stdlib:pydoc_data.topics.{key}", lines[0].strip(), inspect.cleandoc(body)


def _python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Only packages are entered, which leaves out site-packages, config-* and data folders.
        dirnames[:] = [
            d for d in dirnames if d not in _SKIPPED_PARTS and (here / d / "__init__.py").exists()
        ]
        found.extend(here / f for f in filenames if f.endswith(".py") and f not in _SKIPPED_PARTS)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _walk(node: ast.AST, name: str) -> Iterator[tuple[str, str]]:
    doc = ast.get_docstring(node, clean=True) if isinstance(node, _DOC_NODES) else None
    if doc and doc.strip():
        yield name, doc.strip()
    for child in getattr(node, "body", []):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            prefix = "" if isinstance(node, ast.Module) else f"{name}."
            yield from _walk(child, prefix + child.name)


def _clean_enough(text: str, *, min_words: int) -> bool:
    """Screen prose so that clean documents do not trip the quality signals by accident."""
    words = text.split()
    if len(words) < min_words:
        return False
    lowered = text.lower()
    if "lorem" in lowered or "<script" in lowered or _HTML_TAG.search(text):
        return False
    if _CONTROL.search(text):
        return False
    if len(_NON_ALPHA_WORD.findall(text)) > 0.2 * len(words):
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    bullets = sum(1 for line in lines if line.lstrip().startswith(("•", "-", "*")))
    ellipses = sum(1 for line in lines if line.rstrip().endswith(("...", "…")))
    symbols = text.count("#") + text.count("...") + text.count("…")
    return (
        bullets <= 0.5 * len(lines)
        and ellipses <= 0.1 * len(lines)
        and symbols <= 0.05 * len(words)
    )


def _english_share(text: str) -> float:
    """Share of words that are common English function words; lists of names score near 0."""
    words = [w.strip(".,;:!?()[]\"'").lower() for w in text.split()]
    return sum(1 for w in words if w in _STOP_WORDS) / max(1, len(words))


def _reflow(doc: str) -> str:
    """Join hard-wrapped prose paragraphs into one line each, as web text usually is.

    Paragraphs with indentation, bullets, tables or code keep their line breaks.
    """
    out = []
    for paragraph in re.split(r"\n\s*\n", doc.strip("\n")):
        lines = paragraph.split("\n")
        wrapped = len(lines) > 1 and not any(
            _BLOCK_LINE.match(line) or _ALIGNED.search(line.strip()) for line in lines
        )
        out.append(" ".join(lines) if wrapped else "\n".join(line.rstrip() for line in lines))
    return "\n\n".join(out)
