"""Reads of the annotate app: who may see what, progress, the annotator page's data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, QuerySet
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotate import questions as kinds
from annotate.models import Annotation, AnnotationProject, Assignment, Item, ProjectMember, Question
from curation.models import Document

# The site-wide administrator: staff users see every project's management pages.
ADMIN = "admin"

# Raw HTML in guidelines is escaped (html=False), javascript:/data: links are refused by
# markdown-it's link validation, and images are off so that guidelines load nothing.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image").enable("table")


def user_role(*, project: AnnotationProject, user: User | AnonymousUser) -> str | None:
    """The user's role in the project: their membership's, else ``admin`` for staff, else None."""
    if not user.is_authenticated:
        return None
    role = (
        ProjectMember.objects.filter(project=project, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if role is None and user.is_staff:
        return ADMIN
    return role


@dataclass(frozen=True)
class ProjectRow:
    project: AnnotationProject
    role: str


def projects_for_user(*, user: User) -> list[ProjectRow]:
    """The projects the user belongs to (staff: all of them), with their role in each."""
    roles = dict(ProjectMember.objects.filter(user=user).values_list("project_id", "role"))
    projects: QuerySet[AnnotationProject] = AnnotationProject.objects.select_related("dataset")
    if not user.is_staff:
        projects = projects.filter(pk__in=list(roles))
    return [ProjectRow(p, roles.get(p.pk, ADMIN)) for p in projects.order_by("name")]


def guidelines_html(*, project: AnnotationProject) -> SafeString:
    """The guidelines rendered from Markdown with raw HTML escaped (safe to show)."""
    return mark_safe(_MARKDOWN.render(project.guidelines))  # noqa: S308 - escaped by markdown-it


@dataclass(frozen=True)
class ProjectProgress:
    total: int
    pending: int
    partial: int
    complete: int

    @property
    def fraction(self) -> float:
        return self.complete / self.total if self.total else 0.0


def project_progress(*, project: AnnotationProject) -> ProjectProgress:
    counts = dict(
        Item.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return ProjectProgress(
        total=sum(counts.values()),
        pending=counts.get(Item.Status.PENDING, 0),
        partial=counts.get(Item.Status.PARTIAL, 0),
        complete=counts.get(Item.Status.COMPLETE, 0),
    )


@dataclass(frozen=True)
class AnnotatorProgress:
    submitted: int
    skipped: int
    total: int


def annotator_progress(*, project: AnnotationProject, user: User) -> AnnotatorProgress:
    """The annotator's own counts and the project's item count.

    Only the annotator's own rows are counted (assignment_user_idx), so the page stays
    cheap on a project of millions; the curator page has the counts by status.
    """
    mine = dict(
        Assignment.objects.filter(project=project, user=user)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return AnnotatorProgress(
        submitted=mine.get(Assignment.State.SUBMITTED, 0),
        skipped=mine.get(Assignment.State.SKIPPED, 0),
        total=project.item_count,
    )


def project_members(*, project: AnnotationProject) -> QuerySet[ProjectMember]:
    return (
        ProjectMember.objects.filter(project=project)
        .select_related("user")
        .order_by("role", "user__username")
    )


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
