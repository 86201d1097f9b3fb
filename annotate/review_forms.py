"""Forms of the review pages: the queue's order and cursor, and one item's decisions."""

from __future__ import annotations

from typing import Any

from django import forms

from annotate.forms import AnswerForm
from annotate.models import Question
from annotate.review_selectors import OWN
from annotate.services.review import Decision, ReviewMode


class ReviewQueueForm(forms.Form):
    mode = forms.ChoiceField(choices=ReviewMode.choices, required=False)
    after = forms.RegexField(
        regex=r"^[01]:\d+$",
        required=False,
        error_messages={"invalid": "after must be a page cursor like 1:123 (use the links)"},
    )

    def mode_value(self) -> str:
        if self.is_valid() and self.cleaned_data["mode"]:
            return str(self.cleaned_data["mode"])
        return ReviewMode.DISAGREEMENTS_FIRST


class ReviewForm(forms.Form):
    """The review page's form, per question: ``pick-<key>`` (an annotation id, or ``own``
    for the reviewer's answer in the annotator page's fields, ``q-<key>``...) and
    ``note-<key>``; ``mode`` carries the queue order to the next item."""

    mode = forms.ChoiceField(choices=ReviewMode.choices, required=False)

    def __init__(self, *args: Any, questions: list[Question], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questions = questions
        self.own = AnswerForm(*args, questions=questions, **kwargs)
        for q in questions:
            self.fields[f"pick-{q.key}"] = forms.CharField(required=False, max_length=20)
            self.fields[f"note-{q.key}"] = forms.CharField(
                required=False, max_length=5000, widget=forms.Textarea
            )

    def is_valid(self) -> bool:
        own_valid = self.own.is_valid()
        return super().is_valid() and own_valid

    def errors_text(self) -> str:
        return " ".join(f.errors.as_text() for f in (self, self.own) if f.errors)

    def picks(self) -> dict[str, str]:
        """The pick per question key ("" where none); call after ``is_valid``."""
        data = getattr(self, "cleaned_data", {})
        return {q.key: data.get(f"pick-{q.key}") or "" for q in self.questions}

    def notes(self) -> dict[str, str]:
        data = getattr(self, "cleaned_data", {})
        return {q.key: data.get(f"note-{q.key}") or "" for q in self.questions}

    def decisions(self) -> dict[str, Decision]:
        """Decisions keyed by question key; a question without a pick (an annotation id or
        ``own``) is left out, and the service names it."""
        own = self.own.answers()
        decisions: dict[str, Decision] = {}
        for key, pick in self.picks().items():
            note = self.notes()[key]
            if pick == OWN:
                decisions[key] = Decision(values=own.get(key, {}), note=note)
            elif pick.isdigit():
                decisions[key] = Decision(annotation_id=int(pick), note=note)
        return decisions
