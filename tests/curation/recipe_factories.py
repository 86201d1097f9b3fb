"""Test data for recipes and duplicate review: documents, typed signals, duplicate groups."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from curation.models import Dataset, DuplicateGroup, DuplicateMember
from curation.services.signals import signal_define, signal_rows_write
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents

LANGS = ["en", "de", "fr", "es"]


@dataclass
class World:
    dataset: Dataset
    ids: list[int]
    values: dict[str, dict[int, Any]]  # signal -> document -> value (absent: no row)
    groups: dict[str, list[DuplicateGroup]]


def build_world(n: int = 300, seed: int = 7) -> World:
    """``n`` documents with int, float, text, bool and json signals; NULLs, and the last
    ten documents with no signal row at all; exact groups from two runs, minhash groups."""
    rng = random.Random(seed)
    dataset = make_dataset(f"recipes-{seed}")
    ids = add_documents(dataset, [f"document {i} " + "word " * (i % 13) for i in range(n)])
    specs = [
        ("rt_words", "int"),
        ("rt_ppl", "float"),
        ("rt_lang", "text"),
        ("rt_clean", "bool"),
        ("rt_meta", "json"),
    ]
    signals = [
        signal_define(name=name, step=f"step_{name}", step_version="3", dtype=dtype)
        for name, dtype in specs
    ]
    values: dict[str, dict[int, Any]] = {name: {} for name, _ in specs}
    rows = []
    for d in ids[:-10]:
        row = (
            None if rng.random() < 0.1 else rng.randint(0, 100),
            None if rng.random() < 0.1 else round(rng.uniform(1, 500), 3),
            None if rng.random() < 0.1 else rng.choice(LANGS),
            None if rng.random() < 0.1 else rng.random() < 0.7,
            None if rng.random() < 0.5 else {"k": rng.randint(0, 3)},
        )
        rows.append((d, *row))
        for (name, _), v in zip(specs, row, strict=True):
            values[name][d] = v
    signal_rows_write(signals=signals, dataset_id=dataset.pk, rows=rows)
    groups: dict[str, list[DuplicateGroup]] = {"exact": [], "minhash": [], "old": []}
    shuffled = ids[:-10]
    rng.shuffle(shuffled)
    # An older exact run whose groups must be ignored: the newest run is used.
    groups["old"] += _groups(dataset, "exact", "run-1-exact_dedup", [shuffled[-12:-2]])
    exact = [shuffled[k * 4 : k * 4 + 4] for k in range(20)]
    # Overlaps the exact groups: a document can be in one group of each kind.
    minhash = [shuffled[60 + k * 5 : 60 + k * 5 + 5] + [shuffled[k]] for k in range(15)]
    # Documents without a signal row can still be duplicates.
    exact[0].append(ids[-1])
    minhash[0].append(ids[-2])
    groups["exact"] += _groups(dataset, "exact", "run-2-exact_dedup", exact)
    groups["minhash"] += _groups(dataset, "minhash", "run-2-minhash_dedup", minhash)
    return World(dataset=dataset, ids=ids, values=values, groups=groups)


def _groups(
    dataset: Dataset, kind: str, run_key: str, clusters: list[list[int]]
) -> list[DuplicateGroup]:
    """One group per cluster of two or more; the first member is the representative."""
    return [_group(dataset, kind, run_key, c) for c in clusters if len(c) > 1]


def _group(dataset: Dataset, kind: str, run_key: str, members: list[int]) -> DuplicateGroup:
    group = DuplicateGroup.objects.create(
        dataset=dataset,
        kind=kind,
        step=f"{kind}_dedup",
        step_version="1",
        run_key=run_key,
        size=len(members),
    )
    DuplicateMember.objects.bulk_create(
        DuplicateMember(group=group, document_id=d, similarity=0.9, is_representative=i == 0)
        for i, d in enumerate(members)
    )
    return group


def representative(group: DuplicateGroup) -> int:
    return group.members.get(is_representative=True).document_id
