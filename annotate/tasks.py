"""Celery tasks of the annotate app: thin interfaces that take ids and call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from curation.errors import TransientError

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(TransientError,), retry_backoff=True, max_retries=3)
def answer_signals_write(project_id: int, include_agreed: bool = False) -> None:
    """Write a project's final answers as signals on its documents (idempotent)."""
    from annotate.models import AnnotationProject
    from annotate.services.answer_signals import answer_signals_write as write

    project = AnnotationProject.objects.filter(pk=project_id).first()
    if project is None:
        logger.warning("annotation project %s no longer exists", project_id)
        return
    write(project=project, include_agreed=include_agreed)
