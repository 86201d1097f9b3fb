"""Small steps for runner tests (listed in WINNOW_STEP_MODULES by the tests)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, register


@register
class TextLength(Step):
    name = "test_text_length"
    version = "1"
    params = (Param("scale", float, 1.0, "multiplies the length"),)

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec("test_chars", "float", "characters x scale"),
            SignalSpec("test_has_x", "bool", "text contains an x"),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return {
            "test_chars": [len(d.text) * self.config["scale"] for d in batch],
            "test_has_x": ["x" in d.text for d in batch],
        }


@register
class Explode(Step):
    """Fails on any document whose text contains BOOM."""

    name = "test_explode"
    version = "1"

    def signals(self) -> list[SignalSpec]:
        return [SignalSpec("test_words", "int", "words")]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        for d in batch:
            if "BOOM" in d.text:
                raise RuntimeError(f"cannot handle document {d.id}")
        return {"test_words": [len(d.text.split()) for d in batch]}


@register
class Slow(Step):
    """Sleeps per document: gives tests time to kill a worker mid-run."""

    name = "test_slow"
    version = "1"
    params = (Param("seconds", float, 0.01, "sleep per document"),)

    def signals(self) -> list[SignalSpec]:
        return [SignalSpec("test_slow_id", "int", "the document id")]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        time.sleep(self.config["seconds"] * len(batch))
        return {"test_slow_id": [d.id for d in batch]}


@register
class OnGpu(Step):
    """Declares the gpu device: its batches go to the gpu queue (it computes on CPU)."""

    name = "test_on_gpu"
    version = "1"
    device = "gpu"

    def signals(self) -> list[SignalSpec]:
        return [SignalSpec("test_gpu_chars", "int", "characters")]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return {"test_gpu_chars": [len(d.text) for d in batch]}
