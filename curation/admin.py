from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from curation.models import ApiToken, Dataset, DuplicateGroup, ImportJob, Signal
from curation.services.datasets import dataset_delete


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "document_count", "char_count", "created_by", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["document_count", "char_count", "created_at"]
    prepopulated_fields = {"slug": ["name"]}

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        dataset_delete(dataset=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        for dataset in queryset:
            dataset_delete(dataset=dataset)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset", "source_name", "status", "rows_imported", "rows_rejected"]
    list_filter = ["status", "origin"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ["name", "dtype", "step", "step_version", "updated_at"]
    readonly_fields = ["dtype"]


@admin.register(DuplicateGroup)
class DuplicateGroupAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset", "kind", "size", "step", "created_at"]
    list_filter = ["kind"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
