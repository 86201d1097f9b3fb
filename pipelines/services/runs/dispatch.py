"""Queue a run's batches and move the run on: dispatch, finish, cancel, resume.

A run's status is derived from its batches here (``run_finish_if_complete``), and every
batch reaches the broker through ``_queue``, on its stage's device queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from curation.services.leases import requeue_cutoff
from curation.services.signals import signal_table_compact
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.derived import derived_targets_finish

ACTIVE = (PipelineRun.Status.PENDING, PipelineRun.Status.RUNNING)


def run_dispatch(*, run: PipelineRun) -> int:
    """Queue the run's pending batches once the current transaction commits.

    Document batches first; the corpus phases only once no document batch is left.
    """
    open_documents = run.batches.filter(
        phase=RunBatch.Phase.DOCUMENT,
        status__in=[RunBatch.Status.PENDING, RunBatch.Status.RUNNING],
    ).exists()
    phase = RunBatch.Phase.DOCUMENT if open_documents else RunBatch.Phase.CORPUS
    pending = list(
        run.batches.filter(status=RunBatch.Status.PENDING, phase=phase).values_list(
            "pk", "stage_index"
        )
    )
    transaction.on_commit(lambda: _queue(run, pending))
    return len(pending)


def _queue(run: PipelineRun, batches: Sequence[tuple[int, int]], countdown: float = 0) -> None:
    from pipelines.tasks import run_batch

    RunBatch.objects.filter(pk__in=[pk for pk, _ in batches]).update(queued_at=timezone.now())
    phases = dict(
        RunBatch.objects.filter(pk__in=[pk for pk, _ in batches]).values_list("pk", "phase")
    )
    devices = [run.definition[stage[0]]["device"] for stage in run.stages]
    for pk, stage_index in batches:
        # A corpus batch's stage_index is its step's index: the phase runs on that
        # step's device (SQL-only phases on the CPU, semantic dedup on a GPU).
        queue = (
            run.definition[stage_index]["device"]
            if phases.get(pk) == RunBatch.Phase.CORPUS
            else devices[stage_index]
        )
        run_batch.apply_async((pk,), queue=queue, countdown=countdown)


def run_finish_if_complete(*, run_id: int) -> PipelineRun:
    """Finish the run when no batch is pending or running: failed if any batch failed."""
    run = PipelineRun.objects.get(pk=run_id)
    if run.status != PipelineRun.Status.RUNNING:
        return run
    open_statuses = [RunBatch.Status.PENDING, RunBatch.Status.RUNNING]
    if run.batches.filter(phase=RunBatch.Phase.DOCUMENT, status__in=open_statuses).exists():
        return run
    failed = run.batches.filter(status=RunBatch.Status.FAILED).count()
    if not failed and run.batches.filter(status__in=open_statuses).exists():
        # Documents are done: the corpus phases run now (queued once).
        unqueued = list(
            run.batches.filter(
                phase=RunBatch.Phase.CORPUS, status=RunBatch.Status.PENDING, queued_at__isnull=True
            ).values_list("pk", "stage_index")
        )
        if unqueued:
            transaction.on_commit(lambda: _queue(run, unqueued))
        return run
    status = PipelineRun.Status.FAILED if failed else PipelineRun.Status.SUCCEEDED
    finished = PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.RUNNING).update(
        status=status,
        finished_at=timezone.now(),
        error=f"{failed} batch(es) failed: retry them from the run page" if failed else "",
    )
    if finished and not failed and not connection.in_atomic_block:
        # Each batch left old row versions behind; filters scan half as many pages after.
        signal_table_compact(dataset_id=run.dataset_id)
    if finished:
        derived_targets_finish(run=run)
    run.refresh_from_db()
    return run


def run_cancel(*, run: PipelineRun) -> bool:
    """Stop handing out batches; batches already computing finish and are kept."""
    return bool(
        PipelineRun.objects.filter(pk=run.pk, status__in=ACTIVE).update(
            status=PipelineRun.Status.CANCELLED, finished_at=timezone.now()
        )
    )


@transaction.atomic
def run_resume(*, run: PipelineRun, retry_failed: bool = False) -> int:
    """Queue the run's unfinished batches again (and its failed ones when asked)."""
    now = timezone.now()
    reset = run.batches.filter(
        Q(status__in=[RunBatch.Status.PENDING, RunBatch.Status.FAILED])
        | Q(status=RunBatch.Status.RUNNING, lease_expires_at__lt=now)
    )
    if not retry_failed:
        reset = reset.exclude(status=RunBatch.Status.FAILED)
    reset.update(status=RunBatch.Status.PENDING, lease_expires_at=None)
    if not run.batches.filter(status=RunBatch.Status.PENDING).exists():
        return 0
    PipelineRun.objects.filter(pk=run.pk).update(
        status=PipelineRun.Status.RUNNING, finished_at=None, error=""
    )
    run.refresh_from_db()
    return run_dispatch(run=run)


def runs_resume_stale() -> int:
    """Queue batches whose worker died (lease expired) or whose message was lost.

    Beat calls this every minute. A worker killed after taking a message but before
    claiming its batch loses the message (the broker redelivers it only after its
    visibility timeout); the batch stays pending and is queued again here once its
    last message is WINNOW_REQUEUE_AFTER_SECONDS old. Duplicates are harmless: the
    claim lets one through.
    """
    now = timezone.now()
    old = requeue_cutoff(now)
    stale = (
        RunBatch.objects.filter(run__status__in=ACTIVE)
        .filter(
            Q(status=RunBatch.Status.RUNNING, lease_expires_at__lt=now)
            & (
                Q(queued_at__isnull=True)
                | Q(queued_at__lt=F("lease_expires_at"))
                | Q(queued_at__lt=old)
            )
            | Q(status=RunBatch.Status.PENDING) & (Q(queued_at__isnull=True) | Q(queued_at__lt=old))
        )
        .select_related("run")
    )
    by_run: dict[int, list[tuple[int, int]]] = {}
    runs: dict[int, PipelineRun] = {}
    for batch in stale:
        by_run.setdefault(batch.run_id, []).append((batch.pk, batch.stage_index))
        runs[batch.run_id] = batch.run
    for run_id, batches in by_run.items():
        _queue(runs[run_id], batches)
    return sum(len(b) for b in by_run.values())


def runs_resume_after_restart() -> int:
    """On worker start: queue running batches to run as soon as their dead holder's lease ends."""
    now = timezone.now()
    count = 0
    for batch in RunBatch.objects.filter(
        status=RunBatch.Status.RUNNING, run__status__in=ACTIVE
    ).select_related("run"):
        expires = batch.lease_expires_at
        wait = max(0.0, (expires - now).total_seconds()) + 0.5 if expires else 0.0
        _queue(batch.run, [(batch.pk, batch.stage_index)], countdown=wait)
        count += 1
    return count
