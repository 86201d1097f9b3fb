"""Routes of recipes, provenance and duplicate review (included by curation/urls.py)."""

from __future__ import annotations

from django.urls import path

from curation import duplicate_views, recipe_views

urlpatterns = [
    path("datasets/<slug:slug>/recipes/", recipe_views.recipe_list, name="recipe_list"),
    path(
        "datasets/<slug:slug>/recipes/<slug:recipe>/",
        recipe_views.recipe_edit,
        name="recipe_edit",
    ),
    path(
        "datasets/<slug:slug>/recipes/<slug:recipe>/save/",
        recipe_views.recipe_save,
        name="recipe_save",
    ),
    path(
        "datasets/<slug:slug>/recipes/<slug:recipe>/preview/",
        recipe_views.recipe_preview_fragment,
        name="recipe_preview",
    ),
    path(
        "datasets/<slug:slug>/recipes/<slug:recipe>/v<int:version>/",
        recipe_views.recipe_version_detail,
        name="recipe_version",
    ),
    path(
        "datasets/<slug:slug>/documents/<int:pk>/provenance/",
        recipe_views.document_provenance,
        name="document_provenance",
    ),
    path("datasets/<slug:slug>/duplicates/", duplicate_views.duplicate_list, name="duplicate_list"),
    path(
        "datasets/<slug:slug>/duplicates/<int:pk>/",
        duplicate_views.duplicate_group,
        name="duplicate_group",
    ),
    path(
        "datasets/<slug:slug>/duplicates/<int:pk>/verdict/",
        duplicate_views.duplicate_verdict,
        name="duplicate_verdict",
    ),
]
