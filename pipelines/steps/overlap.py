"""Dedup across datasets: documents that copy a document of another dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, register
from pipelines.steps.dedup import MINHASH_PARAMS, MinHashDedup


@register
class SourceDedup(Step):
    """Flag documents that duplicate, exactly or nearly, a document of other datasets.

    Meant for generated datasets: a rewrite that copies its seed, or a question
    lifted verbatim from the corpus, is a duplicate of the source rather than new
    data. By default the datasets compared with are this dataset's parent (the one
    it was generated from); ``against`` names others (an earlier release, another
    generated set). Candidates come from MinHash LSH as in ``minhash_dedup`` and
    are verified by exact Jaccard, so an identical text (after lowercasing and
    whitespace) scores 1.0. Nothing is grouped or removed: the flag, the
    similarity and the matched document are signals for recipes and review.
    """

    name = "source_dedup"
    version = "1"
    description = "Documents duplicating a document of the source (or other) datasets."
    level = "corpus"
    params = (
        Param(
            "against",
            tuple,
            (),
            "slugs of the datasets to compare with; empty: the dataset this one was generated from",
        ),
        *MINHASH_PARAMS,
    )

    def signals(self) -> list[SignalSpec]:
        return []

    def corpus_signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(
                "source_dedup_flag",
                "bool",
                "duplicates a document of the compared datasets (Jaccard >= threshold)",
            ),
            SignalSpec(
                "source_dedup_similarity",
                "float",
                "Jaccard similarity to the closest candidate there (empty: no candidate)",
            ),
            SignalSpec(
                "source_dedup_match",
                "json",
                "the closest candidate: its dataset, external id and database id",
            ),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return {}

    def minhash(self) -> MinHashDedup:
        """The MinHash settings as a MinHashDedup, for its shingles and band buckets."""
        return MinHashDedup(**{p.name: self.config[p.name] for p in MINHASH_PARAMS})
