from __future__ import annotations

from django.urls import path

from annotate import views

app_name = "annotate"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("new/", views.project_create_view, name="project_create"),
    path("<slug:slug>/", views.project_detail, name="project_detail"),
    path("<slug:slug>/dashboard/", views.project_dashboard, name="project_dashboard"),
    path("<slug:slug>/items/", views.project_items_add, name="project_items_add"),
    path("<slug:slug>/members/", views.project_member_add, name="project_member_add"),
    path("<slug:slug>/next/", views.next_item, name="next_item"),
    path("<slug:slug>/back/", views.go_back, name="go_back"),
    path("<slug:slug>/a/<int:pk>/", views.assignment_detail, name="assignment_detail"),
    path("<slug:slug>/a/<int:pk>/draft/", views.assignment_draft, name="assignment_draft"),
    path("<slug:slug>/a/<int:pk>/skip/", views.assignment_skip_view, name="assignment_skip"),
]
