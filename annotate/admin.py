from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from annotate.models import (
    Annotation,
    AnnotationProject,
    Assignment,
    FinalAnswer,
    ProjectMember,
    Question,
)


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ["order", "key", "kind", "prompt", "config"]
    readonly_fields = ["kind", "config"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MemberInline(admin.TabularInline):
    model = ProjectMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(AnnotationProject)
class AnnotationProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "k", "lease_seconds", "created_at"]
    search_fields = ["name"]
    # Questions are made (and their config validated) by services.projects.project_create.
    readonly_fields = ["dataset", "k"]
    inlines = [QuestionInline, MemberInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "user", "state", "leased_until", "time_spent_ms"]
    list_filter = ["state"]
    raw_id_fields = ["item", "user", "project"]
    list_select_related = ["project", "user"]
    show_full_result_count = False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "user", "question", "draft", "updated_at"]
    list_filter = ["draft"]
    raw_id_fields = ["item", "user", "question"]
    show_full_result_count = False


@admin.register(FinalAnswer)
class FinalAnswerAdmin(admin.ModelAdmin):
    """Final answers are decided on the review pages (services.review); here they are read."""

    list_display = ["id", "project", "item", "question", "source", "reviewer", "decided_at"]
    list_filter = ["source"]
    raw_id_fields = ["project", "item", "question", "reviewer"]
    list_select_related = ["project", "question", "reviewer"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
