"""Recipe pages: a dataset's recipes, the editor with its live preview, saved versions,
and a document's provenance under a version (a fragment the document page loads)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from curation import recipe_selectors as selectors
from curation.errors import CurationError
from curation.htmx import HtmxHttpRequest
from curation.models import Dataset, Document, Recipe, RecipeVersion
from curation.recipe_forms import ProvenanceForm, RecipeEditor, RecipeForm
from curation.services.recipes import (
    RecipeRuleError,
    recipe_create,
    recipe_preview,
    recipe_version_save,
)

EDITOR = "curation/recipe_edit.html"


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _get_recipe_for_user(request: HttpRequest, slug: str, recipe: str) -> Recipe:
    return get_object_or_404(
        Recipe.objects.select_related("dataset"), dataset__slug=slug, slug=recipe
    )


def _editor_context(recipe: Recipe, editor: RecipeEditor) -> dict[str, Any]:
    """The editor with the preview of its rules (or the errors that prevent one)."""
    preview = None
    if editor.is_valid():
        try:
            preview = recipe_preview(
                dataset=recipe.dataset, rules=editor.rules(), dedup=editor.dedup()
            )
        except RecipeRuleError as exc:
            editor.add_error(exc)
    return {
        "dataset": recipe.dataset,
        "recipe": recipe,
        "editor": editor,
        "preview": preview,
        "versions": selectors.recipe_versions(recipe=recipe),
    }


@login_required
@require_http_methods(["GET", "POST"])
def recipe_list(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = RecipeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recipe = recipe_create(dataset=dataset, user=request.user, **form.cleaned_data)
        except CurationError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("recipe_edit", dataset.slug, recipe.slug)
    context = {"dataset": dataset, "form": form, "recipes": selectors.recipe_list(dataset=dataset)}
    return render(request, "curation/recipe_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def recipe_edit(request: HtmxHttpRequest, slug: str, recipe: str) -> HttpResponse:
    """GET: the editor from the latest version (or ``?from=N``). POST: the posted rows
    rearranged by ``action`` (add, remove-i, up-i, down-i)."""
    obj = _get_recipe_for_user(request, slug, recipe)
    signals = selectors.signal_choices()
    if request.method == "POST":
        action = request.POST.get("action", "")
        editor = RecipeEditor.rearranged(signals=signals, data=request.POST, action=action)
    else:
        start = selectors.recipe_start_version(recipe=obj, number=request.GET.get("from"))
        editor = RecipeEditor.from_version(signals=signals, version=start)
    context = _editor_context(obj, editor)
    return render(request, f"{EDITOR}#editor" if request.htmx else EDITOR, context)


@login_required
@require_POST
def recipe_save(request: HttpRequest, slug: str, recipe: str) -> HttpResponse:
    obj = _get_recipe_for_user(request, slug, recipe)
    editor = RecipeEditor(signals=selectors.signal_choices(), data=request.POST)
    if editor.is_valid():
        try:
            version = recipe_version_save(
                recipe=obj,
                rules=editor.rules(),
                dedup=editor.dedup(),
                user=request.user,
                note=editor.note,
            )
        except RecipeRuleError as exc:
            editor.add_error(exc)
        else:
            messages.info(request, f"Saved {version}: it keeps {version.counts['kept']:,}.")
            return redirect("recipe_version", slug, obj.slug, version.version)
    return render(request, EDITOR, _editor_context(obj, editor), status=422)


@login_required
@require_POST
def recipe_preview_fragment(request: HttpRequest, slug: str, recipe: str) -> HttpResponse:
    """The live preview of the posted, unsaved rules."""
    obj = _get_recipe_for_user(request, slug, recipe)
    editor = RecipeEditor(signals=selectors.signal_choices(), data=request.POST)
    return render(request, f"{EDITOR}#preview", _editor_context(obj, editor))


@login_required
def recipe_version_detail(
    request: HttpRequest, slug: str, recipe: str, version: int
) -> HttpResponse:
    obj = _get_recipe_for_user(request, slug, recipe)
    saved = get_object_or_404(RecipeVersion, recipe=obj, version=version)
    context = {
        "dataset": obj.dataset,
        "recipe": obj,
        "version": saved,
        "rules": selectors.version_rules(version=saved),
        "versions": selectors.recipe_versions(recipe=obj),
    }
    return render(request, "curation/recipe_version.html", context)


@login_required
def document_provenance(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Why a recipe version keeps or drops the document (default: the newest version)."""
    dataset = _get_dataset_for_user(request, slug)
    document = get_object_or_404(Document.objects.defer("text"), dataset=dataset, pk=pk)
    form = ProvenanceForm(request.GET)
    chosen = form.cleaned_data.get("version") if form.is_valid() else None
    versions = list(selectors.dataset_recipe_versions(dataset=dataset))
    version = next((v for v in versions if v.pk == chosen), versions[0] if versions else None)
    context: dict[str, Any] = {
        "dataset": dataset,
        "document": document,
        "versions": versions,
        "version": version,
    }
    if version is not None:
        try:
            context["provenance"] = selectors.document_provenance(
                document=document, version=version
            )
        except CurationError as exc:
            context["error"] = str(exc)
    template = "curation/document_provenance.html"
    return render(request, f"{template}#provenance" if request.htmx else template, context)
