"""Celery tasks of the curation app: thin interfaces that take ids and call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from curation.errors import TransientError

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    max_retries=5,
)
def import_run(self: Any, job_id: int) -> None:
    from curation.services.imports import import_job_run

    import_job_run(job_id=job_id)


@shared_task
def imports_resume_stale() -> None:
    from curation.services.imports import import_jobs_resume_stale

    resumed = import_jobs_resume_stale()
    if resumed:
        logger.info("re-queued stale imports %s", resumed)


@shared_task(
    bind=True,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    max_retries=5,
)
def export_run(self: Any, snapshot_id: int) -> None:
    from curation.services.exports import export_run as run

    run(snapshot_id=snapshot_id)


@shared_task
def exports_resume_stale() -> None:
    from curation.services.exports import exports_resume_stale as resume

    resumed = resume()
    if resumed:
        logger.info("re-queued stale exports %s", resumed)


@worker_ready.connect
def _resume_exports_after_restart(**_: Any) -> None:
    """A killed worker's exports hold a lease; queue them to run once it expires."""
    from curation.services.exports import exports_resume_after_restart

    resumed = exports_resume_after_restart()
    if resumed:
        logger.info("will resume exports %s when their leases expire", resumed)


@shared_task
def search_index_build(dataset_id: int) -> None:
    """The dataset's search index, then the bits of its common words (``text_hits.py``):
    queued after every import, so the words' bits follow the documents."""
    from curation.explorer.text_hits import common_words_build
    from curation.services.search import search_index_build as build

    build(dataset_id=dataset_id)
    common_words_build(dataset_id=dataset_id)


@shared_task
def signal_index_build(dataset_id: int, signal_id: int) -> None:
    from curation.services.signal_indexes import signal_index_build as build

    build(dataset_id=dataset_id, signal_id=signal_id)


@worker_ready.connect
def _resume_after_restart(**_: Any) -> None:
    """A killed worker's imports hold a lease; queue them to run once it expires."""
    from curation.services.imports import import_jobs_resume_after_restart

    resumed = import_jobs_resume_after_restart()
    if resumed:
        logger.info("will resume imports %s when their leases expire", resumed)
