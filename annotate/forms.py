from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from annotate.errors import QuestionConfigError
from annotate.models import AnnotationProject, ProjectMember, Question
from annotate.questions import HELPSTEER2_ATTRIBUTES
from annotate.services.generated import ACCEPT_ATTRIBUTES, ACCEPT_MIN_SCORE
from annotate.services.item_sources import SOURCE_CHOICES
from annotate.services.items import Sample
from annotate.services.projects import questions_clean
from curation.models import Dataset, RecipeVersion, Signal

EXAMPLE_QUESTIONS = """[
  {"key": "quality", "kind": "single_label", "prompt": "Is this good training text?",
   "config": {"labels": ["good", "borderline", "bad"]}},
  {"key": "helpsteer", "kind": "rating", "config": {}}
]"""


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"))
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Markdown, shown beside every item.",
    )
    k = forms.IntegerField(min_value=1, max_value=50, initial=1, help_text="Annotators per item.")
    lease_seconds = forms.IntegerField(
        min_value=30, max_value=7 * 86400, initial=900, help_text="How long one holds an item."
    )
    questions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "class": "code"}),
        initial=EXAMPLE_QUESTIONS,
        help_text="JSON list of {key, kind, prompt, config}; kinds: "
        + ", ".join(Question.Kind.values),
    )

    def clean_questions(self) -> list[dict[str, Any]]:
        try:
            specs = json.loads(self.cleaned_data["questions"])
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        try:
            return questions_clean(specs)
        except QuestionConfigError as exc:
            raise forms.ValidationError(str(exc)) from exc


class ItemsAddForm(forms.Form):
    sample = forms.ChoiceField(choices=SOURCE_CHOICES, initial=Sample.ALL)
    n = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="How many (random, stratified, borderline; optional for a band or a recipe).",
    )
    seed = forms.IntegerField(initial=0, required=False)
    signal = forms.ModelChoiceField(
        queryset=Signal.objects.filter(dtype__in=[Signal.Dtype.FLOAT, Signal.Dtype.INT]),
        required=False,
        to_field_name="name",
        help_text="Numeric signal for stratified, band and borderline samples.",
    )
    bins = forms.IntegerField(min_value=1, max_value=1000, initial=10, required=False)
    lo = forms.FloatField(required=False)
    hi = forms.FloatField(required=False)
    threshold = forms.FloatField(
        required=False, help_text="Borderline: the n documents nearest this value (e.g. 0.5)."
    )
    recipe_version = forms.ModelChoiceField(
        queryset=RecipeVersion.objects.none(),
        required=False,
        help_text="Recipe slice: the documents this saved version keeps.",
    )

    def __init__(self, *args: Any, project: AnnotationProject | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if project is not None:
            field = self.fields["recipe_version"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = (
                RecipeVersion.objects.filter(recipe__dataset_id=project.dataset_id)
                .select_related("recipe")
                .order_by("recipe__name", "-version")
            )

    def options(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "sample": data["sample"],
            "n": data["n"],
            "seed": data["seed"] or 0,
            "signal": data["signal"],
            "bins": data["bins"] or 10,
            "lo": data["lo"],
            "hi": data["hi"],
            "threshold": data["threshold"],
            "recipe_version": data["recipe_version"],
        }


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ProjectMember.Role.choices)

    def clean_username(self) -> Any:
        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise forms.ValidationError("no user has that name")
        return user


class AnswerForm(forms.Form):
    """The annotator page's form: one field (or one per attribute) per question.

    Field names: ``q-<key>`` (single label, pairwise as ``choice:strength``, spans as a
    JSON list, rewrite text), ``q-<key>`` repeated (multi label), ``q-<key>-<attribute>``
    (ratings). ``answers()`` turns them into the values the services validate.
    """

    time_spent_ms = forms.IntegerField(min_value=0, required=False)

    def __init__(self, *args: Any, questions: list[Question], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questions = questions
        for q in questions:
            name = f"q-{q.key}"
            if q.kind == Question.Kind.MULTI_LABEL:
                labels = [(label, label) for label in q.config["labels"]]
                self.fields[name] = forms.MultipleChoiceField(choices=labels, required=False)
            elif q.kind == Question.Kind.RATING:
                for attribute in q.config["attributes"]:
                    self.fields[f"{name}-{attribute}"] = forms.IntegerField(required=False)
            else:
                self.fields[name] = forms.CharField(required=False, strip=False)

    def answers(self) -> dict[str, Any]:
        """Values keyed by question key; a question left alone is left out."""
        data = self.cleaned_data
        values: dict[str, Any] = {}
        for q in self.questions:
            name = f"q-{q.key}"
            if q.kind == Question.Kind.RATING:
                ratings = {
                    a: data[f"{name}-{a}"]
                    for a in q.config["attributes"]
                    if data.get(f"{name}-{a}") is not None
                }
                if ratings:
                    values[q.key] = {"ratings": ratings}
                continue
            raw = data.get(name)
            if q.kind == Question.Kind.MULTI_LABEL:
                values[q.key] = {"labels": list(raw or [])}
            elif not raw:
                continue
            elif q.kind == Question.Kind.SINGLE_LABEL:
                values[q.key] = {"label": raw}
            elif q.kind == Question.Kind.SPANS:
                values[q.key] = {"spans": _json_list(raw)}
            elif q.kind == Question.Kind.PAIRWISE:
                choice, _, strength = raw.partition(":")
                values[q.key] = {
                    "choice": choice,
                    "strength": int(strength) if strength.isdigit() else strength or None,
                }
            elif q.kind == Question.Kind.REWRITE:
                # Browsers send textarea line breaks as CRLF.
                values[q.key] = {"text": raw.replace("\r\n", "\n")}
        return values


def _json_list(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return "not JSON"


class AnswerSignalsForm(forms.Form):
    include_agreed = forms.BooleanField(
        required=False,
        label="Also unanimous answers",
        help_text="Items without a final answer whose annotators (at least k, and two) all "
        "answered alike; the signals' descriptions record it.",
    )


class AcceptForm(forms.Form):
    """The rule that accepts a reviewed generated record (HelpSteer2 ratings, 0-4)."""

    attributes = forms.MultipleChoiceField(
        choices=[(a, a) for a in HELPSTEER2_ATTRIBUTES],
        initial=list(ACCEPT_ATTRIBUTES),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one attribute the rule checks."},
    )
    min_score = forms.IntegerField(
        min_value=0, max_value=4, initial=ACCEPT_MIN_SCORE, label="At least"
    )
