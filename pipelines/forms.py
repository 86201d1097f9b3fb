from __future__ import annotations

from django import forms

from curation.models import Dataset


class RunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"))
