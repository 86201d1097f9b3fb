"""The corpus phase of each corpus-level step, by step name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.models import PipelineRun
from pipelines.services.corpus.exact import exact_dedup_phase
from pipelines.services.corpus.minhash import minhash_dedup_phase
from pipelines.services.corpus.semantic import semantic_dedup_phase
from pipelines.services.overlap import source_dedup_phase
from pipelines.services.similarity import similarity_index_phase

# Each phase returns its count: groups for the dedup phases, flagged documents for
# source_dedup, indexed vectors for similarity_index (COUNTED says which, for the log).
CORPUS_PHASES: dict[str, Callable[[PipelineRun, dict[str, Any]], int]] = {
    "exact_dedup": exact_dedup_phase,
    "minhash_dedup": minhash_dedup_phase,
    "semantic_dedup": semantic_dedup_phase,
    "source_dedup": source_dedup_phase,
    "similarity_index": similarity_index_phase,
}
COUNTED = {"source_dedup": "flagged documents", "similarity_index": "vectors indexed"}
