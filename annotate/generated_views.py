"""Review of generated records: send a generated dataset to annotation, mark what passed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from annotate.errors import AnnotateError
from annotate.forms import AcceptForm
from annotate.services.generated import generated_accepted_mark, generated_review_create
from annotate.views import MANAGE, _get_project_for_user
from curation.models import Dataset


@login_required
@require_POST
def generated_review(request: HttpRequest, dataset_slug: str) -> HttpResponse:
    """One action: a rating + rewrite project over every record of a generated dataset."""
    if not request.user.has_perm("annotate.add_annotationproject"):
        raise PermissionDenied("Only administrators (or users given the right) create projects.")
    dataset = get_object_or_404(Dataset, slug=dataset_slug)
    try:
        project = generated_review_create(dataset=dataset, user=request.user)
    except AnnotateError as exc:
        messages.error(request, f"No review project: {exc}")
        return redirect(dataset)
    messages.info(request, f"{project.item_count} generated records are ready for review.")
    return redirect(project)


@login_required
@require_POST
def generated_accept(request: HttpRequest, slug: str) -> HttpResponse:
    """Mark the records whose final rating passes as accepted (signal synth_accepted)."""
    project = _get_project_for_user(request, slug, MANAGE)
    form = AcceptForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items())
        messages.error(request, f"Nothing marked: {problems}")
        return redirect(project)
    attributes = tuple(form.cleaned_data["attributes"])
    min_score = form.cleaned_data["min_score"]
    try:
        accepted = generated_accepted_mark(
            project=project, attributes=attributes, min_score=min_score
        )
    except AnnotateError as exc:
        messages.error(request, f"Nothing marked: {exc}")
    else:
        rule = f"{', '.join(attributes)} >= {min_score}"
        messages.info(request, f"{accepted} records accepted (signal synth_accepted: {rule}).")
    return redirect(project)
