from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from curation.models import Dataset, Document, ImportJob
from curation.services.imports import import_from_path
from tests.curation.factories import UserFactory, make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def imported(tmp_path: Path, body: bytes, name: str = "ds") -> ImportJob:
    path = tmp_path / "in.jsonl"
    path.write_bytes(body)
    return import_from_path(dataset=make_dataset(name), path=path, id_field="id")


@pytest.mark.parametrize(
    "url",
    ["/", "/datasets/x/", "/datasets/x/import/", "/datasets/x/documents/1/", "/imports/1/"],
)
def test_pages_require_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_page_logs_in(client: Client) -> None:
    UserFactory(username="ann")
    response = client.post("/login/", {"username": "ann", "password": "pw-for-tests-123"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_dataset_list_creates_a_dataset(user_client: Client) -> None:
    response = user_client.post("/", {"name": "Web crawl 2024", "description": "d"})
    dataset = Dataset.objects.get(name="Web crawl 2024")
    assert response["Location"] == f"/datasets/{dataset.slug}/"
    assert "Web crawl 2024" in user_client.get("/").content.decode()
    again = user_client.post("/", {"name": "Web crawl 2024"})
    assert "already exists" in again.content.decode()


def test_dataset_page_shows_counts_documents_and_imports(
    user_client: Client, tmp_path: Path
) -> None:
    job = imported(tmp_path, b'{"id": "doc-1", "text": "one two three"}\n{"id": "x"}\n')
    page = user_client.get(job.dataset.get_absolute_url()).content.decode()
    assert 'id="document-count">1<' in page
    assert "doc-1" in page
    assert f'id="import-{job.pk}"' in page


def test_dataset_page_keyset_pagination_as_htmx_fragment(
    user_client: Client, tmp_path: Path
) -> None:
    body = b"".join(b'{"id": "d%03d", "text": "t"}\n' % i for i in range(30))
    job = imported(tmp_path, body)
    first = user_client.get(job.dataset.get_absolute_url()).content.decode()
    assert "d024" in first and "d025" not in first
    last_id = Document.objects.get(external_id="d024").pk
    fragment = user_client.get(
        job.dataset.get_absolute_url(), {"after": last_id}, headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="documents">')
    assert "d025" in fragment and "d024" not in fragment
    assert "<html" not in fragment


def test_document_page_escapes_untrusted_text_and_meta(user_client: Client, tmp_path: Path) -> None:
    job = imported(
        tmp_path,
        b'{"id": "evil", "text": "<script>alert(1)</script><b>x</b>", '
        b'"title": "<img src=x onerror=alert(2)>"}\n',
    )
    doc = Document.objects.get(dataset=job.dataset)
    page = user_client.get(doc.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_import_upload_stores_the_file_and_queues_a_job(
    user_client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    dataset = make_dataset()
    upload = SimpleUploadedFile("docs.jsonl", b'{"text": "hello"}\n')
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(
            reverse("import_create", args=[dataset.slug]),
            {"file": upload, "text_field": "text", "id_field": "", "format": ""},
        )
    job = ImportJob.objects.get()
    assert response["Location"] == f"/imports/{job.pk}/"
    assert job.source_name == "docs.jsonl" and job.origin == "upload"
    assert Path(job.source_path).read_bytes() == b'{"text": "hello"}\n'
    assert Path(job.source_path).parent == settings.UPLOAD_DIR
    assert len(callbacks) == 1


def test_import_upload_of_an_empty_file_says_so(user_client: Client, settings: Any) -> None:
    dataset = make_dataset()
    response = user_client.post(
        reverse("import_create", args=[dataset.slug]),
        {"file": SimpleUploadedFile("e.jsonl", b""), "text_field": "text"},
    )
    assert response.status_code == 200
    assert "empty" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not list(settings.UPLOAD_DIR.glob("*-e.jsonl"))


def test_import_progress_fragment_stops_polling_when_finished(
    user_client: Client, tmp_path: Path
) -> None:
    job = imported(tmp_path, b'{"id": "a", "text": "t"}\n{"broken\n')
    fragment = user_client.get(f"/imports/{job.pk}/", headers={"HX-Request": "true"})
    assert fragment.status_code == 286
    body = fragment.content.decode()
    assert 'id="rows-imported">1<' in body and "invalid JSON" in body
    assert "hx-trigger" not in body

    running = ImportJob.objects.create(
        dataset=job.dataset, origin="cli", source_path="/x", source_name="x", status="running"
    )
    polling = user_client.get(f"/imports/{running.pk}/", headers={"HX-Request": "true"})
    assert polling.status_code == 200
    assert 'hx-trigger="every 1s"' in polling.content.decode()


def test_rejection_report_downloads_as_csv(user_client: Client, tmp_path: Path) -> None:
    job = imported(tmp_path, b'{"id": "a", "text": "t"}\n{"broken\n{"id": "c"}\n')
    response = user_client.get(f"/imports/{job.pk}/rejections.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "source,line_or_row,field,reason"
    assert [line.split(",")[1] for line in lines[1:]] == ["2", "3"]


def test_evaluation_sets_are_uploaded_in_the_browser(
    user_client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    body = b'{"id": "a", "question": "Q one?", "answer": "A one."}\n{"id": "b", "q": 1}\n'
    response = user_client.post(
        "/evalsets/",
        {
            "name": "Tiny QA",
            "file": SimpleUploadedFile("tiny.jsonl", body),
            "text_fields": "question,answer",
            "id_field": "id",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Tiny QA: 1 items, 1 lines rejected" in page
    assert "<code>tiny-qa</code>" in page
    assert (tmp_path / "evalsets" / "tiny-qa.jsonl").read_text().count("\n") == 1
