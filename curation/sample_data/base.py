"""Types the sample builder's modules share, and the text measures its manifest is defined by.

:func:`normalize` decides what counts as a normalized duplicate and :func:`shingle_jaccard`
the similarity recorded for near duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass


def normalize(text: str) -> str:
    """Lowercase and collapse all whitespace: texts equal under this are normalized duplicates."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the lowercased, whitespace-split text (the whole text if shorter)."""
    words = text.lower().split()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def shingle_jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the word 5-gram sets of ``a`` and ``b``."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


@dataclass(frozen=True)
class _Section:
    heading: str
    body: str


@dataclass(frozen=True)
class _Chunk:
    source: str
    sections: tuple[_Section, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.heading}\n{s.body}" if s.heading else s.body for s in self.sections)

    @property
    def title(self) -> str:
        module = self.source.split(":", 1)[1].split("+")[0]
        return next((s.heading for s in self.sections if s.heading), module)


@dataclass(frozen=True)
class _Corpus:
    chunks: tuple[_Chunk, ...]
    code: tuple[tuple[str, str], ...]
    summaries: tuple[tuple[str, str], ...]
    long_material: tuple[str, ...]
    long_chunks: tuple[_Chunk, ...]
    foreign: dict[str, tuple[tuple[str, str], ...]]
    rtl: tuple[str, ...]
    accented: tuple[str, ...]


@dataclass
class _Doc:
    text: str
    source: str
    noise: list[str]
    original: int | None = None
    jaccard: float | None = None
