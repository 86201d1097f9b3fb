from __future__ import annotations

import gzip
from typing import Any

import pytest
from django.test import Client

from curation.models import Dataset, ImportJob
from curation.services.tokens import api_token_create
from tests.conftest import wait_for
from tests.curation.factories import UserFactory, make_dataset


@pytest.fixture
def token() -> str:
    _, key = api_token_create(user=UserFactory.create(), name="t")
    return key


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.django_db
def test_api_refuses_missing_and_wrong_tokens(client: Client, token: str) -> None:
    assert client.get("/api/datasets").status_code == 401
    assert client.get("/api/datasets", headers=auth(token + "x")).status_code == 401
    assert client.get("/api/datasets", headers=auth(token)).status_code == 200


@pytest.mark.django_db
def test_api_lists_and_creates_datasets(client: Client, token: str) -> None:
    created = client.post(
        "/api/datasets",
        {"name": "From API", "source": "s3://x"},
        content_type="application/json",
        headers=auth(token),
    )
    assert created.status_code == 201
    assert created.json()["slug"] == "from-api"
    assert Dataset.objects.get(slug="from-api").created_by is not None
    names = [d["name"] for d in client.get("/api/datasets", headers=auth(token)).json()]
    assert names == ["From API"]
    duplicate = client.post(
        "/api/datasets", {"name": "From API"}, content_type="application/json", headers=auth(token)
    )
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["detail"]


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert "/api/datasets/{slug}/imports" in schema["paths"]
    assert client.get("/api/docs").status_code == 200


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ndjson_stream_import_reports_like_the_cli(
    client: Client, token: str, start_worker: Any
) -> None:
    start_worker()
    dataset = make_dataset("api")
    body = b'{"id": 1, "text": "one"}\n{"id": 2, "text": 5}\n{"id": 3, "text": "three"}\n'
    response = client.post(
        f"/api/datasets/{dataset.slug}/imports?id_field=id",
        data=gzip.compress(body),
        content_type="application/x-ndjson",
        headers={**auth(token), "Content-Encoding": "gzip"},
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    wait_for(lambda: ImportJob.objects.get(pk=job_id).is_finished)
    report = client.get(f"/api/imports/{job_id}", headers=auth(token)).json()
    assert report["status"] == "succeeded"
    assert (report["rows_imported"], report["rows_rejected"]) == (2, 1)
    rejections = client.get(report["rejections_url"], headers=auth(token))
    lines = b"".join(rejections.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and '"number":2' in lines[0] and "int" in lines[0]
