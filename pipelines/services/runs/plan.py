"""Plan a run: snapshot its pipeline, define its signals and cut it into batches."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.utils import timezone

from curation.models import Dataset
from curation.services.signals import signal_define
from pipelines.errors import PipelineDefinitionError
from pipelines.models import Pipeline, PipelineRun, RunBatch
from pipelines.services.definitions import definition_snapshot
from pipelines.services.derived import derived_targets_ensure


def plan_stages(snapshot: list[dict[str, Any]]) -> list[list[int]]:
    """Group consecutive steps of the same device: [[0, 1, 2], [3], [4, 5]]."""
    stages: list[list[int]] = []
    for index, step in enumerate(snapshot):
        if stages and snapshot[stages[-1][-1]]["device"] == step["device"]:
            stages[-1].append(index)
        else:
            stages.append([index])
    return stages


def document_ranges(*, dataset_id: int, size: int) -> list[tuple[int, int, int]]:
    """Contiguous id ranges of ``size`` documents: (first id, last id, count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id), count(*) FROM ("
            "  SELECT id, (row_number() OVER (ORDER BY id) - 1) / %s AS chunk"
            "  FROM curation_document WHERE dataset_id = %s"
            ") numbered GROUP BY chunk ORDER BY chunk",
            [size, dataset_id],
        )
        return [(int(a), int(b), int(n)) for a, b, n in cursor.fetchall()]


@transaction.atomic
def run_create(
    *,
    pipeline: Pipeline,
    dataset: Dataset,
    user: User | AnonymousUser | None = None,
    trigger: str = "manual",
) -> PipelineRun:
    """Snapshot the pipeline, define its signals and plan every batch of the run."""
    from pipelines.services.corpus import CORPUS_PHASES

    snapshot = definition_snapshot(pipeline.definition)
    unknown = [
        s["step"] for s in snapshot if s["level"] == "corpus" and s["step"] not in CORPUS_PHASES
    ]
    if unknown:
        raise PipelineDefinitionError(f"corpus-level steps {unknown} have no corpus phase")
    for step in snapshot:
        for signal in [*step["signals"], *step["corpus_signals"]]:
            signal_define(
                name=signal["name"],
                step=step["step"],
                step_version=step["version"],
                dtype=signal["dtype"],
                description=signal["description"],
            )
    stages = plan_stages(snapshot)
    run = PipelineRun.objects.create(
        pipeline=pipeline,
        dataset=dataset,
        pipeline_version=pipeline.version,
        definition=snapshot,
        stages=stages,
        batch_size=pipeline.batch_size,
        created_by=user if user is not None and user.is_authenticated else None,
        trigger=trigger,
    )
    derived_targets_ensure(run=run)
    ranges = document_ranges(dataset_id=dataset.pk, size=pipeline.batch_size)
    RunBatch.objects.bulk_create(
        RunBatch(
            run=run,
            stage_index=index,
            first_document_id=first,
            last_document_id=last,
            size=count,
        )
        for index in range(len(stages))
        for first, last, count in ranges
    )
    if ranges:
        total = sum(count for _, _, count in ranges)
        RunBatch.objects.bulk_create(
            RunBatch(
                run=run,
                phase=RunBatch.Phase.CORPUS,
                stage_index=index,
                first_document_id=0,
                last_document_id=0,
                size=total,
            )
            for index, step in enumerate(snapshot)
            if step["level"] == "corpus"
        )
    if not ranges:
        run.status = PipelineRun.Status.SUCCEEDED
        run.started_at = run.finished_at = timezone.now()
        run.save(update_fields=["status", "started_at", "finished_at"])
    return run
