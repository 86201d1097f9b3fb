"""The quality-classifier training form: rules over signals typed by each signal's dtype."""

from __future__ import annotations

from typing import Any

from django import forms

from curation.models import Signal
from pipelines.services.classifiers import OPS, REST, ClassifierError, classifier_signal_name

OP_CHOICES = [(op, op) for op in OPS]
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _value(signal: Signal, text: str) -> Any:
    """The rule value typed for the signal; raises ValidationError saying what was expected."""
    text = text.strip()
    if signal.dtype == Signal.Dtype.BOOL:
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise forms.ValidationError(f"{signal.name} is true or false; enter true or false")
    if signal.dtype in (Signal.Dtype.FLOAT, Signal.Dtype.INT):
        try:
            number = float(text)
        except ValueError:
            raise forms.ValidationError(f"{signal.name} is a number; enter a number") from None
        return int(number) if signal.dtype == Signal.Dtype.INT and number.is_integer() else number
    return text


class ClassifierTrainForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="Retraining a name adds a version; the signal is qc_ + name."
    )
    embedding_model = forms.ChoiceField(
        choices=[], help_text="Stored vectors of this dataset (the embed step writes them)."
    )
    positive_signal = forms.ModelChoiceField(
        queryset=Signal.objects.none(), to_field_name="name", label="Positive: signal"
    )
    positive_op = forms.ChoiceField(choices=OP_CHOICES, label="Positive: op")
    positive_value = forms.CharField(max_length=500, label="Positive: value")
    negative = forms.ChoiceField(
        choices=[
            (REST, "The rest: every other document with a value for the positive signal"),
            ("rule", "Documents matching the rule below"),
        ],
        initial=REST,
    )
    negative_signal = forms.ModelChoiceField(
        queryset=Signal.objects.none(),
        to_field_name="name",
        required=False,
        label="Negative: signal",
    )
    negative_op = forms.ChoiceField(choices=OP_CHOICES, required=False, label="Negative: op")
    negative_value = forms.CharField(max_length=500, required=False, label="Negative: value")
    folds = forms.IntegerField(min_value=2, max_value=20, initial=5, help_text="Stratified CV.")
    c = forms.FloatField(
        min_value=1e-6, initial=1.0, label="C", help_text="Inverse regularisation strength."
    )

    def __init__(
        self, *args: Any, embedding_models: list[str], signals: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["embedding_model"].choices = [(m, m) for m in embedding_models]  # type: ignore[attr-defined]
        for side in ("positive", "negative"):
            self.fields[f"{side}_signal"].queryset = signals  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        try:
            classifier_signal_name(name)
        except ClassifierError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return name

    def _rule(self, side: str) -> dict[str, Any] | None:
        signal, op = self.cleaned_data.get(f"{side}_signal"), self.cleaned_data.get(f"{side}_op")
        text = self.cleaned_data.get(f"{side}_value", "")
        for field, given in ((f"{side}_signal", signal), (f"{side}_op", op)):
            if not given and field not in self.errors:
                self.add_error(field, "Required for a rule.")
        if not signal or not op:
            return None
        if signal.dtype not in (Signal.Dtype.FLOAT, Signal.Dtype.INT) and op not in ("==", "!="):
            self.add_error(f"{side}_op", f"{signal.name} holds {signal.dtype}: use == or !=.")
            return None
        try:
            return {"signal": signal.name, "op": op, "value": _value(signal, text)}
        except forms.ValidationError as exc:
            self.add_error(f"{side}_value", exc)
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        positive = self._rule("positive")
        negative: Any = REST if data.get("negative") == REST else self._rule("negative")
        if positive is not None and negative is not None:
            data["labels"] = {"positive": positive, "negative": negative}
        return data

    def training_args(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "embedding_model": data["embedding_model"],
            "labels": data["labels"],
            "folds": data["folds"],
            "c": data["c"],
        }
