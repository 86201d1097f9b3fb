"""The ``semantic_dedup`` step: its parameters and signals; ``groups`` does the corpus work."""

from __future__ import annotations

from typing import Any

from pipelines.steps.base import Param, SignalSpec, StepParamError, register
from pipelines.steps.dedup import KEEP_PARAMS, check_keep
from pipelines.steps.embedding import EMBEDDING_PARAMS, EmbeddingStep
from pipelines.steps.semantic.groups import EPS_REPORT

KEEP_RULES = ("centroid_farthest", "centroid_nearest", "longest", "first", "best_signal")


@register
class SemanticDedup(EmbeddingStep):
    """Near duplicates in meaning (SemDeDup): embeddings, k-means, cosine inside clusters.

    The document phase stores each document's vector of ``model``; the corpus phase
    clusters them (``clusters``, 0: about one per thousand documents), groups
    documents whose cosine is at least ``1 - eps``, keeps one per group by ``keep``
    (the paper keeps the one farthest from its cluster's centroid) and reports how
    many documents each eps of ``eps_report`` would remove.
    """

    name = "semantic_dedup"
    version = "1"
    description = (
        "Semantic near duplicates (SemDeDup): k-means, then cosine >= 1 - eps inside clusters."
    )
    device = "gpu"
    level = "corpus"
    params = (
        *EMBEDDING_PARAMS,
        Param("clusters", int, 0, "k-means clusters; 0: about one per 1,000 documents", minimum=0),
        Param(
            "eps",
            float,
            0.05,
            "documents with cosine similarity >= 1 - eps are duplicates",
            minimum=0,
            maximum=1,
        ),
        Param(
            "eps_report", tuple, EPS_REPORT, "eps values whose removal counts the run page shows"
        ),
        Param(
            "keep",
            str,
            "centroid_farthest",
            "which member of a group is kept: the one farthest from (the paper's) or nearest "
            "to its cluster's centroid, the longest, the first imported, or the one with the "
            "best value of keep_signal",
            choices=KEEP_RULES,
        ),
        *KEEP_PARAMS[1:],
        Param("seed", int, 0, "seed of the k-means initialisation"),
        Param("niter", int, 20, "k-means iterations", minimum=1, maximum=1000),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_keep(self)
        report = self.config["eps_report"]
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in report):
            raise StepParamError(f"step {self.name!r}: eps_report must be numbers, got {report!r}")
        if not all(0 <= e <= 1 for e in report):
            raise StepParamError(f"step {self.name!r}: each eps_report value must be in [0, 1]")
        self.config["eps_report"] = tuple(sorted({float(e) for e in report}))

    def corpus_signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(
                "semantic_dedup_size", "int", "documents in its semantic duplicate group (1: none)"
            ),
            SignalSpec(
                "semantic_dedup_keep", "bool", "no semantic duplicate, or the one kept of its group"
            ),
            SignalSpec(
                "semantic_dedup_similarity",
                "float",
                "cosine similarity to the kept member of its group",
            ),
            SignalSpec("semantic_dedup_cluster", "int", "its k-means cluster"),
        ]
