"""Curator pages that add pairwise items and model suggestions to a project (thin views)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotate.errors import AnnotateError
from annotate.services.pairs import PairsReport, pairs_add, pairs_add_from_file
from annotate.services.suggestions import suggestions_create
from annotate.source_forms import PairsAddForm, SuggestionsForm
from annotate.views import MANAGE, _get_project_for_user

# Refused lines named in the message after an upload; the count covers all of them.
SHOWN_PROBLEMS = 20


def _report_message(report: PairsReport) -> str:
    text = f"{report.added} pairs added from {report.lines} lines."
    if report.rejected:
        listed = "; ".join(str(p) for p in report.problems[:SHOWN_PROBLEMS])
        more = report.rejected - min(len(report.problems), SHOWN_PROBLEMS)
        text += f" {report.rejected} lines not added (fix them and upload those again): {listed}"
        text += f"; and {more} more." if more else "."
    return text


@login_required
@require_POST
def project_pairs_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    form = PairsAddForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, f"Pairs not added: {form.errors.as_text()}")
        return redirect(project)
    data = form.cleaned_data
    if data["source"] == "file":
        report = pairs_add_from_file(project=project, lines=data["file"], name=data["file"].name)
        (messages.warning if report.rejected else messages.info)(request, _report_message(report))
        return redirect(project)
    try:
        added = pairs_add(
            project=project,
            source=data["source"],
            kind=data["kind"],
            n=data["n"],
            seed=data["seed"] or 0,
        )
    except AnnotateError as exc:
        messages.error(request, f"Pairs not added: {exc}")
    else:
        messages.info(request, f"{added.added} pairs added.")
    return redirect(project)


@login_required
@require_POST
def project_suggestions_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    form = SuggestionsForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Suggestions not made: {form.errors.as_text()}")
        return redirect(project)
    try:
        made = suggestions_create(project=project, **form.options())
    except AnnotateError as exc:
        messages.error(request, f"Suggestions not made: {exc}")
    else:
        messages.info(
            request,
            f"{made.written} suggestions from {made.source} ({made.removed} stale ones removed).",
        )
    return redirect(project)
