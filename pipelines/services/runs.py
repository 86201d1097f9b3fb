"""Pipeline runs: plan batches, execute them on workers, finish, cancel, retry, resume.

A run snapshots its pipeline's definition (step versions, params, signals) and
is cut into batches: one per (stage, contiguous id range), where a stage is a
run of consecutive steps on the same device. Running a stage's steps together
reads each document once, lets them share per-process caches (the heuristic
steps tokenize each document once between them) and writes all their signals
in one upsert. Each batch is one Celery task that:

1. claims the batch with a conditional UPDATE (a lease), so a batch runs once at a
   time and a re-delivered or duplicated task finds nothing to do;
2. reads the range's documents, runs the stage's steps, and in one transaction
   upserts their signal values and marks the batch done; a worker killed mid-batch
   leaves it running with a lease that expires, and the batch is queued again;
3. finishes the run when no batch is left, with the status derived from the
   batches (never counted up).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from curation.models import Dataset, Signal
from curation.models import Document as DocumentRow
from curation.services.leases import requeue_cutoff
from curation.services.signals import signal_define, signal_rows_write, signal_table_compact
from curation.services.vectors import vectors_missing, vectors_write
from curation.workers import worker_name
from pipelines.errors import BatchLeaseLostError, PipelineDefinitionError
from pipelines.models import Pipeline, PipelineRun, RunBatch
from pipelines.services.definitions import definition_snapshot, step_from_spec
from pipelines.services.derived import (
    derive_batch,
    derived_targets_ensure,
    derived_targets_finish,
    derived_write,
)
from pipelines.steps.base import Document, Step
from pipelines.steps.derive import DerivedRecord, DeriveStep

logger = logging.getLogger(__name__)

ACTIVE = (PipelineRun.Status.PENDING, PipelineRun.Status.RUNNING)


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


@lru_cache(maxsize=32)
def _step(spec_json: bytes) -> Step:
    """One step instance per definition and process: models load once."""
    return step_from_spec(orjson.loads(spec_json))


def _claim(batch_id: int, owner: str) -> bool:
    now = timezone.now()
    return bool(
        RunBatch.objects.filter(pk=batch_id, run__status__in=ACTIVE)
        .filter(
            Q(status=RunBatch.Status.PENDING)
            | Q(status=RunBatch.Status.RUNNING, lease_expires_at__lt=now)
        )
        .update(
            status=RunBatch.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=settings.WINNOW_BATCH_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )


def run_batch_execute(*, batch_id: int, owner: str | None = None) -> RunBatch | None:
    """Run one batch to the end (see the module docstring); None when not claimable."""
    owner = owner or worker_name()
    early = RunBatch.objects.filter(
        pk=batch_id,
        phase=RunBatch.Phase.CORPUS,
        run__batches__phase=RunBatch.Phase.DOCUMENT,
        run__batches__status__in=[RunBatch.Status.PENDING, RunBatch.Status.RUNNING],
    ).exists()
    if early:
        logger.info("batch %s: corpus phase waits for the document batches", batch_id)
        return None
    if not _claim(batch_id, owner):
        logger.info("batch %s: not claimable (done, held, or its run is not active)", batch_id)
        return None
    batch = RunBatch.objects.select_related("run").get(pk=batch_id)
    run = batch.run
    PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.PENDING).update(
        status=PipelineRun.Status.RUNNING, started_at=timezone.now()
    )
    if batch.phase == RunBatch.Phase.CORPUS:
        _run_corpus_phase(batch, owner)
        run_finish_if_complete(run_id=run.pk)
        batch.refresh_from_db()
        return batch
    specs = [run.definition[i] for i in run.stages[batch.stage_index]]
    started = time.perf_counter()
    documents = [
        Document(id=pk, text=text, meta=meta)
        for pk, text, meta in DocumentRow.objects.filter(
            dataset_id=run.dataset_id,
            id__gte=batch.first_document_id,
            id__lte=batch.last_document_id,
        )
        .order_by("id")
        .values_list("id", "text", "meta")
    ]
    columns: list[list[Any]] = []
    derived: list[tuple[dict[str, Any], list[DerivedRecord]]] = []
    for offset, spec in enumerate(specs):
        step = _step(orjson.dumps({"step": spec["step"], "params": spec["params"]}))
        try:
            _store_vectors(run.dataset_id, step, documents)
            if isinstance(step, DeriveStep):
                # A generator's records are written with the batch's values (see derived.py).
                derivation = derive_batch(run=run, step=step, documents=documents)
                columns.extend(_columns(spec, documents, derivation.values))
                derived.append((spec, derivation.records))
                continue
            columns.extend(_columns(spec, documents, step.run(documents)))
        except Exception as exc:  # noqa: BLE001 - any step failure is recorded on the batch
            _fail(batch, owner, run.stages[batch.stage_index][offset], step, documents, exc)
            break
    else:
        # A stage whose steps write no per-document signal (MinHash: all of its work
        # is in the corpus phase) has nothing to write, only a batch to mark done.
        rows = (
            [
                (doc.id, *values)
                for doc, values in zip(documents, zip(*columns, strict=True), strict=True)
            ]
            if columns
            else []
        )
        _complete(batch, owner, specs, rows, time.perf_counter() - started, derived)
    run_finish_if_complete(run_id=run.pk)
    batch.refresh_from_db()
    return batch


def _store_vectors(dataset_id: int, step: Step, documents: list[Document]) -> None:
    """Embed the batch's documents that have no stored vector for the step's model yet."""
    model = step.vector_model()
    if model is None or not documents:
        return
    missing = set(
        vectors_missing(dataset_id=dataset_id, model=model, ids=[d.id for d in documents])
    )
    todo = [d for d in documents if d.id in missing]
    if not todo:
        logger.info("dataset %s: vectors of %s already stored", dataset_id, model)
        return
    started = time.perf_counter()
    vectors = step.embed(todo)
    vectors_write(dataset_id=dataset_id, model=model, ids=[d.id for d in todo], vectors=vectors)
    logger.info(
        "dataset %s: embedded %d documents with %s in %.2fs",
        dataset_id,
        len(todo),
        model,
        time.perf_counter() - started,
    )


def _run_corpus_phase(batch: RunBatch, owner: str) -> None:
    from pipelines.services.corpus import CORPUS_PHASES, COUNTED

    spec = batch.run.definition[batch.stage_index]
    started = time.perf_counter()
    try:
        with transaction.atomic():
            counted = CORPUS_PHASES[spec["step"]](batch.run, spec)
            done = RunBatch.objects.filter(
                pk=batch.pk, lease_owner=owner, status=RunBatch.Status.RUNNING
            ).update(
                status=RunBatch.Status.DONE,
                seconds=time.perf_counter() - started,
                finished_at=timezone.now(),
                lease_expires_at=None,
                error="",
            )
            if not done:
                raise BatchLeaseLostError(f"batch {batch.pk}: lease taken over")
    except BatchLeaseLostError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the batch, shown on the run page
        RunBatch.objects.filter(pk=batch.pk, lease_owner=owner).update(
            status=RunBatch.Status.FAILED,
            error="".join(traceback.format_exception(exc))[-20_000:],
            failed_step_index=batch.stage_index,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        logger.warning("run %s corpus phase of %s failed: %r", batch.run_id, spec["step"], exc)
    else:
        logger.info(
            "run %s corpus phase of %s: %d %s in %.2fs",
            batch.run_id,
            spec["step"],
            counted,
            COUNTED.get(spec["step"], "groups"),
            time.perf_counter() - started,
        )


def _columns(
    spec: dict[str, Any], documents: Sequence[Document], values: dict[str, list[Any]]
) -> list[list[Any]]:
    """The step's values, one list per declared signal, checked against the contract."""
    names = [s["name"] for s in spec["signals"]]
    if set(values) != set(names):
        raise ValueError(
            f"step {spec['step']} returned signals {sorted(values)}, declared {sorted(names)}"
        )
    for name in names:
        if len(values[name]) != len(documents):
            raise ValueError(
                f"step {spec['step']} returned {len(values[name])} values of {name} "
                f"for {len(documents)} documents"
            )
    return [values[name] for name in names]


def _complete(
    batch: RunBatch,
    owner: str,
    specs: list[dict[str, Any]],
    rows: list[tuple[Any, ...]],
    seconds: float,
    derived: Sequence[tuple[dict[str, Any], list[DerivedRecord]]] = (),
) -> None:
    names = [signal["name"] for spec in specs for signal in spec["signals"]]
    by_name = {s.name: s for s in Signal.objects.filter(name__in=names)}
    signals = [by_name[name] for name in names]
    with transaction.atomic():
        signal_rows_write(signals=signals, dataset_id=batch.run.dataset_id, rows=rows)
        for spec, records in derived:
            derived_write(run=batch.run, spec=spec, records=records)
        done = RunBatch.objects.filter(
            pk=batch.pk, lease_owner=owner, status=RunBatch.Status.RUNNING
        ).update(
            status=RunBatch.Status.DONE,
            seconds=seconds,
            finished_at=timezone.now(),
            lease_expires_at=None,
            error="",
            failed_document_id=None,
            failed_step_index=None,
        )
        if not done:
            raise BatchLeaseLostError(f"batch {batch.pk}: lease taken over; values not written")
    logger.info(
        "run %s steps %s batch %s: %d documents in %.2fs (%.0f docs/s)",
        batch.run_id,
        "+".join(spec["step"] for spec in specs),
        batch.pk,
        batch.size,
        seconds,
        batch.size / seconds if seconds else 0,
    )


def _fail(
    batch: RunBatch,
    owner: str,
    step_index: int,
    step: Step,
    documents: Sequence[Document],
    exc: Exception,
) -> None:
    """Record the failure with the first document the step fails on alone, when one does."""
    failing = None
    if len(documents) > 1:
        for document in documents:
            try:
                step.run([document])
            except Exception:  # noqa: BLE001 - looking for the document that fails
                failing = document.id
                break
    elif documents:
        failing = documents[0].id
    RunBatch.objects.filter(pk=batch.pk, lease_owner=owner).update(
        status=RunBatch.Status.FAILED,
        error="".join(traceback.format_exception(exc))[-20_000:],
        failed_document_id=failing,
        failed_step_index=step_index,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    logger.warning("batch %s failed on document %s: %r", batch.pk, failing, exc)


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
