"""Forms of the export pages."""

from __future__ import annotations

from typing import Any

from django import forms

from curation.export_selectors import dataset_recipe_versions, export_comparable
from curation.models import Dataset, ExportSnapshot, RecipeVersion
from curation.services.exports import ExportOptions
from curation.services.exports.options import BASE_COLUMNS, MB
from curation.services.signals import ANNOTATION_SIGNAL_PREFIX

COMPRESSIONS = [
    ("", "Default: zstd for Parquet, gzip for JSONL"),
    ("zstd", "zstd (Parquet)"),
    ("snappy", "snappy (Parquet)"),
    ("gzip", "gzip (JSONL)"),
    ("none", "none"),
]


class ExportForm(forms.Form):
    recipe_version = forms.ModelChoiceField(
        queryset=RecipeVersion.objects.none(),
        required=False,
        empty_label="Every document (no recipe)",
        help_text="Export what a saved recipe version keeps.",
    )
    format = forms.ChoiceField(choices=ExportSnapshot.Format.choices)
    compression = forms.ChoiceField(choices=COMPRESSIONS, required=False)
    columns = forms.MultipleChoiceField(
        choices=[(c, c) for c in BASE_COLUMNS],
        initial=list(BASE_COLUMNS),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="id is the document's id in its source; meta is a JSON string.",
    )
    signals = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple
    )
    annotations = forms.BooleanField(
        required=False,
        label="Annotation columns",
        help_text="Every annotation project's final answers on this dataset (its ann_* signals).",
    )
    dedup_groups = forms.BooleanField(
        required=False, label="Duplicate group id per dedup method (exact, MinHash, semantic)"
    )
    redact_pii = forms.BooleanField(
        required=False,
        label="Redact PII in the text",
        help_text="Replaces the pii step's spans by [EMAIL], [PHONE], [IP], [CARD]; documents "
        "the step did not scan are exported as they are, and counted in the card.",
    )
    shard_rows = forms.IntegerField(min_value=1, initial=100_000, label="Rows per shard, at most")
    shard_mb = forms.IntegerField(min_value=1, initial=256, label="MiB per shard, at most")
    license = forms.CharField(
        max_length=100, required=False, help_text='For the card, e.g. cc-by-4.0; blank: "other".'
    )
    hub_repo = forms.CharField(
        max_length=200,
        required=False,
        label="Push to the Hub",
        help_text="A dataset repo id (user/name), pushed once the export finishes.",
    )

    def __init__(
        self, *args: Any, dataset: Dataset, signals: list[str], hub: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        versions: Any = self.fields["recipe_version"]
        versions.queryset = dataset_recipe_versions(dataset=dataset)
        signal_field: Any = self.fields["signals"]
        signal_field.choices = [(s, s) for s in signals]
        self.annotation_signals = [s for s in signals if s.startswith(ANNOTATION_SIGNAL_PREFIX)]
        if not self.annotation_signals:
            annotations: Any = self.fields["annotations"]
            annotations.disabled = True
            annotations.help_text = (
                "No annotation answers on this dataset yet: write a project's final answers "
                "as signals from its page first."
            )
        if not hub:
            del self.fields["hub_repo"]

    def export_args(self) -> dict[str, Any]:
        data = self.cleaned_data
        annotations = self.annotation_signals if data.get("annotations") else []
        return {
            "fmt": data["format"],
            "recipe_version": data["recipe_version"],
            "options": ExportOptions(
                columns=tuple(data["columns"]),
                signals=tuple(dict.fromkeys([*data["signals"], *annotations])),
                dedup_groups=data["dedup_groups"],
                redact_pii=data["redact_pii"],
                shard_rows=data["shard_rows"],
                shard_bytes=data["shard_mb"] * MB,
                compression=data["compression"],
                license=data["license"].strip(),
                hub_repo=data.get("hub_repo", "").strip(),
            ),
        }


class SnapshotChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        version = obj.recipe_version
        what = f"{version.recipe.name} v{version.version}" if version else "every document"
        return f"#{obj.pk}: {what}, {obj.rows_done:,} rows ({obj.created_at:%Y-%m-%d %H:%M})"


class ExportDiffForm(forms.Form):
    other = SnapshotChoiceField(queryset=ExportSnapshot.objects.none(), label="Compare with export")

    def __init__(self, *args: Any, snapshot: ExportSnapshot, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        other: Any = self.fields["other"]
        other.queryset = export_comparable(snapshot=snapshot)
