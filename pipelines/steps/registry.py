"""Every built-in step: importing this module registers them all (see ``WINNOW_STEP_MODULES``)."""

from __future__ import annotations

from pipelines.steps import (
    classifier,
    decontamination,
    dedup,
    embedding,
    grape,
    heuristics,
    judge,
    language,
    overlap,
    perplexity,
    pii,
    robustness,
    semantic,
    similarity,
    synth,
)

__all__ = [
    "classifier",
    "decontamination",
    "dedup",
    "embedding",
    "grape",
    "heuristics",
    "judge",
    "language",
    "overlap",
    "perplexity",
    "pii",
    "robustness",
    "semantic",
    "similarity",
    "synth",
]
