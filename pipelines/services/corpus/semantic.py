"""The semantic_dedup corpus phase: SemDeDup over the dataset's stored vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction

from curation.errors import PermanentError
from curation.models import Document as DocumentRow
from curation.models import DuplicateGroup, DuplicateMember, Signal
from curation.services.signals import signal_rows_write
from curation.services.vectors import vectors_load
from pipelines.models import PipelineRun
from pipelines.services import pairs
from pipelines.services.corpus.keep import _kept, run_key
from pipelines.services.results import run_results_merge

SEMANTIC_SIGNALS = [
    "semantic_dedup_size",
    "semantic_dedup_keep",
    "semantic_dedup_similarity",
    "semantic_dedup_cluster",
]


def semantic_dedup_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """SemDeDup over the dataset's stored vectors; returns the number of groups.

    1. Load the vectors of the step's model (its document phase stored them);
       every document must have one.
    2. k-means, pairs inside clusters at the loosest eps, groups at ``eps`` and
       the removal count of every eps (``pipelines.steps.semantic.semdedup``, on
       the step's device).
    3. Keep one member per group by ``keep``; each member's cosine to the kept one.
    4. Replace this run's groups, write the four signals for every document and
       store the eps table in ``run.results["semantic_dedup"]``.
    """
    from pipelines.devices import resolve_device
    from pipelines.steps.semantic import (
        CENTROID_RULES,
        SemanticDedup,
        kept_members,
        semdedup,
        similarity_to,
    )

    step = SemanticDedup(**spec["params"])
    config = step.config
    dataset_id = run.dataset_id
    ids, vectors = _semantic_vectors(dataset_id, step.vector_model())
    device = resolve_device(config["device"])
    result = semdedup(
        vectors,
        clusters=config["clusters"],
        eps=config["eps"],
        eps_report=config["eps_report"],
        niter=config["niter"],
        seed=config["seed"],
        device=device,
    )
    groups = result.groups()
    if config["keep"] in CENTROID_RULES:
        kept = kept_members(result.labels, rule=config["keep"], score=result.centroid_similarity)
    else:
        kept = _semantic_kept(config, dataset_id, ids, groups)
    similarity = similarity_to(vectors, kept, device)
    _write_semantic_groups(run, spec, ids, result, groups, kept, similarity)
    return len(groups)


def _semantic_vectors(dataset_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(document ids ascending, their float16 vectors); every document must have one."""
    ids = np.fromiter(
        DocumentRow.objects.filter(dataset_id=dataset_id)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=pairs.CHUNK * 10),
        dtype=np.int64,
    )
    stored = vectors_load(dataset_id=dataset_id, model=model)
    present = np.isin(ids, stored.ids)
    if not present.all():
        missing = ids[~present]
        raise PermanentError(
            f"{len(missing)} of {len(ids)} documents have no stored vector of {model!r} "
            f"(first ids: {missing[:5].tolist()}): start a new run of this pipeline (its "
            "semantic_dedup document phase embeds only the documents that have no vector yet), "
            "then this phase has every vector"
        )
    return ids, stored.vectors[np.isin(stored.ids, ids)]


def _semantic_kept(
    params: dict[str, Any], dataset_id: int, ids: np.ndarray, groups: list[np.ndarray]
) -> np.ndarray:
    """The kept position of each position's group for the rules that read the database."""
    kept = np.arange(len(ids), dtype=np.int64)
    members = [ids[group].tolist() for group in groups]
    lengths: dict[int, int] = {}
    if params["keep"] == "longest":
        grouped = [d for cluster in members for d in cluster]
        for start in range(0, len(grouped), pairs.CHUNK):
            lengths.update(
                DocumentRow.objects.filter(
                    dataset_id=dataset_id, id__in=grouped[start : start + pairs.CHUNK]
                ).values_list("id", "char_count")
            )
    for group, (kept_id, cluster) in zip(
        groups, _kept(params, members, lengths, dataset_id), strict=True
    ):
        kept[group] = group[cluster.index(kept_id)]
    return kept


@transaction.atomic
def _write_semantic_groups(
    run: PipelineRun,
    spec: dict[str, Any],
    ids: np.ndarray,
    result: Any,
    groups: list[np.ndarray],
    kept: np.ndarray,
    similarity: np.ndarray,
) -> None:
    dataset_id = run.dataset_id
    key = run_key(run, spec["step"])
    DuplicateGroup.objects.filter(dataset_id=dataset_id, run_key=key).delete()
    created = DuplicateGroup.objects.bulk_create(
        [
            DuplicateGroup(
                dataset_id=dataset_id,
                kind=DuplicateGroup.Kind.SEMANTIC,
                step=spec["step"],
                step_version=spec["version"],
                run_key=key,
                size=len(group),
            )
            for group in groups
        ],
        batch_size=pairs.CHUNK,
    )
    DuplicateMember.objects.bulk_create(
        (
            DuplicateMember(
                group=row,
                document_id=int(ids[p]),
                is_representative=bool(kept[p] == p),
                similarity=float(similarity[p]),
            )
            for row, group in zip(created, groups, strict=True)
            for p in group.tolist()
        ),
        batch_size=pairs.CHUNK,
    )
    sizes = np.bincount(result.labels, minlength=len(ids))[result.labels]
    signals = {s.name: s for s in Signal.objects.filter(name__in=SEMANTIC_SIGNALS)}
    signal_rows_write(
        signals=[signals[name] for name in SEMANTIC_SIGNALS],
        dataset_id=dataset_id,
        rows=(
            (document, size, keep == p, value if size > 1 else None, cluster)
            for p, (document, size, keep, value, cluster) in enumerate(
                zip(
                    ids.tolist(),
                    sizes.tolist(),
                    kept.tolist(),
                    similarity.tolist(),
                    result.assignment.tolist(),
                    strict=True,
                )
            )
        ),
    )
    summary = {
        "clusters": result.clusters,
        "documents": len(ids),
        "eps": result.table,
        "eps_used": spec["params"]["eps"],
    }
    run_results_merge(run=run, key="semantic_dedup", value=summary)
