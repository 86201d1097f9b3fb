"""Pipeline pages: list, detail with a run form, run progress with cancel/resume/retry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from curation.errors import CurationError
from curation.htmx import HTMX_STOP_POLLING, HtmxHttpRequest
from curation.models import Dataset, Document
from pipelines import selectors
from pipelines.forms import PipelineEditForm, RunForm, ScheduleForm, SearchForm
from pipelines.models import Pipeline, PipelineRun, PipelineSchedule
from pipelines.services.definitions import load_steps, pipeline_update
from pipelines.services.runs import run_cancel, run_create, run_dispatch, run_resume
from pipelines.services.schedules import schedule_create, schedule_delete
from pipelines.services.similarity import (
    IndexMissingError,
    dataset_indexes,
    search_documents,
    similar_documents,
)
from pipelines.steps.base import REGISTRY

RUN_ACTIONS = ("cancel", "resume", "retry")


def _get_pipeline_for_user(request: HttpRequest, slug: str) -> Pipeline:
    return get_object_or_404(Pipeline, slug=slug)


def _get_run_for_user(request: HttpRequest, pk: int) -> PipelineRun:
    return get_object_or_404(PipelineRun.objects.select_related("pipeline", "dataset"), pk=pk)


@login_required
def pipeline_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "pipelines/pipeline_list.html",
        {"pipelines": selectors.pipeline_list(), "runs": selectors.run_list(limit=20)},
    )


@login_required
def pipeline_detail(request: HttpRequest, slug: str) -> HttpResponse:
    pipeline = _get_pipeline_for_user(request, slug)
    form = RunForm(request.POST or None, initial={"dataset": request.GET.get("dataset")})
    context = {
        "pipeline": pipeline,
        "form": form,
        "schedule_form": ScheduleForm(),
        "schedules": selectors.schedule_list(pipeline=pipeline),
    }
    if request.method == "POST" and form.is_valid():
        try:
            run = run_create(
                pipeline=pipeline, dataset=form.cleaned_data["dataset"], user=request.user
            )
        except CurationError as exc:
            form.add_error(None, str(exc))
        else:
            run_dispatch(run=run)
            return redirect(run)
    return render(request, "pipelines/pipeline_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def pipeline_edit(request: HttpRequest, slug: str) -> HttpResponse:
    pipeline = _get_pipeline_for_user(request, slug)
    initial = {
        "description": pipeline.description,
        "batch_size": pipeline.batch_size,
        "definition": pipeline.definition,
    }
    form = PipelineEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            updated = pipeline_update(pipeline=pipeline, **form.cleaned_data)
        except CurationError as exc:
            form.add_error("definition", str(exc))
        else:
            messages.info(request, f"Saved: {updated.name} is at version {updated.version}.")
            return redirect(updated)
    steps = [REGISTRY[name].describe() for name in sorted(load_steps())]
    return render(
        request,
        "pipelines/pipeline_edit.html",
        {"pipeline": pipeline, "form": form, "steps": steps},
    )


@login_required
@require_POST
def schedule_add(request: HttpRequest, slug: str) -> HttpResponse:
    pipeline = _get_pipeline_for_user(request, slug)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        try:
            schedule_create(pipeline=pipeline, **form.cleaned_data)
        except CurationError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, "Schedule added.")
    else:
        messages.error(request, f"Schedule not added: {form.errors.as_text()}")
    return redirect(pipeline)


@login_required
@require_POST
def schedule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(PipelineSchedule.objects.select_related("pipeline"), pk=pk)
    schedule_delete(schedule=schedule)
    messages.info(request, "Schedule removed.")
    return redirect(schedule.pipeline)


@login_required
def dataset_runs(request: HtmxHttpRequest, dataset_id: int) -> HttpResponse:
    """The runs of one dataset: a fragment the dataset page loads, or a page of its own."""
    template = "pipelines/dataset_runs.html" + ("#runs" if request.htmx else "")
    return render(
        request,
        template,
        {
            "runs": selectors.run_list(dataset_id=dataset_id, limit=20),
            "pipelines": selectors.pipeline_list(),
            "dataset_id": dataset_id,
        },
    )


@login_required
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    context = {
        "run": run,
        "steps": selectors.run_progress(run=run),
        "failures": selectors.run_failures(run=run),
        "targets": selectors.run_targets(run=run),
    }
    if request.htmx:
        response = render(request, "pipelines/run_detail.html#progress", context)
        if run.is_finished:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "pipelines/run_detail.html", context)


@login_required
@require_POST
def run_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    if action not in RUN_ACTIONS:
        raise Http404(f"no run action {action!r}")
    if action == "cancel":
        done = run_cancel(run=run)
        messages.info(request, "Run cancelled." if done else "The run had already finished.")
    else:
        queued = run_resume(run=run, retry_failed=action == "retry")
        messages.info(request, f"{queued} batch(es) queued.")
    return redirect(run)


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


@login_required
def document_similar(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Nearest documents by embedding: a fragment of the document page, or a page."""
    dataset = _get_dataset_for_user(request, slug)
    document = get_object_or_404(Document.objects.defer("text"), dataset=dataset, pk=pk)
    try:
        neighbours, problem = similar_documents(dataset=dataset, document=document), ""
    except IndexMissingError as exc:
        neighbours, problem = [], str(exc)
    template = "pipelines/similar.html" + ("#similar" if request.htmx else "")
    context = {"dataset": dataset, "document": document, "neighbours": neighbours}
    return render(request, template, {**context, "problem": problem})


@login_required
def dataset_search(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Semantic search: the query is embedded and matched against the dataset's index."""
    dataset = _get_dataset_for_user(request, slug)
    form = SearchForm(request.GET or None)
    neighbours, problem = [], ""
    if form.is_valid():
        try:
            neighbours = search_documents(
                dataset=dataset, query=form.cleaned_data["q"], k=form.cleaned_data["k"] or 20
            )
        except IndexMissingError as exc:
            problem = str(exc)
    template = "pipelines/dataset_search.html" + ("#results" if request.htmx else "")
    context = {"dataset": dataset, "form": form, "neighbours": neighbours, "problem": problem}
    return render(request, template, {**context, "indexes": dataset_indexes(dataset=dataset)})
