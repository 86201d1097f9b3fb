"""Deterministic builder of Winnow's demo dataset.

The sample is made of real English text that every machine with the project installed has
offline: the docstrings and prose comments of the Python standard library and of Django, read
from their source files with :mod:`ast` and a regex (nothing is imported, so no module can open
a window, print, or need Django settings), and the Language Reference topics that pydoc ships in
``pydoc_data.topics``. Other-language documents come from the translations Django ships in its
``locale/<lang>/LC_MESSAGES/*.po`` files. Only the standard library and Django are read, never
other installed packages.

Realistic noise is mixed in and recorded twice: in each document's ``noise`` tags and in a
:class:`SampleManifest`, so that quality-signal and dedup steps can be checked against a known
truth. Everything is drawn from one :class:`random.Random` seeded by ``seed``; the corpus is read
in sorted order, so the same seed on the same Python and Django versions gives byte-identical
files (the stdlib's docstrings differ between Python releases).

Layout: `base` holds the shared types and the text measures (`normalize`, `shingle_jaccard`),
`prose` reads and screens the English docstrings, comments and reference topics, `locales`
the translated messages of Django's catalogs, `corpus` packs both into the cached offline
corpus, `noise` makes the noisy documents, and `build` drives `build_sample`.
"""

from __future__ import annotations

from curation.sample_data.base import normalize, shingle_jaccard, shingles
from curation.sample_data.build import DEFAULT_SIZE, SampleManifest, build_sample
from curation.sample_data.corpus import CHUNK_MIN_WORDS, OTHER_LANGUAGES
from curation.sample_data.noise import (
    HUGE_MIN_CHARS,
    LONG_MAX_CHARS,
    LONG_MIN_CHARS,
    NEAR_DUPLICATE_RANGE,
    SHORT_MAX_WORDS,
)

__all__ = [
    "CHUNK_MIN_WORDS",
    "DEFAULT_SIZE",
    "HUGE_MIN_CHARS",
    "LONG_MAX_CHARS",
    "LONG_MIN_CHARS",
    "NEAR_DUPLICATE_RANGE",
    "OTHER_LANGUAGES",
    "SHORT_MAX_WORDS",
    "SampleManifest",
    "build_sample",
    "normalize",
    "shingle_jaccard",
    "shingles",
]
