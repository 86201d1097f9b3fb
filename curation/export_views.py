"""Export pages: a dataset's exports with the create form, one export's progress, files and
card, a file download, and the diff of two exports."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from curation import export_selectors as selectors
from curation.errors import CurationError
from curation.export_forms import ExportDiffForm, ExportForm
from curation.htmx import HTMX_STOP_POLLING, HtmxHttpRequest
from curation.models import Dataset, ExportSnapshot
from curation.services.exports import export_create, export_diff, export_dispatch
from curation.services.exports.hub import hub_push_enabled

CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".gz": "application/gzip",
}


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _get_export_for_user(request: HttpRequest, pk: int) -> ExportSnapshot:
    return get_object_or_404(
        ExportSnapshot.objects.select_related("dataset", "recipe_version__recipe"), pk=pk
    )


@login_required
@require_http_methods(["GET", "POST"])
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = ExportForm(
        request.POST or None,
        dataset=dataset,
        signals=selectors.dataset_signal_names(dataset=dataset),
        hub=hub_push_enabled(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = export_create(dataset=dataset, user=request.user, **form.export_args())
        except CurationError as exc:
            form.add_error(None, str(exc))
        else:
            export_dispatch(snapshot=snapshot)
            messages.info(request, f"Export {snapshot.pk} queued.")
            return redirect("export_detail", snapshot.pk)
    exports = selectors.export_list(dataset=dataset)
    return render(
        request, "curation/export_list.html", {"dataset": dataset, "form": form, "exports": exports}
    )


@login_required
def export_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    snapshot = _get_export_for_user(request, pk)
    finished = snapshot.status in (ExportSnapshot.Status.SUCCEEDED, ExportSnapshot.Status.FAILED)
    context = {
        "snapshot": snapshot,
        "dataset": snapshot.dataset,
        "finished": finished,
        "card": selectors.export_card(snapshot=snapshot),
        "diff_form": ExportDiffForm(snapshot=snapshot),
    }
    if request.htmx:
        response = render(request, "curation/export_detail.html#progress", context)
        if finished:
            # Stop polling, but swap in the final state first: htmx still renders a 286.
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "curation/export_detail.html", context)


@login_required
def export_file(request: HttpRequest, pk: int, name: str) -> FileResponse:
    snapshot = _get_export_for_user(request, pk)
    path = selectors.export_file(snapshot=snapshot, name=name)
    if path is None:
        raise Http404("no such file in this export")
    content_type = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115  (FileResponse closes it)
        as_attachment=True,
        filename=f"export-{snapshot.pk}-{path.name}",
        content_type=content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
def export_diff_view(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = _get_export_for_user(request, pk)
    form = ExportDiffForm(request.GET or None, snapshot=snapshot)
    diff = None
    if form.is_valid():
        try:
            diff = export_diff(old=form.cleaned_data["other"], new=snapshot)
        except CurationError as exc:
            form.add_error("other", str(exc))
    context = {"snapshot": snapshot, "dataset": snapshot.dataset, "form": form, "diff": diff}
    return render(request, "curation/export_diff.html", context)
