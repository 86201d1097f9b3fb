"""Every built-in step: importing this module registers them all (see ``WINNOW_STEP_MODULES``)."""

from __future__ import annotations

from pipelines.steps import (
    decontamination,
    dedup,
    embedding,
    heuristics,
    language,
    pii,
    semantic,
    similarity,
)

__all__ = [
    "decontamination",
    "dedup",
    "embedding",
    "heuristics",
    "language",
    "pii",
    "semantic",
    "similarity",
]
