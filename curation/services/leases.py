"""Leases on long jobs: a row that one worker owns for a while, renewed while it works.

Any model with ``status``, ``lease_owner``, ``lease_expires_at``, ``queued_at`` and
``created_at`` fields and PENDING / RUNNING statuses can use these helpers (imports
claim with their own UPDATE, which also counts attempts; exports use all of them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from curation.errors import LeaseLostError


def lease_claim(*, model: type[models.Model], pk: int, owner: str, seconds: float) -> bool:
    """Take the lease of a pending job, or of a running one whose holder's lease ran out.

    One conditional UPDATE: of two workers racing for the same row, one updates it
    and the other finds no row to update.
    """
    now = timezone.now()
    status: Any = model.Status  # type: ignore[attr-defined]
    return bool(
        model._default_manager.filter(pk=pk)
        .filter(Q(status=status.PENDING) | Q(status=status.RUNNING, lease_expires_at__lt=now))
        .update(
            status=status.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=seconds),
            started_at=Coalesce("started_at", Value(now)),
        )
    )


def lease_renew(
    *, model: type[models.Model], pk: int, owner: str, seconds: float, **fields: Any
) -> None:
    """Extend the lease and write ``fields`` in the same UPDATE; raise if it was taken over."""
    updated = model._default_manager.filter(pk=pk, lease_owner=owner).update(
        lease_expires_at=timezone.now() + timedelta(seconds=seconds), **fields
    )
    if not updated:
        raise LeaseLostError(f"{model._meta.model_name} {pk}: lease taken over by another worker")


def requeue_cutoff(now: datetime | None = None) -> datetime:
    """A job whose message is older than this (WINNOW_REQUEUE_AFTER_SECONDS ago) is sent again."""
    from django.conf import settings

    return (now or timezone.now()) - timedelta(seconds=settings.WINNOW_REQUEUE_AFTER_SECONDS)


def stale_jobs(*, model: type[models.Model], requeue_after: float) -> Q:
    """Jobs to queue again: a running one whose worker died, a pending one never picked up.

    A job is queued again only if it was not queued since it went stale, or its last
    message is older than ``requeue_after`` seconds (a Redis restart without
    persistence loses queued messages), so a long queue does not fill with copies.
    """
    now: datetime = timezone.now()
    old = now - timedelta(seconds=requeue_after)
    status: Any = model.Status  # type: ignore[attr-defined]
    return Q(status=status.RUNNING, lease_expires_at__lt=now) & (
        Q(queued_at__isnull=True) | Q(queued_at__lt=F("lease_expires_at")) | Q(queued_at__lt=old)
    ) | Q(status=status.PENDING) & (
        Q(queued_at__isnull=True, created_at__lt=old) | Q(queued_at__lt=old)
    )


def lease_resume_delays(*, model: type[models.Model]) -> list[tuple[int, float]]:
    """(id, seconds until its holder's lease runs out, plus 0.5) of every running job.

    On a worker's start, a job still marked running belongs to a dead holder; it can
    be queued to resume that many seconds later.
    """
    now = timezone.now()
    status: Any = model.Status  # type: ignore[attr-defined]
    running = model._default_manager.filter(status=status.RUNNING).values_list(
        "pk", "lease_expires_at"
    )
    return [
        (pk, max(0.0, (expires - now).total_seconds()) + 0.5 if expires else 0.0)
        for pk, expires in running
    ]
