"""Benchmark decontamination: documents sharing word n-grams with evaluation sets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from curation.embedded import data_dir
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register
from pipelines.steps.dedup import word_ngram_hashes


@lru_cache(maxsize=8)
def _index(paths: tuple[str, ...], stamps: tuple[float, ...], n: int) -> dict[int, list[str]]:
    """n-gram hash -> eval item ids ("set:id"), built once per process and file version."""
    index: dict[int, list[str]] = {}
    for path in paths:
        name = Path(path).stem
        with open(path, "rb") as lines:
            for line in lines:
                item = orjson.loads(line)
                for gram in word_ngram_hashes(item["text"], n):
                    index.setdefault(gram, []).append(f"{name}:{item['id']}")
    return index


@register
class Decontamination(Step):
    """Flag documents that share an n-gram (13 words, as in GPT-3) with evaluation items.

    Stores the overlapping items' ids, so a curator can see what leaked and review
    it, and export can drop or keep it by recipe. Eval sets are uploaded first
    (``python manage.py winnow_evalset``); the step reads their files, not the
    database.
    """

    name = "decontamination"
    version = "1"
    description = "Documents sharing word n-grams with uploaded evaluation sets."
    params = (
        Param("eval_sets", tuple, (), "slugs of the evaluation sets to check against"),
        Param("ngram", int, 13, "words per n-gram", minimum=3, maximum=50),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if not self.config["eval_sets"]:
            raise StepParamError(
                "step 'decontamination': name at least one evaluation set in eval_sets"
            )

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec("decontamination_flag", "bool", "shares an n-gram with an eval item"),
            SignalSpec("decontamination_item_count", "int", "eval items it overlaps"),
            SignalSpec("decontamination_items", "json", "ids of the overlapped eval items"),
        ]

    def _paths(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        root = data_dir() / "evalsets"
        paths = tuple(str(root / f"{slug}.jsonl") for slug in self.config["eval_sets"])
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"evaluation set file(s) {missing} not found: upload the set first "
                "(python manage.py winnow_evalset PATH --name NAME)"
            )
        return paths, tuple(os.path.getmtime(p) for p in paths)

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        paths, stamps = self._paths()
        index = _index(paths, stamps, self.config["ngram"])
        flags, counts, items = [], [], []
        for document in batch:
            hits: set[str] = set()
            for gram in word_ngram_hashes(document.text, self.config["ngram"]):
                hits.update(index.get(gram, ()))
            found = sorted(hits)
            flags.append(bool(found))
            counts.append(len(found))
            items.append(found or None)
        return {
            "decontamination_flag": flags,
            "decontamination_item_count": counts,
            "decontamination_items": items,
        }
