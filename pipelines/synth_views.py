"""Generator pages: preview a generator step on a few documents, then add it to a pipeline.

Curators only: staff, or users allowed to change pipelines (the preview calls a
model). The model runs on a worker of the step's device queue, never in the web
request; the page polls the preview until its rows arrive.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.errors import CurationError
from curation.htmx import HtmxHttpRequest
from curation.views import logged_in_user
from pipelines.generation.base import GenerationError
from pipelines.models import GenerationPreview
from pipelines.services.definitions import load_steps, pipeline_create, pipeline_update
from pipelines.services.previews import preview_requeue_stale, preview_start
from pipelines.steps.derive import DeriveStep
from pipelines.synth_forms import AddStepForm, PreviewForm
from pipelines.synthetic.prompts import PromptTemplateError


def _require_curator(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_staff or user.has_perm("pipelines.change_pipeline")):
        raise PermissionDenied("Only staff and curators (who may change pipelines) run previews.")


def _default_templates() -> dict[str, str]:
    steps = load_steps()
    return {
        name: cls.params_default("template")
        for name, cls in sorted(steps.items())
        if issubclass(cls, DeriveStep) and cls.params_default("template") is not None
    }


@login_required
@require_http_methods(["GET", "POST"])
def generation_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The form; a POST checks the step here and queues the model's part on a worker."""
    _require_curator(request)
    form = PreviewForm(request.POST or None, initial=request.GET.dict())
    preview: GenerationPreview | None = None
    problem = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            preview = preview_start(
                user=logged_in_user(request),
                dataset=data["dataset"],
                step_name=data["step"],
                params=form.step_params(),
                n=data["n"],
            )
        except (CurationError, PromptTemplateError, GenerationError) as exc:
            problem = str(exc)
        else:
            if not request.htmx:
                return redirect(f"{reverse('generation_preview')}?preview={preview.token}")
    elif token := request.GET.get("preview"):
        preview = _own_preview(request, token)
    if request.htmx and request.method == "POST":
        return _preview_fragment(request, preview, problem)
    context = {"form": form, **_preview_context(preview, problem)}
    return render(
        request,
        "pipelines/generation_preview.html",
        {**context, "defaults": _default_templates()},
    )


@login_required
@require_GET
def generation_preview_result(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """The preview section, polled by the page until the worker has finished."""
    _require_curator(request)
    preview = _own_preview(request, token)
    preview_requeue_stale(preview=preview)
    return _preview_fragment(request, preview, "")


def _own_preview(request: HttpRequest, token: str) -> GenerationPreview:
    try:
        return get_object_or_404(GenerationPreview, token=token, created_by=request.user)
    except ValidationError as exc:  # not a UUID
        raise Http404("no such preview") from exc


def _preview_context(preview: GenerationPreview | None, problem: str) -> dict[str, Any]:
    done = preview is not None and preview.status == GenerationPreview.Status.DONE
    rows = preview.rows if preview is not None and done else []
    spec = preview.spec if preview is not None else {}
    return {
        "preview": preview,
        "rows": rows,
        "problem": problem or (preview.problem if preview is not None else ""),
        "spec": json.dumps(spec, indent=1),
        "add_form": AddStepForm(initial={"spec": spec}) if rows else None,
    }


def _preview_fragment(
    request: HttpRequest, preview: GenerationPreview | None, problem: str
) -> HttpResponse:
    return render(
        request, "pipelines/generation_preview.html#preview", _preview_context(preview, problem)
    )


@login_required
@require_POST
def generation_add(request: HttpRequest) -> HttpResponse:
    """Append the previewed step to a pipeline (or a new one); errors name step and parameter."""
    _require_curator(request)
    form = AddStepForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Step not added: {form.errors.as_text()}")
        return redirect("generation_preview")
    data = form.cleaned_data
    try:
        if data["pipeline"] is None:
            pipeline = pipeline_create(name=data["name"].strip(), definition=[data["spec"]])
        else:
            definition = [*data["pipeline"].definition, data["spec"]]
            pipeline = pipeline_update(pipeline=data["pipeline"], definition=definition)
    except CurationError as exc:
        messages.error(request, f"Step not added: {exc}")
        return redirect("generation_preview")
    messages.info(request, f"{data['spec']['step']} added: {pipeline.name} v{pipeline.version}.")
    return redirect(pipeline)
