"""Imports on real Celery worker processes over real Redis and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import connection

from curation.models import ImportJob
from curation.services.imports import import_job_create, import_job_dispatch
from curation.tasks import import_run
from tests.conftest import wait_for
from tests.curation.factories import make_dataset

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def job_state(job_id: int) -> ImportJob:
    return ImportJob.objects.get(pk=job_id)


def test_worker_runs_a_dispatched_import(start_worker: Any, tmp_path: Path) -> None:
    start_worker()
    source = tmp_path / "w.jsonl"
    source.write_bytes(b'{"id": "a", "text": "first"}\n{"id": "b"}\n{"id": "c", "text": "third"}\n')
    job = import_job_create(dataset=make_dataset(), path=source, origin="cli", id_field="id")
    import_job_dispatch(job=job)

    wait_for(lambda: job_state(job.pk).is_finished, timeout=60)
    job = job_state(job.pk)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_imported, job.rows_rejected) == (2, 1)
    assert job.rejections.get().number == 2


def test_import_resumes_on_a_new_worker_after_kill_9(
    start_worker: Any, tmp_path: Path, settings: Any
) -> None:
    """kill -9 the worker mid-import; a new worker resumes; every row lands exactly once."""
    rows = 100_000
    source = tmp_path / "big.jsonl"
    with open(source, "wb") as out:
        for i in range(rows):
            out.write(orjson.dumps({"id": i, "text": f"row {i} " + "words " * 20}) + b"\n")
    env = {"WINNOW_IMPORT_BATCH_ROWS": "200", "WINNOW_IMPORT_LEASE_SECONDS": "2"}
    first = start_worker(env)
    dataset = make_dataset()
    job = import_job_create(dataset=dataset, path=source, origin="cli", id_field="id")
    import_run.delay(job.pk)

    wait_for(lambda: job_state(job.pk).rows_read >= 2_000, timeout=60, interval=0.02)
    first.kill()
    killed_at = job_state(job.pk)
    assert killed_at.status == ImportJob.Status.RUNNING
    assert killed_at.rows_read < rows, "the import finished before the kill: make it longer"

    start_worker(env)
    wait_for(lambda: job_state(job.pk).is_finished, timeout=120)
    job = job_state(job.pk)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert job.attempts == 2
    assert (job.rows_read, job.rows_imported, job.rows_rejected) == (rows, rows, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM curation_document "
            "WHERE dataset_id = %s",
            [dataset.pk],
        )
        assert cursor.fetchone() == (rows, rows)
