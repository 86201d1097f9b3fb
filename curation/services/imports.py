"""Streaming import: files in, Document rows out through COPY, bad rows reported.

The procedure (``import_job_run``):

1. Claim the job with a conditional UPDATE (a lease); a second worker finds no row
   to claim and stops.
2. Stream COPY-ready batches from a child process (``batches.BatchStream``: read,
   validate, hash, count, escape), starting after the job's checkpoint when it
   is a resumed run.
3. Every batch is one transaction: COPY the good rows into ``curation_document``,
   store the rejections (the first ``WINNOW_REJECTIONS_KEPT``; all are counted),
   advance the counters and the checkpoint, and renew the lease. A worker killed
   mid-batch loses that batch only; the next run resumes after the last commit.
4. Recount the dataset from its rows and mark the job finished.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from curation.errors import CurationError, ImportSourceError, LeaseLostError, PermanentError
from curation.models import Dataset, ImportJob, ImportRejection
from curation.services import readers
from curation.services.batches import (
    DOCUMENT_COLUMNS,
    BatchSpec,
    BatchStream,
    PreparedBatch,
    duplicate_rejection,
)
from curation.services.datasets import dataset_recount
from curation.services.leases import lease_resume_delays, stale_jobs
from curation.services.search import search_index_before_import, search_index_dispatch
from curation.workers import worker_name

logger = logging.getLogger(__name__)


def reason_kind(reason: str) -> str:
    """The short kind of a rejection reason ("invalid JSON"), used to count them all."""
    for stop in (":", " (", ";"):
        reason = reason.split(stop, 1)[0]
    return reason.strip()[:80] or "rejected"


def import_job_create(
    *,
    dataset: Dataset,
    path: Path | str,
    origin: str,
    user: User | AnonymousUser | None = None,
    text_field: str = "text",
    id_field: str = "",
    fmt: str = "",
    source_name: str = "",
) -> ImportJob:
    """Check the source can be read at all and record a pending job for it."""
    path = Path(path).resolve()
    try:
        detected = fmt or readers.detect_format(path)
        total = readers.count_bytes(path)
    except readers.SourceError as exc:
        raise ImportSourceError(str(exc)) from exc
    if total == 0:
        raise ImportSourceError(f"{path.name} is empty (0 bytes): there is nothing to import")
    if fmt and fmt not in readers.FORMATS:
        raise ImportSourceError(
            f"unknown format {fmt!r}: use one of {', '.join(readers.FORMATS)} or leave it out"
        )
    if not text_field.strip():
        raise PermanentError("say which field holds the text (text_field)")
    return ImportJob.objects.create(
        dataset=dataset,
        created_by=user if user is not None and user.is_authenticated else None,
        origin=origin,
        source_path=str(path),
        source_name=source_name or path.name,
        format=fmt or (detected if detected != "dir" else ""),
        text_field=text_field.strip(),
        id_field=id_field.strip(),
        bytes_total=total,
    )


def import_job_create_from_upload(
    *,
    dataset: Dataset,
    upload: UploadedFile,
    user: User | AnonymousUser | None = None,
    text_field: str = "text",
    id_field: str = "",
    fmt: str = "",
) -> ImportJob:
    """Keep an uploaded file in the uploads dir and record a job for it.

    Uploads stream to a temp file in the same dir, so keeping one is a rename. A
    file that cannot be imported at all is deleted again with the error raised.
    """
    name = Path(upload.name or "upload").name
    target = settings.UPLOAD_DIR / f"{uuid.uuid4().hex}-{name}"
    if isinstance(upload, TemporaryUploadedFile):
        shutil.move(upload.temporary_file_path(), target)
    else:
        with open(target, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    try:
        return import_job_create(
            dataset=dataset,
            path=target,
            origin=ImportJob.Origin.UPLOAD,
            user=user,
            text_field=text_field,
            id_field=id_field,
            fmt=fmt,
            source_name=name,
        )
    except CurationError:
        target.unlink(missing_ok=True)
        raise


def import_job_dispatch(*, job: ImportJob) -> None:
    """Queue the job for a worker once the current transaction commits."""
    transaction.on_commit(lambda: _queue([job.pk]))


def _queue(job_ids: list[int], countdown: float = 0.0) -> None:
    from curation.tasks import import_run

    ImportJob.objects.filter(pk__in=job_ids).update(queued_at=timezone.now())
    for job_id in job_ids:
        import_run.apply_async((job_id,), countdown=countdown)


def import_job_claim(*, job_id: int, owner: str) -> bool:
    """Take the job's lease if it is pending or its last holder's lease ran out."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WINNOW_IMPORT_LEASE_SECONDS)
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(status=ImportJob.Status.PENDING)
            | Q(status=ImportJob.Status.RUNNING, lease_expires_at__lt=now)
        )
        .update(
            status=ImportJob.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + lease,
            started_at=Coalesce("started_at", Value(now)),
        )
    )
    if claimed:
        ImportJob.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
    return bool(claimed)


def import_job_run(*, job_id: int, owner: str | None = None) -> ImportJob:
    """Run (or resume) an import to the end. Safe to call twice: the second finds no lease."""
    owner = owner or worker_name()
    if not import_job_claim(job_id=job_id, owner=owner):
        logger.info("import %s: not claimable (finished or held by a live worker)", job_id)
        return ImportJob.objects.get(pk=job_id)
    job = ImportJob.objects.select_related("dataset").get(pk=job_id)
    logger.info(
        "import %s: %s claimed %s (attempt %d)", job.pk, owner, job.source_name, job.attempts
    )
    search_index_before_import(dataset_id=job.dataset_id, source_bytes=job.bytes_total)
    try:
        _import_batches(job, owner)
    except (readers.SourceError, ImportSourceError) as exc:
        _finish(job, owner, ImportJob.Status.FAILED, str(exc))
    except LeaseLostError:
        logger.warning("import %s: lease lost to another worker; stopping", job.pk)
    else:
        _finish(job, owner, ImportJob.Status.SUCCEEDED, "")
    job.refresh_from_db()
    return job


def import_from_path(
    *,
    dataset: Dataset,
    path: Path | str,
    text_field: str = "text",
    id_field: str = "",
    fmt: str = "",
    user: User | AnonymousUser | None = None,
    origin: str = ImportJob.Origin.PYTHON,
) -> ImportJob:
    """Import in this process, without a worker (the Python API and ``--inline``)."""
    job = import_job_create(
        dataset=dataset,
        path=path,
        origin=origin,
        user=user,
        text_field=text_field,
        id_field=id_field,
        fmt=fmt,
    )
    return import_job_run(job_id=job.pk)


def _store_rejections(job: ImportJob, rejections: list[readers.Rejection]) -> None:
    room = settings.WINNOW_REJECTIONS_KEPT - min(job.rows_rejected, settings.WINNOW_REJECTIONS_KEPT)
    kept = rejections[: max(0, room)]
    if kept:
        ImportRejection.objects.bulk_create(
            [
                ImportRejection(
                    job=job,
                    source=r.source,
                    number=r.number,
                    field=r.field or "",
                    reason=r.reason,
                )
                for r in kept
            ],
            ignore_conflicts=True,
        )
    counts = dict(job.rejection_counts)
    for r in rejections:
        kind = reason_kind(r.reason)
        counts[kind] = counts.get(kind, 0) + 1
    job.rejection_counts = counts


def _spec(job: ImportJob) -> BatchSpec:
    start_after = None
    if job.checkpoint:
        cp = job.checkpoint
        start_after = (cp["source"], int(cp["number"]), cp.get("offset"))
    return BatchSpec(
        root=job.source_path,
        dataset_id=job.dataset_id,
        job_id=job.pk,
        text_field=job.text_field,
        id_field=job.id_field or None,
        fmt=job.format or None,
        max_record_bytes=settings.WINNOW_MAX_RECORD_BYTES,
        start_after=start_after,
        batch_rows=settings.WINNOW_IMPORT_BATCH_ROWS,
    )


def _import_batches(job: ImportJob, owner: str) -> None:
    stream = BatchStream(_spec(job))
    try:
        clock = time.perf_counter()
        for batch in stream:
            clock = _flush(job, owner, batch, clock)
    finally:
        stream.close()


def _copy_documents(batch: PreparedBatch) -> list[readers.Rejection]:
    """COPY the batch's rows; returns rejections for ids the dataset already had.

    The common case is one plain COPY. When an id already exists (from an earlier
    import), the batch goes through a staging table and ON CONFLICT DO NOTHING.
    """
    columns = ", ".join(DOCUMENT_COLUMNS)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY curation_document ({columns}) FROM STDIN") as copy:
                copy.write(batch.copy_data)
        return []
    except psycopg.errors.UniqueViolation:
        pass  # raised as is: the COPY ran on psycopg's cursor, not Django's wrapper
    except IntegrityError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
            raise
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS winnow_import_stage ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM curation_document WITH NO DATA"
        )
        cursor.execute("TRUNCATE winnow_import_stage")
        with cursor.cursor.copy(f"COPY winnow_import_stage ({columns}) FROM STDIN") as copy:
            copy.write(batch.copy_data)
        cursor.execute(
            f"INSERT INTO curation_document ({columns}) SELECT {columns} FROM winnow_import_stage "
            "ON CONFLICT (dataset_id, external_id) DO NOTHING RETURNING external_id"
        )
        inserted = {row[0] for row in cursor.fetchall()}
    return [
        duplicate_rejection(source, number, external_id, "a document already in the dataset")
        for external_id, source, number in zip(
            batch.external_ids, batch.sources, batch.numbers, strict=True
        )
        if external_id not in inserted
    ]


def _flush(job: ImportJob, owner: str, batch: PreparedBatch, clock: float) -> float:
    """Commit one batch: documents, rejections, counters, checkpoint and lease together."""
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Losing the last commits in a server crash is safe here: the checkpoint
            # is lost with its rows, and the resumed run reads them again.
            cursor.execute("SET LOCAL synchronous_commit = off")
        existing = _copy_documents(batch) if batch.external_ids else []
        imported = len(batch.external_ids) - len(existing)
        rejections = batch.rejections + existing
        _store_rejections(job, rejections)
        assert batch.last is not None
        source, number, offset = batch.last
        checkpoint = {
            "source": source,
            "number": number,
            "offset": offset,
            "bytes_done": batch.bytes_done,
        }
        job.rows_read += batch.rows_read
        job.rows_imported += imported
        job.rows_rejected += len(rejections)
        job.active_seconds += time.perf_counter() - clock
        updated = ImportJob.objects.filter(pk=job.pk, lease_owner=owner).update(
            rows_read=job.rows_read,
            rows_imported=job.rows_imported,
            rows_rejected=job.rows_rejected,
            rejection_counts=job.rejection_counts,
            checkpoint=checkpoint,
            active_seconds=job.active_seconds,
            lease_expires_at=timezone.now()
            + timedelta(seconds=settings.WINNOW_IMPORT_LEASE_SECONDS),
        )
        if not updated:
            raise LeaseLostError(f"import {job.pk}: lease taken over")
    logger.info(
        "import %s: batch of %d rows (%d imported, %d rejected) in %.2fs",
        job.pk,
        batch.rows_read,
        imported,
        len(rejections),
        time.perf_counter() - started,
    )
    return time.perf_counter()


@transaction.atomic
def _finish(job: ImportJob, owner: str, status: str, error: str) -> None:
    updated = ImportJob.objects.filter(pk=job.pk, lease_owner=owner).update(
        status=status, error=error, finished_at=timezone.now(), lease_expires_at=None
    )
    if not updated:
        return
    dataset = Dataset.objects.get(pk=job.dataset_id)
    dataset_recount(dataset=dataset)
    search_index_dispatch(dataset_id=job.dataset_id)
    if status == ImportJob.Status.SUCCEEDED:
        transaction.on_commit(lambda: _announce_import(job.dataset_id, job.pk))
    if job.rows_imported >= 10_000:
        # Fresh statistics keep the planner honest after a big load.
        transaction.on_commit(_analyze_documents)
    logger.info("import %s: %s (%s)", job.pk, status, error or "ok")


def _announce_import(dataset_id: int, job_id: int) -> None:
    """Tell whoever listens (pipeline schedules) that an import finished.

    Sent by task name: curation does not import the apps that react to it.
    """
    from curation.celery import app

    try:
        app.send_task("pipelines.tasks.import_finished", args=[dataset_id, job_id])
    except OSError as exc:  # the broker is down: the import itself is done and kept
        logger.warning("import %s: could not announce it (%s)", job_id, exc)


def _analyze_documents() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE curation_document")


def import_jobs_resume_stale() -> list[int]:
    """Queue jobs whose worker died (lease expired) or whose queue message was lost
    (see ``leases.stale_jobs`` for when a job counts as stale)."""
    stale = list(
        ImportJob.objects.filter(
            stale_jobs(model=ImportJob, requeue_after=settings.WINNOW_REQUEUE_AFTER_SECONDS)
        ).values_list("pk", flat=True)
    )
    _queue(stale)
    return stale


def import_jobs_resume_after_restart() -> list[int]:
    """On worker start: resume running jobs as soon as their (dead) holder's lease runs out."""
    delays = lease_resume_delays(model=ImportJob)
    for job_id, wait in delays:
        _queue([job_id], countdown=wait)
    return [job_id for job_id, _ in delays]
