"""Pages: thin views that parse, check access, call one service or selector, render."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from curation import selectors
from curation.errors import CurationError
from curation.forms import DatasetForm, EvalSetForm, ImportUploadForm
from curation.htmx import HTMX_STOP_POLLING, HtmxHttpRequest
from curation.models import Dataset, Document, ImportJob
from curation.services.datasets import dataset_create
from curation.services.evalsets import evalset_import_upload
from curation.services.imports import import_job_create_from_upload, import_job_dispatch


def logged_in_user(request: HttpRequest) -> User:
    """The logged-in user of a view behind login_required (typed as such)."""
    if not isinstance(request.user, User):
        raise PermissionDenied("Log in first.")
    return request.user


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _get_import_for_user(request: HttpRequest, job_id: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("dataset"), pk=job_id)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request: HttpRequest) -> HttpResponse:
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_create(user=request.user, **form.cleaned_data)
        except CurationError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect(dataset)
    return render(
        request, "curation/dataset_list.html", {"datasets": selectors.dataset_list(), "form": form}
    )


@login_required
def dataset_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    after = request.GET.get("after")
    page = selectors.document_page(
        dataset=dataset, after=int(after) if after and after.isdigit() else None
    )
    context = {
        "dataset": dataset,
        "page": page,
        "imports": selectors.dataset_imports(dataset=dataset),
    }
    if request.htmx:
        return render(request, "curation/dataset_detail.html#documents", context)
    return render(request, "curation/dataset_detail.html", context)


@login_required
def document_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    document = get_object_or_404(Document, dataset=dataset, pk=pk)
    limit = None if request.GET.get("full") else 200_000
    return render(
        request,
        "curation/document_detail.html",
        {
            "dataset": dataset,
            "document": document,
            "text": document.text if limit is None else document.text[:limit],
            "truncated": limit is not None and len(document.text) > limit,
            "meta_json": selectors.document_meta_json(document),
            "signals": selectors.document_signals(document=document),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_create(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = import_job_create_from_upload(
                dataset=dataset,
                upload=upload,
                user=request.user,
                text_field=form.cleaned_data["text_field"],
                id_field=form.cleaned_data["id_field"],
                fmt=form.cleaned_data["format"],
            )
        except CurationError as exc:
            form.add_error("file", str(exc))
        else:
            import_job_dispatch(job=job)
            messages.info(request, f"Import of {upload.name} queued.")
            return redirect(job)
    return render(request, "curation/import_create.html", {"dataset": dataset, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def evalset_list(request: HttpRequest) -> HttpResponse:
    form = EvalSetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        fields = tuple(f.strip() for f in form.cleaned_data["text_fields"].split(",") if f.strip())
        try:
            eval_set, rejected = evalset_import_upload(
                name=form.cleaned_data["name"],
                upload=upload,
                fields=fields,
                id_field=form.cleaned_data["id_field"],
                description=form.cleaned_data["description"],
            )
        except CurationError as exc:
            form.add_error("file", str(exc))
        else:
            messages.info(
                request,
                f"{eval_set.name}: {eval_set.item_count} items, {len(rejected)} lines rejected. "
                f'Use it with {{"step": "decontamination", "params": {{"eval_sets": '
                f'["{eval_set.slug}"]}}}}.',
            )
            return redirect("evalset_list")
    return render(
        request, "curation/evalset_list.html", {"evalsets": selectors.evalset_list(), "form": form}
    )


@login_required
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = _get_import_for_user(request, pk)
    context = {
        "job": job,
        "dataset": job.dataset,
        "rejections": selectors.import_rejections(job=job),
    }
    if request.htmx:
        response = render(request, "curation/import_detail.html#progress", context)
        if job.is_finished:
            # Stop polling, but swap in the final state first: htmx still renders a 286.
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "curation/import_detail.html", context)


@login_required
def import_rejections_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    job = _get_import_for_user(request, pk)

    class _Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(_Echo())
    rows = selectors.import_rejections(job=job, limit=None).values_list(
        "source", "number", "field", "reason"
    )

    def stream():  # type: ignore[no-untyped-def]
        yield writer.writerow(["source", "line_or_row", "field", "reason"])
        for row in rows.iterator(chunk_size=1000):
            yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejections.csv"'
    return response
