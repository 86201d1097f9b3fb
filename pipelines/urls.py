from __future__ import annotations

from django.urls import path

from pipelines import classifier_views, synth_views, views

urlpatterns = [
    path("pipelines/", views.pipeline_list, name="pipeline_list"),
    path("pipelines/generate/preview/", synth_views.generation_preview, name="generation_preview"),
    path(
        "pipelines/generate/preview/<str:token>/",
        synth_views.generation_preview_result,
        name="generation_preview_result",
    ),
    path("pipelines/generate/add/", synth_views.generation_add, name="generation_add"),
    path("pipelines/<slug:slug>/", views.pipeline_detail, name="pipeline_detail"),
    path("pipelines/<slug:slug>/edit/", views.pipeline_edit, name="pipeline_edit"),
    path("pipelines/<slug:slug>/schedules/", views.schedule_add, name="schedule_add"),
    path("schedules/<int:pk>/delete/", views.schedule_remove, name="schedule_remove"),
    path("datasets/<int:dataset_id>/runs/", views.dataset_runs, name="dataset_runs"),
    path("datasets/<slug:slug>/search/", views.dataset_search, name="dataset_search"),
    path(
        "datasets/<slug:slug>/documents/<int:pk>/similar/",
        views.document_similar,
        name="document_similar",
    ),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/<str:action>/", views.run_action, name="run_action"),
    path(
        "datasets/<int:dataset_id>/classifiers/",
        classifier_views.classifier_list,
        name="classifier_list",
    ),
    path("classifiers/<int:pk>/", classifier_views.classifier_detail, name="classifier_detail"),
    path("classifiers/<int:pk>/apply/", classifier_views.classifier_apply, name="classifier_apply"),
]
