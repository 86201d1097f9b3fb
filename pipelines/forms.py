from __future__ import annotations

from django import forms

from curation.models import Dataset


class RunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"))


class ScheduleForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"))
    trigger = forms.ChoiceField(
        choices=[("cron", "On a schedule"), ("import", "After each import")]
    )
    cron = forms.CharField(
        required=False,
        max_length=100,
        help_text='Five cron fields for "On a schedule": "0 3 * * *" is 03:00 every day.',
    )


class PipelineEditForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    batch_size = forms.IntegerField(min_value=1, max_value=100_000)
    definition = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "code"}),
        help_text='A list of steps: [{"step": "gopher_quality", "params": {"min_doc_words": 50}}]',
    )


class SearchForm(forms.Form):
    q = forms.CharField(label="Search by meaning", max_length=2000, strip=True)
    k = forms.IntegerField(min_value=1, max_value=200, required=False, initial=20)
