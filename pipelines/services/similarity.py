"""Nearest-neighbour indexes on disk: built by the ``similarity_index`` step, queried by pages.

Layout: ``WINNOW_DATA_DIR/indexes/dataset-<id>/<model key>/`` holds ``index.faiss``,
``ids.npy`` (document id of each index position) and ``meta.json`` (model, size,
kind, parameters, build time). A rebuild writes a fresh directory and swaps it
in with renames, so readers see the old index or the new one, never half of one.
Each process loads an index once and reloads it when ``meta.json`` changes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from curation.errors import PermanentError
from curation.models import Dataset, Document
from curation.services.vectors import model_key, vectors_load
from pipelines.models import PipelineRun
from pipelines.services.results import run_results_merge

logger = logging.getLogger(__name__)


class IndexMissingError(PermanentError):
    """The dataset has no similarity index yet; the message says how to build one."""


def index_dir(*, dataset_id: int, model: str) -> Path:
    return Path(settings.DATA_DIR) / "indexes" / f"dataset-{dataset_id}" / model_key(model)


def similarity_index_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """Build the index of the step's model over every stored vector; returns its size."""
    from pipelines.steps.similarity import SimilarityIndex, build_index

    step = SimilarityIndex(**spec["params"])
    model = step.vector_model()
    started = time.perf_counter()
    stored = vectors_load(dataset_id=run.dataset_id, model=model)
    if not len(stored):
        raise PermanentError(
            f"dataset {run.dataset_id} has no stored vectors of {model!r}: the step's document "
            "phase stores them; start a new run of this pipeline"
        )
    index = build_index(
        stored.vectors, exact_below=step.config["exact_below"], nlist=step.config["nlist"]
    )
    meta = {
        "model": model,
        "encoder": {k: step.config[k] for k in ("model", "max_length")},
        "documents": len(stored),
        "dim": stored.dim,
        "kind": "ivf" if hasattr(index, "nprobe") else "flat",
        "nprobe": step.config["nprobe"],
        "run": run.pk,
        "built_at": timezone.now().isoformat(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    _publish(index_dir(dataset_id=run.dataset_id, model=model), index, stored.ids, meta)
    summary = {k: meta[k] for k in ("model", "documents", "kind", "seconds")}
    run_results_merge(run=run, key="similarity_index", value=summary)
    return len(stored)


def _publish(target: Path, index: Any, ids: np.ndarray, meta: dict[str, Any]) -> None:
    import faiss

    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    fresh.mkdir()
    faiss.write_index(index, str(fresh / "index.faiss"))
    np.save(fresh / "ids.npy", ids)
    (fresh / "meta.json").write_text(json.dumps(meta, indent=1))
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class Neighbour:
    document: Document
    score: float


@dataclass
class _Loaded:
    stamp: float
    index: Any
    ids: np.ndarray
    meta: dict[str, Any]


_LOADED: dict[Path, _Loaded] = {}
_LOCK = threading.Lock()


def _load(directory: Path) -> _Loaded:
    import faiss

    meta_path = directory / "meta.json"
    try:
        stamp = meta_path.stat().st_mtime
    except FileNotFoundError:
        raise IndexMissingError("no similarity index") from None
    with _LOCK:
        cached = _LOADED.get(directory)
        if cached is None or cached.stamp != stamp:
            cached = _Loaded(
                stamp=stamp,
                index=faiss.read_index(str(directory / "index.faiss")),
                ids=np.load(directory / "ids.npy"),
                meta=json.loads(meta_path.read_text()),
            )
            _LOADED[directory] = cached
        return cached


def dataset_indexes(*, dataset: Dataset) -> list[dict[str, Any]]:
    """The meta of every index the dataset has, newest first."""
    root = Path(settings.DATA_DIR) / "indexes" / f"dataset-{dataset.pk}"
    if not root.is_dir():
        return []
    found = []
    for entry in os.scandir(root):
        meta = Path(entry.path) / "meta.json"
        if not entry.name.startswith(".") and meta.exists():
            found.append(json.loads(meta.read_text()))
    return sorted(found, key=lambda m: m["built_at"], reverse=True)


def _newest(dataset: Dataset, model: str | None) -> _Loaded:
    metas = dataset_indexes(dataset=dataset)
    if model is not None:
        metas = [m for m in metas if m["model"] == model]
    if not metas:
        raise IndexMissingError(
            f"dataset {dataset.name!r} has no similarity index"
            + (f" for {model!r}" if model else "")
            + ": run a pipeline with the similarity_index step on it"
        )
    return _load(index_dir(dataset_id=dataset.pk, model=metas[0]["model"]))


def _neighbours(
    dataset: Dataset, loaded: _Loaded, queries: np.ndarray, k: int, skip: int | None
) -> list[Neighbour]:
    from pipelines.steps.similarity import search

    scores, positions = search(
        loaded.index, queries, k + (1 if skip is not None else 0), nprobe=loaded.meta["nprobe"]
    )
    ranked = [
        (int(loaded.ids[p]), float(s))
        for p, s in zip(positions[0], scores[0], strict=True)
        if p >= 0 and int(loaded.ids[p]) != skip
    ][:k]
    documents = Document.objects.filter(dataset=dataset, pk__in=[pk for pk, _ in ranked]).defer(
        "text"
    )
    by_id = {d.pk: d for d in documents}
    return [Neighbour(by_id[pk], score) for pk, score in ranked if pk in by_id]


def similar_documents(
    *, dataset: Dataset, document: Document, k: int = 10, model: str | None = None
) -> list[Neighbour]:
    """The ``k`` documents nearest to ``document`` (cosine), itself excluded."""
    loaded = _newest(dataset, model)
    stored = vectors_load(dataset_id=dataset.pk, model=loaded.meta["model"], ids=[document.pk])
    if not len(stored):
        raise IndexMissingError(
            "this document has no stored vector yet (imported after the index was built): "
            "run the similarity_index pipeline again"
        )
    query = stored.vectors.astype(np.float32)
    return _neighbours(dataset, loaded, query, k, skip=document.pk)


def search_documents(
    *, dataset: Dataset, query: str, k: int = 20, model: str | None = None
) -> list[Neighbour]:
    """The ``k`` documents nearest to ``query``, embedded with the index's model."""
    from pipelines.steps.embedding import encoder_for

    loaded = _newest(dataset, model)
    encoder_config = loaded.meta["encoder"]
    # A web process has no GPU to spare: queries are embedded on the CPU.
    encoder = encoder_for(
        encoder_config["model"], device="cpu", max_length=encoder_config["max_length"] or None
    )
    return _neighbours(dataset, loaded, encoder.encode([query]), k, skip=None)
