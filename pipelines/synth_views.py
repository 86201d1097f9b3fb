"""Generator pages: preview a generator step on a few documents, then add it to a pipeline.

Curators only: staff, or users allowed to change pipelines (the preview calls a model).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from curation.errors import CurationError
from curation.htmx import HtmxHttpRequest
from pipelines.generation.base import GenerationError
from pipelines.services.definitions import load_steps, pipeline_create, pipeline_update
from pipelines.services.derived import PreviewRow, derive_preview
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
    _require_curator(request)
    form = PreviewForm(request.POST or None, initial=request.GET.dict())
    rows: list[PreviewRow] = []
    problem = ""
    spec: dict[str, Any] = {}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        spec = {"step": data["step"], "params": form.step_params()}
        try:
            rows = derive_preview(
                dataset=data["dataset"], step_name=data["step"], params=spec["params"], n=data["n"]
            )
        except (CurationError, PromptTemplateError, GenerationError) as exc:
            problem = str(exc)
    fragment = request.htmx and request.method == "POST" and form.is_valid()
    template = "pipelines/generation_preview.html" + ("#preview" if fragment else "")
    add_form = AddStepForm(initial={"spec": spec}) if rows else None
    context = {"form": form, "rows": rows, "problem": problem, "add_form": add_form}
    context["spec"] = json.dumps(spec, indent=1)
    return render(request, template, {**context, "defaults": _default_templates()})


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
