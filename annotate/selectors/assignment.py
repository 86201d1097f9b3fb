"""The annotator page: one assignment's text(s) and its questions with the answers so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from django.contrib.auth.models import User

from annotate import questions as kinds
from annotate.models import Annotation, AnnotationProject, Assignment, Question
from curation.models import Document


@dataclass
class QuestionView:
    """One question on the annotator page, with the answer so far and its keys."""

    question: Question
    answer: dict[str, Any]
    choices: list[tuple[str, str]] = field(default_factory=list)  # (key, label)
    scale: list[kinds.ScalePoint] = field(default_factory=list)
    rating_values: list[int] = field(default_factory=list)
    rating_rows: list[tuple[str, int | None]] = field(default_factory=list)
    pair_value: str = ""
    spans_json: str = "[]"
    rewrite_text: str = ""
    error: str = ""

    @property
    def kind(self) -> str:
        return self.question.kind

    @property
    def key(self) -> str:
        return self.question.key


def _question_view(
    question: Question, answer: dict[str, Any], text: str, error: str
) -> QuestionView:
    """The question with its answer so far laid out for the template (which cannot index)."""
    view = QuestionView(question=question, answer=answer, error=error)
    config = question.config
    if question.kind in (
        Question.Kind.SINGLE_LABEL,
        Question.Kind.MULTI_LABEL,
        Question.Kind.SPANS,
    ):
        labels = config["labels"]
        view.choices = list(zip(kinds.choice_keys(len(labels)), labels, strict=True))
    if question.kind == Question.Kind.SPANS:
        view.spans_json = orjson.dumps(answer.get("spans", [])).decode()
    elif question.kind == Question.Kind.RATING:
        low, high = config["scale"]
        view.rating_values = list(range(low, high + 1))
        ratings = answer.get("ratings", {})
        view.rating_rows = [(a, ratings.get(a)) for a in config["attributes"]]
    elif question.kind == Question.Kind.PAIRWISE:
        view.scale = kinds.pairwise_scale(config)
        if "choice" in answer:
            view.pair_value = f"{answer['choice']}:{answer.get('strength', 0)}"
    elif question.kind == Question.Kind.REWRITE:
        if "text" in answer:
            view.rewrite_text = answer["text"]
        elif config.get("source") == "document":
            view.rewrite_text = text
    return view


@dataclass(frozen=True)
class AssignmentPage:
    assignment: Assignment
    project: AnnotationProject
    document: Document
    second_document: Document | None
    questions: list[QuestionView]


def assignment_page(
    *,
    assignment: Assignment,
    answers: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> AssignmentPage:
    """What the annotator page shows: the text(s), the questions and the answers so far.

    ``answers`` (keyed by question key) replace the stored ones, to show a refused
    submission as it was sent, with ``errors`` beside its questions.
    """
    item = assignment.item
    project = assignment.project
    document = Document.objects.get(pk=item.document_id)
    second = (
        Document.objects.filter(pk=item.second_document_id).first()
        if item.second_document_id
        else None
    )
    if answers is None:
        answers = dict(
            Annotation.objects.filter(item=item, user_id=assignment.user_id).values_list(
                "question__key", "values"
            )
        )
    errors = errors or {}
    views = [
        _question_view(q, answers.get(q.key) or {}, document.text, errors.get(q.key, ""))
        for q in project.questions.order_by("order", "id")
    ]
    return AssignmentPage(
        assignment=assignment,
        project=project,
        document=document,
        second_document=second,
        questions=views,
    )


def assignment_for_user(*, project: AnnotationProject, user: User, pk: int) -> Assignment | None:
    """The user's own assignment ``pk`` in the project (None for anyone else's)."""
    return (
        Assignment.objects.select_related("item", "project")
        .filter(project=project, user=user, pk=pk)
        .first()
    )
