"""Corpus phases: the dataset-wide part of corpus-level steps, run once after every batch.

Each phase is set-based SQL over the signal table: no document passes through
Python, so memory stays flat whatever the dataset size. Semantic dedup is the
exception by nature: it holds the dataset's vectors (float16, 768 MB per million
384-dim documents), never its texts. A phase is idempotent: it replaces the
groups it wrote before (keyed by the run) and upserts its signals.

Layout: ``keep`` holds what the dedup phases share (``run_key``, the ``keep`` rule),
``exact``, ``minhash`` and ``semantic`` one dedup phase each, ``registry`` the
``CORPUS_PHASES`` table that ``pipelines.services.runs`` looks phases up in
(source_dedup and similarity_index live in ``overlap`` and ``similarity``).
"""

from __future__ import annotations

from pipelines.services.corpus.exact import exact_dedup_phase
from pipelines.services.corpus.keep import run_key
from pipelines.services.corpus.minhash import MINHASH_ALL_PAIRS, minhash_dedup_phase
from pipelines.services.corpus.registry import CORPUS_PHASES, COUNTED
from pipelines.services.corpus.semantic import SEMANTIC_SIGNALS, semantic_dedup_phase

__all__ = [
    "CORPUS_PHASES",
    "COUNTED",
    "MINHASH_ALL_PAIRS",
    "SEMANTIC_SIGNALS",
    "exact_dedup_phase",
    "minhash_dedup_phase",
    "run_key",
    "semantic_dedup_phase",
]
