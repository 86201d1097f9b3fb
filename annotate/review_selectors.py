"""Reads for review: progress counts, the queue, and one item's answers side by side."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from annotate import questions as kinds
from annotate.models import Annotation, AnnotationProject, FinalAnswer, Item, Question
from annotate.selectors import QuestionView
from annotate.selectors import _question_view as question_view
from annotate.services.review import ReviewMode, answer_canonical
from curation.models import Document

QUEUE_PAGE_SIZE = 50
PREVIEW_CHARS = 160
# Rewrites are diffed word by word against the original only up to this size together;
# past it the page shows the text alone (a diff of megabytes helps nobody and is slow).
DIFF_MAX_CHARS = 20_000
# Annotators whose answers get a number key (1-9); more are picked with the mouse.
KEYED_ANSWERS = 9
OWN = "own"


@dataclass(frozen=True)
class ReviewCounts:
    complete: int
    reviewed: int
    awaiting: int
    disagreements: int


def review_counts(*, project: AnnotationProject) -> ReviewCounts:
    """Items complete, reviewed, awaiting review, and awaiting with a disagreement."""
    awaiting = Q(status=Item.Status.COMPLETE, reviewed=False)
    counts = Item.objects.filter(project=project).aggregate(
        n_complete=Count("id", filter=Q(status=Item.Status.COMPLETE)),
        n_reviewed=Count("id", filter=Q(reviewed=True)),
        n_awaiting=Count("id", filter=awaiting),
        n_disagreements=Count("id", filter=awaiting & Q(disagreement=True)),
    )
    return ReviewCounts(
        complete=counts["n_complete"],
        reviewed=counts["n_reviewed"],
        awaiting=counts["n_awaiting"],
        disagreements=counts["n_disagreements"],
    )


def review_queryset(*, project: AnnotationProject, mode: str) -> QuerySet[Item]:
    """The items awaiting review in ``mode``'s order (served by the review indexes)."""
    items = Item.objects.filter(project=project, status=Item.Status.COMPLETE, reviewed=False)
    if mode == ReviewMode.DISAGREEMENTS_ONLY:
        items = items.filter(disagreement=True)
    # The orders of services.review: the review indexes' keys, constant flags included.
    if mode == ReviewMode.ALL:
        return items.order_by("reviewed", "id")
    return items.order_by("-disagreement", "id")


@dataclass(frozen=True)
class QueueRow:
    item_id: int
    external_id: str
    preview: str
    annotators: int
    disagreement: bool
    held_by: str


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_after: str


def review_queue(
    *, project: AnnotationProject, mode: str, after: str = "", limit: int = QUEUE_PAGE_SIZE
) -> QueuePage:
    """One page of the queue, keyset-paginated: ``after`` is ``"<0|1>:<item id>"`` (the
    last row's disagreement flag and id), as ``next_after`` gives it; ``ValueError`` for
    another shape."""
    items = review_queryset(project=project, mode=mode)
    if after:
        flag, _, last_id = after.partition(":")
        if flag not in ("0", "1") or not last_id.isdigit():
            raise ValueError(f"after {after!r} is not a page cursor like 1:123")
        if mode == ReviewMode.DISAGREEMENTS_FIRST and flag == "1":
            items = items.filter(Q(disagreement=True, id__gt=last_id) | Q(disagreement=False))
        elif mode == ReviewMode.DISAGREEMENTS_FIRST:
            items = items.filter(disagreement=False, id__gt=last_id)
        else:
            items = items.filter(id__gt=last_id)
    rows = list(
        items.annotate(
            preview=Substr("document__text", 1, PREVIEW_CHARS),
        ).values(
            "id",
            "document__external_id",
            "preview",
            "submitted_count",
            "disagreement",
            "review_leased_by__username",
            "review_leased_until",
        )[: limit + 1]
    )
    now = timezone.now()
    page = [
        QueueRow(
            item_id=row["id"],
            external_id=row["document__external_id"] or "",
            preview=row["preview"] or "",
            annotators=row["submitted_count"],
            disagreement=row["disagreement"],
            held_by=(
                row["review_leased_by__username"] or ""
                if row["review_leased_until"] and row["review_leased_until"] > now
                else ""
            ),
        )
        for row in rows[:limit]
    ]
    last = page[-1] if len(rows) > limit else None
    next_after = f"{int(last.disagreement)}:{last.item_id}" if last else ""
    return QueuePage(rows=page, next_after=next_after)


def review_holder(*, item: Item, user: User) -> str:
    """The name of another reviewer holding a live lease on the item, else ""."""
    if item.review_leased_by_id in (None, user.pk) or item.review_leased_until is None:
        return ""
    if item.review_leased_until <= timezone.now():
        return ""
    holder = User.objects.filter(pk=item.review_leased_by_id).values_list("username", flat=True)
    return holder.first() or ""


@dataclass(frozen=True)
class SpanView:
    start: int
    end: int
    label: str
    text: str
    color: int


@dataclass(frozen=True)
class RatingRow:
    attribute: str
    scores: list[int | None]
    differs: bool


@dataclass
class AnswerCell:
    """One annotator's submitted answer to one question, laid out for reading."""

    number: int
    hotkey: str
    annotation_id: int
    username: str
    values: dict[str, Any]
    summary: str = ""
    spans: list[SpanView] = field(default_factory=list)
    diff: list[tuple[str, str]] | None = None
    is_majority: bool = False

    @property
    def value(self) -> str:
        """The form value that picks this answer."""
        return str(self.annotation_id)


@dataclass
class QuestionReview:
    question: Question
    cells: list[AnswerCell]
    agree: bool | None
    majority_id: int | None
    final: FinalAnswer | None
    final_summary: str
    selected: str
    editor: QuestionView
    rating_rows: list[RatingRow] = field(default_factory=list)
    note: str = ""
    error: str = ""

    @property
    def key(self) -> str:
        return self.question.key


@dataclass(frozen=True)
class ReviewPage:
    item: Item
    project: AnnotationProject
    document: Document
    second_document: Document | None
    questions: list[QuestionReview]


def majority(answers: Mapping[int, dict[str, Any]]) -> int | None:
    """The id of an answer given by more than half of the annotators, if there is one."""
    counts = Counter(answer_canonical(v) for v in answers.values())
    if not counts:
        return None
    top, n = counts.most_common(1)[0]
    if n * 2 <= len(answers):
        return None
    return next(pk for pk, v in answers.items() if answer_canonical(v) == top)


def _spans(values: dict[str, Any], labels: list[str], text: str) -> list[SpanView]:
    return [
        SpanView(
            s["start"],
            s["end"],
            s["label"],
            text[s["start"] : s["end"]],
            labels.index(s["label"]) if s["label"] in labels else 9,
        )
        for s in values.get("spans", [])
    ]


def rewrite_diff(original: str, text: str) -> list[tuple[str, str]] | None:
    """Word-level diff of a rewrite against its original: ("eq"|"del"|"ins", text) runs;
    None when the texts are too long to diff."""
    if len(original) + len(text) > DIFF_MAX_CHARS:
        return None
    a, b = re.findall(r"\s+|\S+", original), re.findall(r"\s+|\S+", text)
    runs: list[tuple[str, str]] = []
    matcher = SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(("eq", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("ins", "".join(b[j1:j2])))
    return runs


def answer_summary(question: Question, values: dict[str, Any]) -> str:
    """A one-line reading of an answer (spans and ratings are laid out apart as well)."""
    kind, config = question.kind, question.config
    if kind == Question.Kind.SINGLE_LABEL:
        return str(values.get("label", ""))
    if kind == Question.Kind.MULTI_LABEL:
        return ", ".join(values.get("labels", [])) or "(no label)"
    if kind == Question.Kind.PAIRWISE:
        for point in kinds.pairwise_scale(config):
            if (point.choice, point.strength) == (values.get("choice"), values.get("strength")):
                return point.label
        return f"{values.get('choice')} {values.get('strength')}"
    if kind == Question.Kind.SPANS:
        spans = values.get("spans", [])
        return f"{len(spans)} span{'s' if len(spans) != 1 else ''}"
    if kind == Question.Kind.RATING:
        return ", ".join(f"{a} {s}" for a, s in values.get("ratings", {}).items())
    text = str(values.get("text", ""))
    return text if len(text) <= 80 else text[:80] + "…"


def _cell(
    question: Question, number: int, pk: int, username: str, values: dict[str, Any], text: str
) -> AnswerCell:
    cell = AnswerCell(
        number=number,
        hotkey=str(number) if number <= KEYED_ANSWERS else "",
        annotation_id=pk,
        username=username,
        values=values,
        summary=answer_summary(question, values),
    )
    if question.kind == Question.Kind.SPANS:
        cell.spans = _spans(values, question.config["labels"], text)
    elif question.kind == Question.Kind.REWRITE and question.config.get("source") == "document":
        cell.diff = rewrite_diff(text, str(values.get("text", "")))
    return cell


def _question_review(
    question: Question,
    rows: list[tuple[int, str, dict[str, Any]]],
    final: FinalAnswer | None,
    text: str,
    posted: Mapping[str, Any],
) -> QuestionReview:
    """One question's answers side by side, the suggested default, and the editor."""
    cells = [_cell(question, n, pk, user, v, text) for n, (pk, user, v) in enumerate(rows, 1)]
    answers = {c.annotation_id: c.values for c in cells}
    majority_id = majority(answers)
    for cell in cells:
        cell.is_majority = majority_id is not None and cell.values == answers[majority_id]
    distinct = {answer_canonical(v) for v in answers.values()}
    if final is not None:
        match = next(
            (c for c in cells if answer_canonical(c.values) == answer_canonical(final.values)), None
        )
        selected = str(match.annotation_id) if match else OWN
        prefill = final.values
    else:
        selected = str(majority_id) if majority_id is not None else ("" if cells else OWN)
        prefill = (
            answers[majority_id] if majority_id is not None else (cells[0].values if cells else {})
        )
    key = question.key
    if "picks" in posted:
        selected = posted["picks"].get(key, "")
        prefill = posted["own"].get(key) or {}
    review = QuestionReview(
        question=question,
        cells=cells,
        agree=None if len(cells) < 2 else len(distinct) == 1,
        majority_id=majority_id,
        final=final,
        final_summary=answer_summary(question, final.values) if final else "",
        selected=selected,
        editor=question_view(question, prefill, text, ""),
        note=posted.get("notes", {}).get(key, final.note if final else ""),
        error=posted.get("errors", {}).get(key, ""),
    )
    if question.kind == Question.Kind.RATING:
        for attribute in question.config["attributes"]:
            scores = [c.values.get("ratings", {}).get(attribute) for c in cells]
            review.rating_rows.append(RatingRow(attribute, scores, len(set(scores)) > 1))
    return review


def review_page(*, item: Item, posted: Mapping[str, Any] | None = None) -> ReviewPage:
    """What the review page shows: the text(s) and, per question, every submitted answer
    (annotator, answer read out for its kind), whether they agree, the majority answer as
    the suggested default (else the final answer already recorded), and the editor for
    the reviewer's own answer.

    ``posted`` (``picks``, ``own``, ``notes``, ``errors`` keyed by question key) shows a
    refused form as it was sent.
    """
    posted = posted or {}
    project = item.project
    document = Document.objects.get(pk=item.document_id)
    second = (
        Document.objects.filter(pk=item.second_document_id).first()
        if item.second_document_id
        else None
    )
    by_question: dict[int, list[tuple[int, str, dict[str, Any]]]] = {}
    annotations = (
        Annotation.objects.filter(item=item, draft=False)
        .order_by("user__username", "id")
        .values_list("question_id", "id", "user__username", "values")
    )
    for question_id, pk, username, values in annotations:
        by_question.setdefault(question_id, []).append((pk, username, values))
    finals = {
        f.question_id: f for f in FinalAnswer.objects.filter(item=item).select_related("reviewer")
    }
    reviews = [
        _question_review(q, by_question.get(q.pk, []), finals.get(q.pk), document.text, posted)
        for q in project.questions.order_by("order", "id")
    ]
    return ReviewPage(
        item=item,
        project=project,
        document=document,
        second_document=second,
        questions=reviews,
    )
