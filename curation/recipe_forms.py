"""Forms of the recipe editor and the duplicate review.

The editor is one form: a formset of rule rows plus the dedup checkboxes. Rows are
added, removed and moved on the server (buttons post ``action``), so it works with
or without JavaScript; ``RecipeEditor`` parses a request into raw rules for the
services and maps their ``RecipeRuleError`` back onto the row and field it names.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.forms import formset_factory
from django.http import QueryDict

from curation.models import DuplicateGroup, DuplicateVerdict, RecipeVersion, Signal
from curation.services.recipes.rules import MAX_RULES, OPS, RecipeRuleError

ROW_FIELDS = ("signal", "op", "value", "percentile")


class RecipeForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RuleForm(forms.Form):
    signal = forms.ChoiceField(choices=(), required=False)
    op = forms.ChoiceField(choices=[(op, op) for op in OPS])
    value = forms.CharField(
        required=False,
        max_length=10_000,
        help_text="For in: values separated by commas.",
        widget=forms.TextInput(attrs={"size": 10, "placeholder": "value"}),
    )
    percentile = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"step": "any", "size": 5, "placeholder": "p"}),
    )

    def __init__(self, *args: Any, signals: list[Signal], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["signal"]).choices = [("", "— signal —")] + [
            (s.name, f"{s.name} ({s.dtype}, {s.step})") for s in signals
        ]

    def rule(self) -> dict[str, Any]:
        """The row as a raw rule for the services (which validate it)."""
        data = self.cleaned_data
        rule: dict[str, Any] = {"signal": data["signal"], "op": data["op"]}
        value = (data.get("value") or "").strip()
        if value:
            rule["value"] = [v.strip() for v in value.split(",")] if data["op"] == "in" else value
        if data.get("percentile") is not None:
            rule["percentile"] = data["percentile"]
        return rule


RuleFormSet = formset_factory(
    RuleForm, extra=0, max_num=MAX_RULES, validate_max=True, absolute_max=MAX_RULES
)


class DedupForm(forms.Form):
    exact = forms.BooleanField(required=False, label="Exact duplicates")
    minhash = forms.BooleanField(required=False, label="Near duplicates (MinHash)")
    semantic = forms.BooleanField(required=False, label="Semantic duplicates")
    note = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "what changed (optional)"}),
    )

    def policy(self) -> dict[str, bool]:
        return {k: bool(self.cleaned_data.get(k)) for k in ("exact", "minhash", "semantic")}


def _rule_initial(rule: dict[str, Any]) -> dict[str, Any]:
    value = rule.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    return {
        "signal": rule.get("signal", ""),
        "op": rule.get("op", ">="),
        "value": "" if value is None else str(value),
        "percentile": rule.get("percentile"),
    }


class RecipeEditor:
    """The rules formset and dedup form of one editor state, always bound to data.

    Rows without a signal yet are left out of the rules (a freshly added row does
    not fail the preview); errors from the services are mapped back to their row.
    """

    def __init__(self, *, signals: list[Signal], data: QueryDict | dict[str, Any]) -> None:
        self.formset = RuleFormSet(data, form_kwargs={"signals": signals}, prefix="rules")
        self.dedup_form = DedupForm(data)
        self._forms: list[int] = []

    @classmethod
    def from_version(cls, *, signals: list[Signal], version: RecipeVersion | None) -> RecipeEditor:
        """Start from a saved version's rules and policy (or from nothing)."""
        rows = [_rule_initial(r) for r in version.rules] if version else []
        dedup = version.dedup if version else {}
        return cls(signals=signals, data=_editor_data(rows, dedup, note=""))

    @classmethod
    def rearranged(cls, *, signals: list[Signal], data: QueryDict, action: str) -> RecipeEditor:
        """The posted editor after ``add``, ``remove-i``, ``up-i`` or ``down-i``."""
        try:
            count = min(int(data.get("rules-TOTAL_FORMS", "0")), MAX_RULES)
        except ValueError:
            count = 0
        rows = [{f: data.get(f"rules-{i}-{f}", "") for f in ROW_FIELDS} for i in range(count)]
        name, _, position = action.partition("-")
        i = int(position) if position.isdigit() else -1
        if name == "add" and len(rows) < MAX_RULES:
            rows.append({"signal": "", "op": ">=", "value": "", "percentile": ""})
        elif name == "remove" and 0 <= i < len(rows):
            rows.pop(i)
        elif name == "up" and 0 < i < len(rows):
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif name == "down" and 0 <= i < len(rows) - 1:
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        dedup = {k: bool(data.get(k)) for k in ("exact", "minhash", "semantic")}
        return cls(signals=signals, data=_editor_data(rows, dedup, note=data.get("note", "")))

    def is_valid(self) -> bool:
        return self.formset.is_valid() and self.dedup_form.is_valid()

    def rules(self) -> list[dict[str, Any]]:
        """Raw rules of the rows that have a signal, in order (after ``is_valid``)."""
        self._forms = [i for i, f in enumerate(self.formset.forms) if f.cleaned_data.get("signal")]
        return [self.formset.forms[i].rule() for i in self._forms]

    def dedup(self) -> dict[str, bool]:
        return self.dedup_form.policy()

    @property
    def note(self) -> str:
        return str(self.dedup_form.cleaned_data.get("note", ""))

    def add_error(self, error: RecipeRuleError) -> None:
        """Show a service's validation error on the row and field it names."""
        if error.index is not None and 0 <= error.index < len(self._forms):
            row = self._forms[error.index]
            form = self.formset.forms[row]
            where = f"rule {row + 1}" + (f", {error.field}" if error.field else "")
            field = error.field if error.field in form.fields else None
            form.add_error(field, f"{where}: {error.detail}")
        else:
            self.dedup_form.add_error(None, str(error))

    @property
    def errors(self) -> list[str]:
        """Every error, each naming its rule: for the preview pane."""
        out = [str(e) for e in self.formset.non_form_errors()]
        for i, form in enumerate(self.formset.forms):
            for name, messages in form.errors.items():
                for message in messages:
                    text = str(message)
                    where = "" if text.startswith("rule ") else f"rule {i + 1}, {name}: "
                    out.append(where + text)
        out += [str(e) for messages in self.dedup_form.errors.values() for e in messages]
        return out


def _editor_data(rows: list[dict[str, Any]], dedup: dict[str, Any], note: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rules-TOTAL_FORMS": str(len(rows)),
        "rules-INITIAL_FORMS": "0",
        "note": note,
    }
    for i, row in enumerate(rows):
        for field in ROW_FIELDS:
            value = row.get(field)
            data[f"rules-{i}-{field}"] = "" if value is None else str(value)
    data.update({k: "on" for k in ("exact", "minhash", "semantic") if dedup.get(k)})
    return data


class DuplicateFilterForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *DuplicateGroup.Kind.choices], required=False
    )
    page = forms.IntegerField(min_value=1, required=False)


class DuplicateVerdictForm(forms.Form):
    verdict = forms.ChoiceField(choices=[*DuplicateVerdict.Verdict.choices, ("clear", "Clear")])
    document = forms.IntegerField(
        required=False, help_text="A member judged against the representative; empty: the group."
    )


class ProvenanceForm(forms.Form):
    version = forms.IntegerField(required=False)
