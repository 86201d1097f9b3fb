"""Celery tasks of the pipelines app: thin interfaces over services.runs."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

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
