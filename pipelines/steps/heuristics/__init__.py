"""Datatrove's heuristic filters as steps: the filter's own verdict plus the numbers it thresholds.

Each step calls the datatrove filter object directly (never through an executor: steps run
inside Celery workers) for ``<step>_keep`` and ``<step>_reason``, and measures, with datatrove's
own helpers or code tested equal to them, every quantity the filter compares with a threshold.
Where those numbers are the filter's own quotients (``gopher_repetition``, whose n-gram counts
cost most), the verdict is derived from them instead of computing them twice. The filter
stops at the first rule that fails; the numbers cover the whole document, so a curator can
pick other thresholds later. A number that cannot be measured (no words, no lines) is None.

Parameters keep datatrove's names and defaults; ``None`` disables a threshold. Words come from
datatrove's tokenizer for ``language``, memoized per process (see ``_datatrove``), so the steps
chained on a batch tokenize each document once: run them one after the other on a batch.
"""

from __future__ import annotations

from pipelines.steps.heuristics.c4 import C4Quality
from pipelines.steps.heuristics.doc_stats import DocStats
from pipelines.steps.heuristics.fineweb import FineWebQuality
from pipelines.steps.heuristics.gopher import (
    DUP_N_GRAMS,
    TOP_N_GRAMS,
    GopherQuality,
    GopherRepetition,
)

__all__ = [
    "DUP_N_GRAMS",
    "TOP_N_GRAMS",
    "C4Quality",
    "DocStats",
    "FineWebQuality",
    "GopherQuality",
    "GopherRepetition",
]
