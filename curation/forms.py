from __future__ import annotations

from django import forms

from curation.services.readers import FORMATS


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    source = forms.CharField(max_length=1000, required=False)


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL (.jsonl, .jsonl.gz, .jsonl.zst), CSV or Parquet; any size."
    )
    text_field = forms.CharField(max_length=200, initial="text")
    id_field = forms.CharField(
        max_length=200, required=False, help_text="Blank: ids are file:line."
    )
    format = forms.ChoiceField(
        choices=[("", "Detect from the file name")] + [(f, f) for f in FORMATS if f != "hf"],
        required=False,
    )


class EvalSetForm(forms.Form):
    name = forms.CharField(max_length=200)
    file = forms.FileField(help_text="JSONL: one item per line.")
    text_fields = forms.CharField(
        initial="question,answer", help_text="Fields joined into the text that is checked."
    )
    id_field = forms.CharField(initial="id", required=False)
    description = forms.CharField(required=False)
