"""What a project's answers become: signals on the documents (a queued task) and a JSON-lines
download of every item's annotations, final answers and suggestions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from annotate import selectors
from annotate.errors import ProjectError
from annotate.forms import AnswerSignalsForm
from annotate.models import ProjectMember
from annotate.services.annotation_export import annotation_export_lines
from annotate.services.answer_signals import answer_signals_queue
from annotate.views import MANAGE, _get_project_for_user

DOWNLOAD: set[str] = {ProjectMember.Role.CURATOR, ProjectMember.Role.REVIEWER, selectors.ADMIN}


@login_required
@require_POST
def answer_signals_view(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    form = AnswerSignalsForm(request.POST)
    include_agreed = form.is_valid() and form.cleaned_data["include_agreed"]
    try:
        answer_signals_queue(project=project, include_agreed=include_agreed)
    except ProjectError as exc:
        messages.error(request, f"Signals not written: {exc}")
    else:
        messages.info(
            request,
            "Writing the final answers as signals: queued. The table below shows when each "
            "signal was last written.",
        )
    return redirect(project)


@login_required
@require_GET
def annotations_download(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project = _get_project_for_user(request, slug, DOWNLOAD)
    response = StreamingHttpResponse(
        annotation_export_lines(project=project), content_type="application/jsonl"
    )
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-annotations.jsonl"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
