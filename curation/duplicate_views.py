"""Duplicate review pages: a dataset's duplicate groups (largest first, by kind) with the
false-positive rate per method, one group side by side, and verdicts on groups or pairs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from curation import duplicate_selectors as selectors
from curation.errors import CurationError
from curation.htmx import HtmxHttpRequest
from curation.models import Dataset, DuplicateGroup
from curation.recipe_forms import DuplicateFilterForm, DuplicateVerdictForm
from curation.services.duplicates import duplicate_verdict_clear, duplicate_verdict_set


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _get_group_for_user(request: HttpRequest, slug: str, pk: int) -> DuplicateGroup:
    return get_object_or_404(
        DuplicateGroup.objects.select_related("dataset"), dataset__slug=slug, pk=pk
    )


@login_required
def duplicate_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = DuplicateFilterForm(request.GET)
    kind, page = "", 1
    if form.is_valid():
        kind, page = form.cleaned_data["kind"], form.cleaned_data["page"] or 1
    context = {
        "dataset": dataset,
        "form": form,
        "kind": kind,
        "groups": selectors.duplicate_group_page(dataset=dataset, kind=kind, page=page),
        "stats": selectors.duplicate_review_stats(dataset=dataset),
    }
    template = "curation/duplicate_list.html"
    return render(request, f"{template}#groups" if request.htmx else template, context)


def _page(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 1


def _group_page(
    request: HttpRequest, group: DuplicateGroup, page: int, error: str = ""
) -> HttpResponse:
    detail = selectors.duplicate_group_detail(group=group, page=page)
    context = {"dataset": group.dataset, "group": group, "detail": detail, "error": error}
    return render(request, "curation/duplicate_group.html", context)


@login_required
def duplicate_group(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    group = _get_group_for_user(request, slug, pk)
    return _group_page(request, group, _page(request.GET.get("page")))


@login_required
@require_POST
def duplicate_verdict(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Mark the group, or one member against the representative; htmx gets the page back."""
    group = _get_group_for_user(request, slug, pk)
    form = DuplicateVerdictForm(request.POST)
    error = "" if form.is_valid() else "Choose a verdict."
    if not error:
        document, verdict = form.cleaned_data["document"], form.cleaned_data["verdict"]
        try:
            if verdict == "clear":
                duplicate_verdict_clear(group=group, document_id=document)
            else:
                duplicate_verdict_set(
                    group=group, verdict=verdict, user=request.user, document_id=document
                )
        except CurationError as exc:
            error = str(exc)
    page = _page(request.POST.get("page"))
    if request.htmx:
        return _group_page(request, group, page, error)
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('duplicate_group', args=[slug, pk])}?page={page}")
