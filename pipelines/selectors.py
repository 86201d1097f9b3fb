"""Reads for the pipelines pages, API and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from curation.models import Dataset
from pipelines.models import Pipeline, PipelineRun, PipelineSchedule, RunBatch


def pipeline_list() -> QuerySet[Pipeline]:
    return Pipeline.objects.order_by("name")


def run_list(*, dataset_id: int | None = None, limit: int = 50) -> QuerySet[PipelineRun]:
    qs = PipelineRun.objects.select_related("pipeline", "dataset").order_by("-created_at")
    if dataset_id is not None:
        qs = qs.filter(dataset_id=dataset_id)
    return qs[:limit]


@dataclass(frozen=True)
class StepProgress:
    index: int
    step: str
    version: str
    device: str
    batches: int
    done: int
    failed: int
    running: int
    documents: int
    documents_done: int
    docs_per_second: float | None  # compute speed in one worker
    eta_seconds: float | None
    corpus_status: str | None = None  # corpus-level steps: their dataset-wide phase

    @property
    def fraction(self) -> float:
        return self.done / self.batches if self.batches else 1.0


def run_progress(*, run: PipelineRun) -> list[StepProgress]:
    """Per-step progress from the batch rows (derived, never counted up)."""
    corpus = dict(
        run.batches.filter(phase=RunBatch.Phase.CORPUS).values_list("stage_index", "status")
    )
    by_stage = {
        row["stage_index"]: row
        for row in run.batches.filter(phase=RunBatch.Phase.DOCUMENT)
        .values("stage_index")
        .annotate(
            batches=Count("id"),
            done=Count("id", filter=Q(status=RunBatch.Status.DONE)),
            failed=Count("id", filter=Q(status=RunBatch.Status.FAILED)),
            running=Count("id", filter=Q(status=RunBatch.Status.RUNNING)),
            documents=Sum("size"),
            documents_done=Sum("size", filter=Q(status=RunBatch.Status.DONE)),
            seconds=Sum("seconds", filter=Q(status=RunBatch.Status.DONE)),
        )
    }
    end = run.finished_at or timezone.now()
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    progress = []
    stage_of = {step: stage for stage, steps in enumerate(run.stages) for step in steps}
    for index, spec in enumerate(run.definition):
        # Steps of one stage run on the same batches: they share its progress.
        row: dict[str, Any] = dict(by_stage.get(stage_of.get(index, -1), {}))
        done_docs = row.get("documents_done") or 0
        total_docs = row.get("documents") or 0
        # The step's own speed (documents per second of compute in one worker), and an
        # ETA from its progress over the run's wall time (several workers share it).
        seconds = row.get("seconds") or 0.0
        rate = done_docs / seconds if seconds > 0 else None
        wall_rate = done_docs / elapsed if elapsed > 0 and done_docs else None
        eta = (total_docs - done_docs) / wall_rate if wall_rate and not run.is_finished else None
        progress.append(
            StepProgress(
                index=index,
                step=spec["step"],
                version=spec["version"],
                device=spec["device"],
                batches=row.get("batches", 0),
                done=row.get("done", 0),
                failed=row.get("failed", 0),
                running=row.get("running", 0),
                documents=total_docs,
                documents_done=done_docs,
                docs_per_second=rate,
                eta_seconds=eta,
                corpus_status=corpus.get(index),
            )
        )
    return progress


def run_failures(*, run: PipelineRun, limit: int = 20) -> QuerySet[RunBatch]:
    return run.batches.filter(status=RunBatch.Status.FAILED).order_by("stage_index", "id")[:limit]


@dataclass(frozen=True)
class ScheduleRow:
    schedule: PipelineSchedule
    next_run: datetime | None
    last_run_at: datetime | None


def schedule_list(*, pipeline: Pipeline | None = None) -> list[ScheduleRow]:
    """Schedules with when beat runs them next and when they last ran."""
    from pipelines.services.schedules import schedule_next_run

    qs = PipelineSchedule.objects.select_related(
        "pipeline", "dataset", "periodic_task__crontab", "last_run"
    )
    if pipeline is not None:
        qs = qs.filter(pipeline=pipeline)
    return [
        ScheduleRow(
            schedule=s,
            next_run=schedule_next_run(s),
            last_run_at=s.last_run.created_at if s.last_run else None,
        )
        for s in qs
    ]


def run_targets(*, run: PipelineRun) -> list[Dataset]:
    """The datasets the run's generator steps write to (those that exist), in step order."""
    from pipelines.services.derived import target_name

    names = [
        target_name(spec=spec, dataset=run.dataset)
        for spec in run.definition
        if spec.get("level") == "derive"
    ]
    found = {d.name: d for d in Dataset.objects.filter(name__in=names)}
    return [found[name] for name in names if name in found]
