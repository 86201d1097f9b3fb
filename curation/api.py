"""REST API for external tools (django-ninja): token auth, OpenAPI at /api/openapi.json.

Authenticate with ``Authorization: Bearer <token>``; make a token with
``python manage.py winnow_token USERNAME``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer

from curation import selectors
from curation.errors import CurationError
from curation.models import ApiToken, Dataset, ImportJob
from curation.services.datasets import dataset_create
from curation.services.imports import import_job_create, import_job_dispatch

STREAM_CHUNK = 1024 * 1024


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = (
            ApiToken.objects.select_related("user")
            .filter(prefix=token[:12], key_hash=ApiToken.hash_key(token), user__is_active=True)
            .first()
        )
        if found is None:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        request.user = found.user
        return found


api = NinjaAPI(
    title="Winnow API",
    version="1",
    description="Datasets and streaming imports for external tools.",
    auth=TokenAuth(),
    urls_namespace="api",
)


class Error(Schema):
    detail: str


class DatasetIn(Schema):
    name: str
    description: str = ""
    source: str = ""


class DatasetOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    source: str
    document_count: int
    char_count: int
    created_at: datetime


class ImportOut(Schema):
    id: int
    dataset: str
    status: str
    source_name: str
    rows_read: int
    rows_imported: int
    rows_rejected: int
    rejection_counts: dict[str, int]
    error: str
    created_at: datetime
    finished_at: datetime | None
    rejections_url: str

    @staticmethod
    def resolve_dataset(job: ImportJob) -> str:
        return job.dataset.slug

    @staticmethod
    def resolve_rejections_url(job: ImportJob) -> str:
        return f"/api/imports/{job.pk}/rejections"


@api.exception_handler(CurationError)
def _curation_error(request: HttpRequest, exc: CurationError):  # type: ignore[no-untyped-def]
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.get("/datasets", response=list[DatasetOut], tags=["datasets"])
def list_datasets(request: HttpRequest) -> list[Dataset]:
    return list(selectors.dataset_list())


@api.post("/datasets", response={201: DatasetOut}, tags=["datasets"])
def create_dataset(request: HttpRequest, payload: DatasetIn) -> Status[Dataset]:
    return Status(201, dataset_create(user=request.user, **payload.dict()))


@api.get("/datasets/{slug}", response=DatasetOut, tags=["datasets"])
def get_dataset(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


@api.post(
    "/datasets/{slug}/imports",
    response={202: ImportOut, 400: Error},
    tags=["imports"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            "description": "Newline-delimited JSON, one document object per line (gzip allowed "
            "with Content-Encoding: gzip). Streamed to disk, then imported by a worker.",
        }
    },
)
def create_import(
    request: HttpRequest, slug: str, text_field: str = "text", id_field: str = ""
) -> Status[ImportJob]:
    """Stream an NDJSON body into the dataset; poll the returned import for its report."""
    dataset = get_object_or_404(Dataset, slug=slug)
    gz = request.headers.get("Content-Encoding", "").lower() == "gzip"
    target = settings.UPLOAD_DIR / f"{uuid.uuid4().hex}-api.jsonl{'.gz' if gz else ''}"
    with open(target, "wb") as out:
        while chunk := request.read(STREAM_CHUNK):
            out.write(chunk)
    job = import_job_create(
        dataset=dataset,
        path=target,
        origin=ImportJob.Origin.API,
        user=request.user,
        text_field=text_field,
        id_field=id_field,
        source_name=f"api upload {timezone.now():%Y-%m-%d %H:%M:%S}",
    )
    import_job_dispatch(job=job)
    return Status(202, job)


@api.get("/imports/{job_id}", response=ImportOut, tags=["imports"])
def get_import(request: HttpRequest, job_id: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("dataset"), pk=job_id)


@api.get("/imports/{job_id}/rejections", tags=["imports"])
def get_import_rejections(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    """The kept rejections as NDJSON: {source, number, field, reason} per line."""
    import orjson

    job = get_object_or_404(ImportJob, pk=job_id)
    rows = selectors.import_rejections(job=job, limit=None).values(
        "source", "number", "field", "reason"
    )
    return StreamingHttpResponse(
        (orjson.dumps(row) + b"\n" for row in rows.iterator(chunk_size=1000)),
        content_type="application/x-ndjson",
    )
