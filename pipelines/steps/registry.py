"""Every built-in step: importing this module registers them all (see ``WINNOW_STEP_MODULES``)."""

from __future__ import annotations

from pipelines.steps import heuristics, language, pii

__all__ = ["heuristics", "language", "pii"]
