from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from pipelines.errors import PipelineDefinitionError
from pipelines.models import Pipeline, PipelineRun
from pipelines.services.definitions import definition_validate


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
