"""Celery tasks of the pipelines app: thin interfaces over services.runs."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from curation.errors import TransientError
from pipelines.errors import BatchLeaseLostError

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(BatchLeaseLostError,), retry_backoff=True, max_retries=3)
def run_batch(batch_id: int) -> None:
    from pipelines.services.runs import run_batch_execute

    run_batch_execute(batch_id=batch_id)


@shared_task
def runs_resume_stale() -> None:
    from pipelines.services.runs import runs_resume_stale as resume

    if queued := resume():
        logger.info("re-queued %d stale batches", queued)


@worker_ready.connect
def _resume_after_restart(**_: Any) -> None:
    from pipelines.services.runs import runs_resume_after_restart

    if queued := runs_resume_after_restart():
        logger.info("will resume %d batches when their leases expire", queued)


@shared_task
def run_scheduled(schedule_id: int) -> None:
    from pipelines.models import PipelineSchedule
    from pipelines.services.schedules import schedule_run

    schedule = PipelineSchedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        logger.warning("schedule %s no longer exists", schedule_id)
        return
    schedule_run(schedule=schedule)


@shared_task
def import_finished(dataset_id: int, job_id: int) -> None:
    """Sent by name by the curation app when an import succeeds."""
    from pipelines.services.schedules import schedules_after_import

    for run in schedules_after_import(dataset_id=dataset_id):
        logger.info("import %s started run %s", job_id, run.pk)


@shared_task(autoretry_for=(TransientError,), retry_backoff=True, max_retries=3)
def classifier_apply(classifier_id: int, dataset_id: int) -> None:
    """Write a quality classifier's signal over a dataset (state on the classifier row)."""
    from pipelines.services.classifiers import classifier_apply_execute

    classifier_apply_execute(classifier_id=classifier_id, dataset_id=dataset_id)


@shared_task
def generation_preview(preview_id: int) -> None:
    """Run a generator preview (queued by the preview page on the step's device queue)."""
    from pipelines.services.previews import preview_execute

    preview_execute(preview_id=preview_id)
