from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from pipelines.errors import PipelineDefinitionError
from pipelines.models import Pipeline, PipelineRun, PipelineSchedule, QualityClassifier
from pipelines.services.definitions import definition_validate
from pipelines.services.schedules import (
    cron_validate,
    schedule_create,
    schedule_delete,
    schedule_set_enabled,
)


class PipelineAdminForm(forms.ModelForm):
    class Meta:
        model = Pipeline
        fields = ["name", "slug", "description", "definition", "batch_size"]

    def clean_definition(self) -> Any:
        try:
            return definition_validate(self.cleaned_data["definition"])
        except PipelineDefinitionError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    form = PipelineAdminForm
    list_display = ["name", "version", "batch_size", "updated_at"]
    readonly_fields = ["version"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request: HttpRequest, obj: Pipeline, form: Any, change: bool) -> None:
        if change and "definition" in form.changed_data:
            obj.version += 1
        super().save_model(request, obj, form, change)


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "pipeline", "dataset", "status", "created_at", "finished_at"]
    list_filter = ["status", "pipeline"]
    readonly_fields = [f.name for f in PipelineRun._meta.fields]


class PipelineScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = PipelineSchedule
        fields = ["pipeline", "dataset", "trigger", "cron", "enabled"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("trigger") == PipelineSchedule.Trigger.CRON and not self.instance.pk:
            try:
                cron_validate(data.get("cron", ""))
            except PipelineDefinitionError as exc:
                self.add_error("cron", str(exc))
        return data


@admin.register(PipelineSchedule)
class PipelineScheduleAdmin(admin.ModelAdmin):
    """Schedules are made through the service so that their beat entry exists too."""

    form = PipelineScheduleAdminForm

    list_display = ["pipeline", "dataset", "trigger", "cron", "enabled", "last_run"]
    list_filter = ["trigger", "enabled"]
    fields = ["pipeline", "dataset", "trigger", "cron", "enabled"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["pipeline", "dataset", "trigger", "cron"] if obj else []

    def save_model(
        self, request: HttpRequest, obj: PipelineSchedule, form: Any, change: bool
    ) -> None:
        if change:
            schedule_set_enabled(schedule=obj, enabled=obj.enabled)
            return
        created = schedule_create(
            pipeline=obj.pipeline, dataset=obj.dataset, trigger=obj.trigger, cron=obj.cron
        )
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: PipelineSchedule) -> None:
        schedule_delete(schedule=obj)


@admin.register(QualityClassifier)
class QualityClassifierAdmin(admin.ModelAdmin):
    """Read-only: classifiers are trained and applied through their pages (services)."""

    list_display = ["name", "version", "dataset", "embedding_model", "status", "created_at"]
    list_filter = ["status", "embedding_model"]
    search_fields = ["name"]
    readonly_fields = [f.name for f in QualityClassifier._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
