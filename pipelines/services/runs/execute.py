"""Execute one batch on a worker: claim it, compute and write, finish the run.

The numbered procedure of the ``pipelines.services.runs`` docstring. A document batch
runs its stage's steps over its id range and writes their signals in one upsert; a
corpus batch runs its step's corpus phase (``pipelines.services.corpus``).
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
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from curation.models import Document as DocumentRow
from curation.models import Signal
from curation.services.signals import signal_rows_write
from curation.services.vectors import vectors_missing, vectors_write
from curation.workers import worker_name
from pipelines.errors import BatchLeaseLostError
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.definitions import step_from_spec
from pipelines.services.derived import derive_batch, derived_write
from pipelines.services.runs.dispatch import ACTIVE, run_finish_if_complete
from pipelines.steps.base import Document, Step
from pipelines.steps.derive import DerivedRecord, DeriveStep

logger = logging.getLogger(__name__)


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
