"""Deduplication steps (corpus level): a per-document part here, the grouping in the runner."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import xxhash

from curation.hashing import signed64
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register

KEEP_PARAMS = (
    Param(
        "keep",
        str,
        "first",
        "which member of a group is kept: the first imported, the longest, or the one with "
        "the best value of keep_signal",
        choices=("first", "longest", "best_signal"),
    ),
    Param("keep_signal", str, "", "with keep=best_signal: the signal that decides"),
    Param(
        "keep_lowest", bool, False, "with keep=best_signal: the lowest value wins, not the highest"
    ),
)


def check_keep(step: Step) -> None:
    if step.config["keep"] == "best_signal" and not step.config["keep_signal"]:
        raise StepParamError(
            f"step {step.name!r}: keep=best_signal needs keep_signal, the signal that decides"
        )


_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d\u2026]")
_DIGITS = re.compile(r"\d")


@register
class ExactDedup(Step):
    """Exact duplicates of the normalised text, grouped over the whole dataset.

    ``run`` hashes each document's normalised text (whitespace always collapsed;
    case, punctuation and digits as configured); the corpus phase groups equal
    hashes, keeps one document per group by ``keep`` and records the groups.
    """

    name = "exact_dedup"
    version = "1"
    description = "Exact duplicates after normalisation; one kept per group."
    level = "corpus"
    params = (
        Param("lowercase", bool, True, "compare case-insensitively"),
        Param("strip_punctuation", bool, False, "ignore punctuation"),
        Param("strip_digits", bool, False, "ignore digits"),
        *KEEP_PARAMS,
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_keep(self)

    def signals(self) -> list[SignalSpec]:
        return [SignalSpec("exact_dedup_hash", "int", "64-bit XXH3 of the normalised text")]

    def corpus_signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(
                "exact_dedup_size", "int", "documents sharing this normalised text (1: unique)"
            ),
            SignalSpec(
                "exact_dedup_keep", "bool", "unique, or the member of its group that is kept"
            ),
        ]

    def normalise(self, text: str) -> str:
        if self.config["lowercase"]:
            text = text.lower()
        if self.config["strip_punctuation"]:
            text = _PUNCTUATION.sub(" ", text)
        if self.config["strip_digits"]:
            text = _DIGITS.sub("", text)
        return " ".join(text.split())

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        hashes = []
        for document in batch:
            hashes.append(signed64(xxhash.xxh3_64_intdigest(self.normalise(document.text))))
        return {"exact_dedup_hash": hashes}


def word_ngram_hashes(text: str, n: int) -> set[int]:
    """64-bit XXH3 of each word n-gram of the lowercased text, words joined by one space.

    A text shorter than ``n`` words counts as one n-gram, the whole of it; a text
    with no words has none. The shingles of MinHashDedup and the n-grams that
    Decontamination matches against evaluation items.
    """
    words = text.lower().split()
    if len(words) < n:
        return {xxhash.xxh3_64_intdigest(" ".join(words))} if words else set()
    return {xxhash.xxh3_64_intdigest(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


# The MinHash LSH parameters, shared with source_dedup (pipelines/steps/overlap.py).
MINHASH_PARAMS = (
    Param("ngram", int, 5, "words per shingle", minimum=1, maximum=20),
    Param("bands", int, 14, "LSH bands", minimum=1, maximum=64),
    Param("rows", int, 8, "MinHash values per band", minimum=1, maximum=32),
    Param("threshold", float, 0.7, "least Jaccard for a verified pair", minimum=0, maximum=1),
    Param("seed", int, 1, "seed of the hash permutations"),
)
_MERSENNE = (1 << 61) - 1
_MAX_HASH = (1 << 32) - 1


@register
class MinHashDedup(Step):
    """Near duplicates by MinHash LSH over word n-gram shingles (FineWeb's settings).

    Two documents become candidates when all ``rows`` MinHash values of one of the
    ``bands`` bands agree (probability ``1 - (1 - s^rows)^bands`` at Jaccard s);
    the corpus phase then checks each candidate's exact Jaccard against
    ``threshold`` before grouping, so what is reported is precise. This ``run``
    yields nothing per document: signatures are computed in the corpus phase,
    which streams the dataset and buckets them in PostgreSQL.
    """

    name = "minhash_dedup"
    version = "1"
    description = "Near duplicates: MinHash LSH candidates, verified by exact Jaccard."
    level = "corpus"
    params = (*MINHASH_PARAMS, *KEEP_PARAMS)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_keep(self)

    def signals(self) -> list[SignalSpec]:
        return []

    def corpus_signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(
                "minhash_dedup_size", "int", "documents in its near-duplicate group (1: none)"
            ),
            SignalSpec(
                "minhash_dedup_keep", "bool", "no near duplicate, or the one kept of its group"
            ),
            SignalSpec(
                "minhash_dedup_similarity",
                "float",
                "Jaccard similarity to the kept member of its group",
            ),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return {}

    def shingles(self, text: str) -> set[int]:
        """Hashed word n-grams of the lowercased text (the whole text if it is shorter)."""
        return word_ngram_hashes(text, self.config["ngram"])

    def _permutations(self) -> tuple[Any, Any]:
        import numpy as np

        cached = getattr(self, "_perm", None)
        if cached is None:
            rng = np.random.RandomState(self.config["seed"])
            count = self.config["bands"] * self.config["rows"]
            a = rng.randint(1, _MERSENNE, size=count, dtype=np.uint64)
            b = rng.randint(0, _MERSENNE, size=count, dtype=np.uint64)
            cached = self._perm = (a, b)
        return cached

    def band_buckets(self, text: str) -> list[int] | None:
        """One bucket id per band (signed 64-bit), or None for a text with no words."""
        import numpy as np

        shingles = self.shingles(text)
        if not shingles:
            return None
        a, b = self._permutations()
        x = np.fromiter(shingles, dtype=np.uint64, count=len(shingles)) & np.uint64(_MAX_HASH)
        # The universal hash (a*x + b) mod p, in uint64 arithmetic that wraps on
        # overflow, as datasketch computes it: still a fixed random hash per band row.
        hashed = (x[:, None] * a + b) % np.uint64(_MERSENNE)
        signature = hashed.min(axis=0) & np.uint64(_MAX_HASH)
        rows = self.config["rows"]
        buckets = []
        for band in range(self.config["bands"]):
            value = xxhash.xxh3_64_intdigest(signature[band * rows : (band + 1) * rows].tobytes())
            buckets.append(signed64(value))
        return buckets
