"""Curator forms for what does not come from annotators: pairwise items and model suggestions."""

from __future__ import annotations

from typing import Any

from django import forms

from annotate.models import AnnotationProject, Question, Suggestion
from annotate.services.suggestions import RULE_OPS
from curation.models import DuplicateGroup, Signal

PAIR_SOURCES = [
    ("duplicates", "Duplicate groups: each member with its group's representative"),
    ("random", "Random pairs of different documents (fixed by the seed)"),
    ("file", 'Uploaded CSV (columns a, b) or JSONL ({"a": .., "b": ..}) of external ids'),
]
SUGGESTION_MODES = [
    ("rule", "Signal rule: one label when it holds, another when not (single label)"),
    ("score", "Model score: a threshold between two labels, or a linear map onto a rating"),
]


class PairsAddForm(forms.Form):
    source = forms.ChoiceField(choices=PAIR_SOURCES, initial="duplicates")
    kind = forms.ChoiceField(
        choices=DuplicateGroup.Kind.choices, required=False, help_text="Duplicate groups' kind."
    )
    n = forms.IntegerField(
        min_value=1, required=False, help_text="How many pairs (random; optional for groups)."
    )
    seed = forms.IntegerField(initial=0, required=False)
    file = forms.FileField(required=False, help_text="One pair per line; text A is a, B is b.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        if source == "duplicates" and not data.get("kind"):
            self.add_error("kind", "pick the kind of duplicate groups to pair")
        if source == "random" and not data.get("n"):
            self.add_error("n", "say how many random pairs to add")
        if source == "file" and not data.get("file"):
            self.add_error("file", "choose a CSV or JSONL file of pairs")
        return data


class SuggestionsForm(forms.Form):
    mode = forms.ChoiceField(choices=SUGGESTION_MODES, initial="score")
    question = forms.ModelChoiceField(
        queryset=Question.objects.none(),
        to_field_name="key",
        help_text="A single-label or rating question.",
    )
    signal = forms.ModelChoiceField(
        queryset=Signal.objects.order_by("name"),
        to_field_name="name",
        help_text="The rule's signal, or the model's score (qc_<name>, a judge's signal).",
    )
    origin = forms.ChoiceField(
        choices=[c for c in Suggestion.Origin.choices if c[0] != Suggestion.Origin.SIGNAL_RULE],
        initial=Suggestion.Origin.CLASSIFIER,
        required=False,
        help_text="Score: what made it.",
    )
    op = forms.ChoiceField(choices=[(op, op) for op in RULE_OPS], required=False)
    value = forms.CharField(max_length=200, required=False, help_text="Rule: the value compared.")
    threshold = forms.FloatField(required=False, help_text="Score, single label: the cut.")
    label_true = forms.CharField(
        max_length=100, required=False, help_text="Label when the rule holds / score >= threshold."
    )
    label_false = forms.CharField(
        max_length=100, required=False, help_text="Label when it does not / score below."
    )
    attribute = forms.CharField(max_length=100, required=False, help_text="Score, rating.")
    score_low = forms.FloatField(initial=0.0, required=False, help_text="Score at the scale's low.")
    score_high = forms.FloatField(
        initial=1.0, required=False, help_text="Score at the scale's high."
    )

    def __init__(self, *args: Any, project: AnnotationProject, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["question"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = project.questions.filter(
            kind__in=[Question.Kind.SINGLE_LABEL, Question.Kind.RATING]
        ).order_by("order", "id")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "rule":
            for name in ("op", "value", "label_true", "label_false"):
                if data.get(name) in (None, ""):
                    self.add_error(name, "a signal rule needs it")
        return data

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``suggestions_create`` for the chosen mode."""
        data = self.cleaned_data
        common = {"mode": data["mode"], "question": data["question"], "signal": data["signal"]}
        if data["mode"] == "rule":
            return {
                **common,
                "op": data["op"],
                "value": data["value"],
                "label_true": data["label_true"],
                "label_false": data["label_false"],
            }
        return {
            **common,
            "origin": data["origin"] or Suggestion.Origin.CLASSIFIER,
            "threshold": data["threshold"],
            "label_above": data["label_true"],
            "label_below": data["label_false"],
            "attribute": data["attribute"],
            "score_low": 0.0 if data["score_low"] is None else data["score_low"],
            "score_high": 1.0 if data["score_high"] is None else data["score_high"],
        }
