from __future__ import annotations

from django.urls import path

from annotate import answer_views, generated_views, review_views, source_views, views

app_name = "annotate"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("new/", views.project_create_view, name="project_create"),
    path(
        "generated/<slug:dataset_slug>/review/",
        generated_views.generated_review,
        name="generated_review",
    ),
    path("<slug:slug>/", views.project_detail, name="project_detail"),
    path("<slug:slug>/dashboard/", views.project_dashboard, name="project_dashboard"),
    path("<slug:slug>/items/", views.project_items_add, name="project_items_add"),
    path("<slug:slug>/members/", views.project_member_add, name="project_member_add"),
    path("<slug:slug>/pairs/", source_views.project_pairs_add, name="project_pairs_add"),
    path(
        "<slug:slug>/suggestions/",
        source_views.project_suggestions_add,
        name="project_suggestions_add",
    ),
    path("<slug:slug>/signals/", answer_views.answer_signals_view, name="answer_signals"),
    path("<slug:slug>/accepted/", generated_views.generated_accept, name="generated_accept"),
    path(
        "<slug:slug>/annotations.jsonl",
        answer_views.annotations_download,
        name="annotations_download",
    ),
    path("<slug:slug>/next/", views.next_item, name="next_item"),
    path("<slug:slug>/back/", views.go_back, name="go_back"),
    path("<slug:slug>/a/<int:pk>/", views.assignment_detail, name="assignment_detail"),
    path("<slug:slug>/a/<int:pk>/draft/", views.assignment_draft, name="assignment_draft"),
    path("<slug:slug>/a/<int:pk>/skip/", views.assignment_skip_view, name="assignment_skip"),
    path("<slug:slug>/review/", review_views.review_queue_view, name="review_queue"),
    path("<slug:slug>/review/next/", review_views.review_next_view, name="review_next"),
    path("<slug:slug>/review/<int:item_id>/", review_views.review_item_view, name="review_item"),
]
