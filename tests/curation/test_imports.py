from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import connection

from curation.errors import ImportSourceError
from curation.models import Document, ImportJob
from curation.services import imports
from curation.services.imports import import_from_path, import_job_create, import_job_run
from tests.curation.factories import make_dataset

pytestmark = pytest.mark.django_db


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    with open(path, "wb") as out:
        for row in rows:
            out.write(row if isinstance(row, bytes) else orjson.dumps(row))
            out.write(b"\n")
    return path


def test_import_keeps_good_rows_and_reports_each_bad_line(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "a", "text": "Good one.", "url": "https://x"},
            b'{"id": "b", "text": ',
            {"id": "c", "body": "no text field"},
            {"id": "d", "text": 42},
            {"id": "e", "text": "nul \u0000 inside"},
            b'{"id": "f", "text": "bad \xff\xfe utf8"}',
            {"id": "a", "text": "repeated id"},
            {"id": "g", "text": "Good two."},
        ],
    )
    job = import_from_path(dataset=make_dataset(), path=source, id_field="id")

    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_read, job.rows_imported, job.rows_rejected) == (8, 2, 6)
    rejected = {r.number: r.reason for r in job.rejections.all()}
    assert sorted(rejected) == [2, 3, 4, 5, 6, 7]
    assert "invalid JSON" in rejected[2]
    assert "text" in rejected[3]
    assert "int" in rejected[4]
    assert "NUL" in rejected[5]
    assert "UTF-8" in rejected[6]
    assert "duplicate id" in rejected[7] and "mixed.jsonl:1" in rejected[7]
    docs = {d.external_id: d for d in Document.objects.filter(dataset=job.dataset)}
    assert sorted(docs) == ["a", "g"]
    assert docs["a"].meta == {"url": "https://x"}
    assert docs["a"].text == "Good one."
    job.dataset.refresh_from_db()
    assert job.dataset.document_count == 2


def test_import_computes_counts_and_normalized_hash(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"text": "Hello   World\nsecond line"},
            {"text": "hello world second\tLINE"},
            {"text": "something else"},
        ],
    )
    job = import_from_path(dataset=make_dataset(), path=source)
    docs = list(Document.objects.filter(dataset=job.dataset).order_by("id"))
    assert [d.external_id for d in docs] == ["h.jsonl:1", "h.jsonl:2", "h.jsonl:3"]
    assert (docs[0].word_count, docs[0].line_count, docs[0].char_count) == (4, 2, 25)
    assert docs[0].content_hash == docs[1].content_hash
    assert docs[0].content_hash != docs[2].content_hash


def test_ids_already_in_the_dataset_are_rejected_not_overwritten(tmp_path: Path) -> None:
    dataset = make_dataset()
    first = write_jsonl(tmp_path / "one.jsonl", [{"id": 1, "text": "original"}])
    second = write_jsonl(
        tmp_path / "two.jsonl", [{"id": 2, "text": "new"}, {"id": 1, "text": "replacement"}]
    )
    import_from_path(dataset=dataset, path=first, id_field="id")
    job = import_from_path(dataset=dataset, path=second, id_field="id")

    assert (job.rows_imported, job.rows_rejected) == (1, 1)
    assert job.rejections.get().number == 2
    assert Document.objects.get(dataset=dataset, external_id="1").text == "original"


def test_rejections_beyond_the_kept_limit_are_counted(tmp_path: Path, settings: Any) -> None:
    settings.WINNOW_REJECTIONS_KEPT = 5
    settings.WINNOW_IMPORT_BATCH_ROWS = 4
    rows: list[Any] = [b"{broken" for _ in range(12)] + [{"text": "fine"}]
    job = import_from_path(dataset=make_dataset(), path=write_jsonl(tmp_path / "b.jsonl", rows))
    assert job.rows_rejected == 12
    assert job.rejections.count() == 5
    assert job.rejection_counts == {"invalid JSON": 12}
    assert job.rows_imported == 1


def test_gzip_and_batches_import_every_row(tmp_path: Path, settings: Any) -> None:
    settings.WINNOW_IMPORT_BATCH_ROWS = 7
    path = tmp_path / "many.jsonl.gz"
    with gzip.open(path, "wb") as out:
        for i in range(100):
            out.write(orjson.dumps({"id": f"d{i}", "text": f"document number {i}"}) + b"\n")
    job = import_from_path(dataset=make_dataset(), path=path, id_field="id")
    assert job.rows_imported == 100
    assert Document.objects.filter(dataset=job.dataset).count() == 100


def test_missing_and_empty_sources_fail_clearly(tmp_path: Path) -> None:
    dataset = make_dataset()
    with pytest.raises(ImportSourceError, match="nope.jsonl"):
        import_job_create(dataset=dataset, path=tmp_path / "nope.jsonl", origin="cli")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(ImportSourceError, match="empty"):
        import_job_create(dataset=dataset, path=empty, origin="cli")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n\n  \n")
    job = import_from_path(dataset=dataset, path=blank)
    assert job.status == ImportJob.Status.FAILED
    assert "empty" in job.error


def test_wrong_format_fails_the_job_with_the_reason(tmp_path: Path) -> None:
    fake = tmp_path / "data.parquet"
    fake.write_text('{"text": "this is JSON, not Parquet"}\n')
    dataset = make_dataset()
    try:
        job = import_from_path(dataset=dataset, path=fake)
    except ImportSourceError as exc:
        assert "data.parquet" in str(exc)
    else:
        assert job.status == ImportJob.Status.FAILED
        assert "data.parquet" in job.error
    assert not Document.objects.filter(dataset=dataset).exists()


class Crash(Exception):
    pass


def test_interrupted_import_resumes_after_last_committed_batch(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash mid-import loses only the batch in flight; the rerun neither skips nor repeats."""
    settings.WINNOW_IMPORT_BATCH_ROWS = 10
    settings.WINNOW_IMPORT_LEASE_SECONDS = 0
    rows = [{"id": i, "text": f"doc {i}"} for i in range(55)]
    rows[33] = {"id": 33}  # a rejection after the crash point must be reported once
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    dataset = make_dataset()
    job = import_job_create(dataset=dataset, path=source, origin="cli", id_field="id")

    real_flush = imports._flush
    calls = {"n": 0}

    def flaky_flush(*args: Any, **kwargs: Any) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("worker died")
        return real_flush(*args, **kwargs)

    monkeypatch.setattr(imports, "_flush", flaky_flush)
    with pytest.raises(Crash):
        import_job_run(job_id=job.pk, owner="first")
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert job.rows_read == 20
    assert job.checkpoint is not None and job.checkpoint["number"] == 20
    assert Document.objects.filter(dataset=dataset).count() == 20

    monkeypatch.setattr(imports, "_flush", real_flush)
    job = import_job_run(job_id=job.pk, owner="second")
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_read, job.rows_imported, job.rows_rejected) == (55, 54, 1)
    assert job.attempts == 2
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM curation_document "
            "WHERE dataset_id = %s",
            [dataset.pk],
        )
        assert cursor.fetchone() == (54, 54)


def test_a_live_lease_cannot_be_claimed_twice(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    job = import_job_create(dataset=make_dataset(), path=source, origin="cli")
    assert imports.import_job_claim(job_id=job.pk, owner="one")
    assert not imports.import_job_claim(job_id=job.pk, owner="two")
    job = import_job_run(job_id=job.pk, owner="two")
    assert job.status == ImportJob.Status.RUNNING and job.lease_owner == "one"


def test_a_50_mb_line_is_rejected_and_the_rest_imported(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as out:
        out.write(b'{"id": "before", "text": "kept"}\n')
        out.write(b'{"id": "huge", "text": "' + b"x" * (50 * 1024 * 1024) + b'"}\n')
        out.write(b'{"id": "after", "text": "kept too"}\n')
    job = import_from_path(dataset=make_dataset(), path=path, id_field="id")
    assert (job.rows_imported, job.rows_rejected) == (2, 1)
    rejection = job.rejections.get()
    assert rejection.number == 2
    assert "WINNOW_MAX_RECORD_BYTES" in rejection.reason


def test_stale_jobs_are_requeued_once_not_every_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from curation.tasks import import_run

    queued: list[int] = []
    monkeypatch.setattr(import_run, "apply_async", lambda args, countdown=0: queued.append(args[0]))
    source = write_jsonl(tmp_path / "s.jsonl", [{"text": "a"}])
    dataset = make_dataset()
    now = timezone.now()
    dead = import_job_create(dataset=dataset, path=source, origin="cli")
    ImportJob.objects.filter(pk=dead.pk).update(
        status="running", lease_expires_at=now - timedelta(seconds=5)
    )
    alive = import_job_create(dataset=dataset, path=source, origin="cli")
    ImportJob.objects.filter(pk=alive.pk).update(
        status="running", lease_expires_at=now + timedelta(seconds=60)
    )
    fresh = import_job_create(dataset=dataset, path=source, origin="cli")
    lost = import_job_create(dataset=dataset, path=source, origin="cli")
    ImportJob.objects.filter(pk__in=[fresh.pk, lost.pk]).update(queued_at=now)
    ImportJob.objects.filter(pk=lost.pk).update(queued_at=now - timedelta(minutes=11))

    assert sorted(imports.import_jobs_resume_stale()) == sorted([dead.pk, lost.pk])
    assert sorted(queued) == sorted([dead.pk, lost.pk])
    assert imports.import_jobs_resume_stale() == []
