"""Deduplication steps (corpus level): a per-document part here, the grouping in the runner."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import xxhash

from pipelines.steps.base import Document, Param, SignalSpec, Step, register

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d\u2026]")
_DIGITS = re.compile(r"\d")
_SIGNED = 1 << 63


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
        Param(
            "keep",
            str,
            "first",
            "which member of a group is kept: the first imported or the longest",
            choices=("first", "longest"),
        ),
    )

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
            value = xxhash.xxh3_64_intdigest(self.normalise(document.text))
            hashes.append(value - (1 << 64) if value >= _SIGNED else value)
        return {"exact_dedup_hash": hashes}
