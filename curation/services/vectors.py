"""Document vectors on disk: float16 shards per (dataset, model), memory-mappable.

Layout under ``WINNOW_DATA_DIR/vectors/dataset-<id>/<model key>/``::

    <first id>-<last id>-<token>.npy       float16 [n, dim], rows in ``ids`` order
    <first id>-<last id>-<token>.ids.npy   int64 [n], ascending document ids

A shard is written to temporary names and renamed, the ids file last: a shard
whose ids file exists is complete. Shards never change after that; new
documents go to new shards (only ids without a vector are embedded), so work is
idempotent and a killed writer leaves at most an unreferenced temporary file.
If two writers raced on the same ids, readers keep the first copy.

Several hosts share vectors when ``WINNOW_DATA_DIR`` is on a shared file system.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

_SHARD = re.compile(r"^(\d+)-(\d+)-([0-9a-f]+)\.ids\.npy$")


def model_key(model: str) -> str:
    """A stable directory name for a model id or path: readable part plus a short hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rstrip("/").split("/")[-1])[:60]
    digest = hashlib.sha1(model.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


def vector_root() -> Path:
    return Path(settings.DATA_DIR) / "vectors"


def vector_dir(*, dataset_id: int, model: str) -> Path:
    return vector_root() / f"dataset-{dataset_id}" / model_key(model)


@dataclass(frozen=True)
class Shard:
    first: int
    last: int
    ids_path: Path

    @property
    def vectors_path(self) -> Path:
        return self.ids_path.with_name(self.ids_path.name.replace(".ids.npy", ".npy"))


def _shards(directory: Path) -> list[Shard]:
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        match = _SHARD.match(entry.name)
        if match:
            found.append(Shard(int(match[1]), int(match[2]), Path(entry.path)))
    return sorted(found, key=lambda s: (s.first, s.last, s.ids_path.name))


def vectors_missing(*, dataset_id: int, model: str, ids: Sequence[int]) -> list[int]:
    """The ids among ``ids`` that have no stored vector for ``model`` yet.

    Only shards whose id range overlaps ``ids`` are read (their names carry the range).
    """
    if not ids:
        return []
    wanted = np.asarray(sorted(ids), dtype=np.int64)
    low, high = int(wanted[0]), int(wanted[-1])
    present = [
        np.load(shard.ids_path)
        for shard in _shards(vector_dir(dataset_id=dataset_id, model=model))
        if shard.first <= high and shard.last >= low
    ]
    if not present:
        return [int(i) for i in wanted]
    have = np.concatenate(present)
    return [int(i) for i in wanted[~np.isin(wanted, have)]]


def vectors_write(*, dataset_id: int, model: str, ids: Sequence[int], vectors: np.ndarray) -> Path:
    """Store ``vectors`` (one row per id) as a new float16 shard; returns its ids path."""
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
    if len(ids) == 0:
        raise ValueError("no vectors to write")
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    id_array = np.asarray(ids, dtype=np.int64)[order]
    matrix = np.ascontiguousarray(np.asarray(vectors)[order], dtype=np.float16)
    directory = vector_dir(dataset_id=dataset_id, model=model)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{int(id_array[0]):012d}-{int(id_array[-1]):012d}-{uuid.uuid4().hex[:12]}"
    final_vectors = directory / f"{stem}.npy"
    final_ids = directory / f"{stem}.ids.npy"
    for path, array in ((final_vectors, matrix), (final_ids, id_array)):
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as handle:
            np.save(handle, array)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    return final_ids


@dataclass
class VectorSet:
    """Every stored vector of one (dataset, model): ids ascending, one row each."""

    ids: np.ndarray  # int64 [n]
    vectors: np.ndarray  # float16 [n, dim]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def vector_shards(*, dataset_id: int, model: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, memory-mapped float16 vectors) per complete shard, in id order, duplicates kept."""
    for shard in _shards(vector_dir(dataset_id=dataset_id, model=model)):
        yield np.load(shard.ids_path), np.load(shard.vectors_path, mmap_mode="r")


def vectors_load(*, dataset_id: int, model: str, ids: Sequence[int] | None = None) -> VectorSet:
    """The stored vectors (all, or those of ``ids`` that exist), ids ascending, no duplicates.

    This copies the selected rows into memory: 1M x 384 float16 is 768 MB.
    """
    id_parts, vector_parts = [], []
    wanted = None if ids is None else np.asarray(sorted(set(ids)), dtype=np.int64)
    for shard_ids, shard_vectors in vector_shards(dataset_id=dataset_id, model=model):
        if wanted is not None:
            mask = np.isin(shard_ids, wanted)
            if not mask.any():
                continue
            shard_ids, shard_vectors = shard_ids[mask], shard_vectors[mask]
        id_parts.append(shard_ids)
        vector_parts.append(np.asarray(shard_vectors))
    if not id_parts:
        return VectorSet(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float16))
    all_ids = np.concatenate(id_parts)
    matrix = np.concatenate(vector_parts)
    unique, first = np.unique(all_ids, return_index=True)
    return VectorSet(unique, matrix[first])


def vector_models(*, dataset_id: int) -> list[str]:
    """Model keys that have vectors for the dataset (directory names)."""
    root = vector_root() / f"dataset-{dataset_id}"
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir())


def vectors_drop(*, dataset_id: int, model: str | None = None) -> None:
    """Remove a dataset's vectors (one model's, or all)."""
    target = (
        vector_root() / f"dataset-{dataset_id}"
        if model is None
        else vector_dir(dataset_id=dataset_id, model=model)
    )
    shutil.rmtree(target, ignore_errors=True)
