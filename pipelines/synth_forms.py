"""Forms of the generator pages: preview a generator step, then add it to a pipeline."""

from __future__ import annotations

from typing import Any

from django import forms

from curation.models import Dataset
from pipelines.models import Pipeline
from pipelines.services.definitions import load_steps
from pipelines.steps.derive import DeriveStep


def generator_choices() -> list[tuple[str, str]]:
    return [
        (name, f"{name} — {cls.description}")
        for name, cls in sorted(load_steps().items())
        if issubclass(cls, DeriveStep)
    ]


class PreviewForm(forms.Form):
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"), to_field_name="slug"
    )
    step = forms.ChoiceField(choices=generator_choices)
    backend = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "code"}),
        help_text='{"backend": "transformers" | "vllm" | "http", "model": ..., options}',
    )
    template = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "class": "code"}),
        help_text="Jinja (sandboxed): {{ text }}, {{ meta }}, {{ id }}; empty: the step's own.",
    )
    params = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 2, "class": "code"}),
        help_text='Other parameters of the step, e.g. {"per_document": 2, "temperature": 0.7}',
    )
    n = forms.IntegerField(min_value=1, max_value=20, initial=3, label="Documents")

    def clean_params(self) -> dict[str, Any]:
        params = self.cleaned_data.get("params") or {}
        if not isinstance(params, dict):
            raise forms.ValidationError('Parameters are a JSON object: {"name": value}.')
        return params

    def step_params(self) -> dict[str, Any]:
        """The step's parameters from the form: ``params`` plus backend and template."""
        data = self.cleaned_data
        params = dict(data["params"])
        if data.get("backend"):
            params["backend"] = data["backend"]
        if data.get("template"):
            params["template"] = data["template"]
        return params


class AddStepForm(forms.Form):
    """Add a previewed generator step to a pipeline, or make a new pipeline of it."""

    spec = forms.JSONField(widget=forms.HiddenInput)
    pipeline = forms.ModelChoiceField(
        queryset=Pipeline.objects.order_by("name"),
        required=False,
        empty_label="(a new pipeline)",
        help_text="The step goes at the end of its definition (its version goes up).",
    )
    name = forms.CharField(max_length=200, required=False, label="New pipeline's name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spec = data.get("spec")
        if not (isinstance(spec, dict) and isinstance(spec.get("step"), str)):
            raise forms.ValidationError('The step is {"step": NAME, "params": {...}}.')
        if data.get("pipeline") is None and not (data.get("name") or "").strip():
            raise forms.ValidationError("Pick a pipeline or name a new one.")
        return data
