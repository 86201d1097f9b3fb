"""Review: the queue of annotated items awaiting final answers, reviewer leases, decisions.

An item awaits review when it is complete (``k`` annotators submitted) and some question
has no ``FinalAnswer`` yet; ``Item.reviewed`` says so, recomputed from the final answers
after every decision, and ``Item.disagreement`` (recomputed with the item's status) says
whether the annotators' submitted answers differ on some question. Two partial indexes
over the unreviewed complete items serve the queue in item order and disagreements first.

A reviewer takes the next item under a lease (``review_leased_by`` until
``review_leased_until``) with ``FOR UPDATE SKIP LOCKED``, as annotators take theirs, so
reviewers asking at once get different items. Decisions are written as upserts keyed by
(item, question): deciding again replaces the final answer. Raw ``Annotation`` rows are
never changed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.db import connection, models, transaction

from annotate import questions as kinds
from annotate.errors import AnnotationInvalidError, ReviewError
from annotate.models import Annotation, AnnotationProject, FinalAnswer, Item, Question
from annotate.services.annotations import document_text_length
from annotate.services.items import item_lock

logger = logging.getLogger(__name__)


class ReviewMode(models.TextChoices):
    """The order of the review queue."""

    ALL = "all", "Every item, oldest first"
    DISAGREEMENTS_FIRST = "first", "Disagreements first"
    DISAGREEMENTS_ONLY = "only", "Disagreements only"


# Each order is the key of one of the partial indexes item_review_idx and
# item_review_disagree_idx, constant flags included: ordered so, no other index (the
# primary key above all) can give the order, and LIMIT 1 reads one index entry.
_ORDER = {
    ReviewMode.ALL: "i.reviewed, i.id",
    ReviewMode.DISAGREEMENTS_FIRST: "i.disagreement DESC, i.id",
    ReviewMode.DISAGREEMENTS_ONLY: "i.disagreement DESC, i.id",
}

_LEASE = "review_leased_until = now() + make_interval(secs => %(lease)s)"

# Renew the reviewer's own live lease on an item still awaiting review, if any.
_RESUME = f"""
UPDATE annotate_item SET {_LEASE}
WHERE id = (SELECT id FROM annotate_item
            WHERE review_leased_by_id = %(user)s AND project_id = %(project)s
              AND status = 'complete' AND NOT reviewed AND review_leased_until > now()
            ORDER BY review_leased_until DESC, id DESC LIMIT 1)
  AND review_leased_by_id = %(user)s
RETURNING id
"""

# The first unreviewed complete item nobody holds. Every condition is on the item row
# itself, so when the row lock is granted PostgreSQL re-checks them on the newest
# version (READ COMMITTED): a lease committed meanwhile makes it move on to the next.
_CLAIM = f"""
UPDATE annotate_item SET review_leased_by_id = %(user)s, {_LEASE}
WHERE id = (SELECT i.id FROM annotate_item i
            WHERE i.project_id = %(project)s AND i.status = 'complete' AND NOT i.reviewed
              {{only}}
              AND (i.review_leased_until IS NULL OR i.review_leased_until <= now())
            ORDER BY {{order}} LIMIT 1
            FOR UPDATE OF i SKIP LOCKED)
RETURNING id
"""

# Open by link: take the lease unless another reviewer holds a live one.
_OPEN = f"""
UPDATE annotate_item SET review_leased_by_id = %(user)s, {_LEASE}
WHERE id = %(item)s
  AND (review_leased_until IS NULL OR review_leased_until <= now()
       OR review_leased_by_id = %(user)s)
"""

# An item is reviewed once every question of its project has a final answer; the lease
# ends with it.
_REVIEWED = """
UPDATE annotate_item i SET reviewed = r.done,
       review_leased_by_id = CASE WHEN r.done THEN NULL ELSE i.review_leased_by_id END,
       review_leased_until = CASE WHEN r.done THEN NULL ELSE i.review_leased_until END
FROM (SELECT (SELECT count(*) FROM annotate_finalanswer f WHERE f.item_id = %(item)s)
             >= (SELECT count(*) FROM annotate_question q WHERE q.project_id = %(project)s)
             AS done) r
WHERE i.id = %(item)s
RETURNING i.reviewed
"""


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision on one question: take a submitted annotation, or own values."""

    annotation_id: int | None = None
    values: dict[str, Any] | None = None
    note: str = ""


def _params(project: AnnotationProject, user: User) -> dict[str, Any]:
    return {"project": project.pk, "user": user.pk, "lease": float(project.lease_seconds)}


@transaction.atomic
def review_next(
    *, project: AnnotationProject, user: User, mode: str = ReviewMode.DISAGREEMENTS_FIRST
) -> Item | None:
    """Lease the next item awaiting review to ``user``; None when none is left for them.

    1. A live lease of theirs on an item still awaiting review is renewed and returned
       (a reload, or an item they opened from the queue page).
    2. Else the first unreviewed complete item in ``mode``'s order that nobody holds is
       locked, skipping rows other transactions hold, and leased to them for the
       project's ``lease_seconds``.
    """
    if mode not in ReviewMode.values:
        raise ReviewError(f"mode {mode!r} is not one of {', '.join(ReviewMode.values)}")
    params = _params(project, user)
    only = "AND i.disagreement" if mode == ReviewMode.DISAGREEMENTS_ONLY else ""
    with connection.cursor() as cursor:
        cursor.execute(_RESUME, params)
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_CLAIM.format(only=only, order=_ORDER[ReviewMode(mode)]), params)
            row = cursor.fetchone()
    if row is None:
        return None
    return Item.objects.get(pk=row[0])


@transaction.atomic
def review_item_open(*, item: Item, user: User) -> Item:
    """Take the review lease on ``item`` opened by link, unless another reviewer holds it.

    Returns the item as it is now: ``review_leased_by_id`` tells who holds it.
    """
    params = _params(item.project, user) | {"item": item.pk}
    with connection.cursor() as cursor:
        cursor.execute(_OPEN, params)
    item.refresh_from_db()
    return item


def _submitted(item: Item, questions: list[Question]) -> dict[int, dict[int, dict[str, Any]]]:
    """question id -> annotation id -> values, for the item's submitted answers."""
    answers: dict[int, dict[int, dict[str, Any]]] = {q.pk: {} for q in questions}
    rows = Annotation.objects.filter(item=item, question__in=questions, draft=False).values_list(
        "question_id", "id", "values"
    )
    for question_id, annotation_id, values in rows:
        answers[question_id][annotation_id] = values
    return answers


def _decide(
    question: Question,
    answers: dict[int, dict[str, Any]],
    decision: Decision,
    text_length: int,
) -> tuple[dict[str, Any], str]:
    """The final values and their source; ``ValueError`` says what is wrong.

    The source follows from the facts: adjudicated when the annotators' answers differ,
    accepted when the final answer is the one they all gave, corrected otherwise.
    """
    if (decision.annotation_id is None) == (decision.values is None):
        raise ValueError("no decision: take one annotator's answer or enter your own")
    if decision.annotation_id is not None:
        if decision.annotation_id not in answers:
            raise ValueError(
                f"annotation {decision.annotation_id} is not a submitted answer to this "
                "question on this item; reload the page"
            )
        values = answers[decision.annotation_id]
    else:
        try:
            cleaned = kinds.values_clean(
                question.kind, question.config, decision.values, text_length=text_length
            )
        except ValueError as exc:
            raise ValueError(f"your answer: {exc}") from exc
        assert cleaned is not None  # values_clean returns None only for partial answers
        values = cleaned
    distinct = {answer_canonical(v) for v in answers.values()}
    if len(distinct) > 1:
        source = FinalAnswer.Source.ADJUDICATED
    elif distinct == {answer_canonical(values)}:
        source = FinalAnswer.Source.ACCEPTED
    else:
        source = FinalAnswer.Source.CORRECTED
    return values, source


def answer_canonical(values: Any) -> str:
    """An answer as a string that is equal exactly when the answers are equal."""
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def _reviewed_recompute(item: Item) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_REVIEWED, {"item": item.pk, "project": item.project_id})
        (reviewed,) = cursor.fetchone()
    item.refresh_from_db()
    return bool(reviewed)


@transaction.atomic
def review_submit(
    *,
    item: Item,
    reviewer: User,
    decisions: Mapping[str, Decision],
    require_all: bool = True,
) -> list[FinalAnswer]:
    """Record the reviewer's decisions on an item, keyed by question key.

    1. The item row is locked (annotators' submissions to it wait, and so do other
       reviewers' decisions on it).
    2. Each decision takes a submitted annotation of the item, or the reviewer's own
       values, checked with the question kind's validator. With ``require_all`` every
       question needs one. ``AnnotationInvalidError`` names each offending question key.
    3. The final answers are upserted by (item, question): a question decided again gets
       its answer replaced. The item is marked reviewed once every question has one, and
       its review lease ends then.
    """
    item_lock(item_id=item.pk)
    questions = list(Question.objects.filter(project_id=item.project_id).order_by("order", "id"))
    by_key = {q.key: q for q in questions}
    errors = {
        key: f"there is no question {key!r} in this project"
        for key in decisions
        if key not in by_key
    }
    answers = _submitted(item, questions)
    needs_length = any(
        by_key[key].kind == Question.Kind.SPANS and decision.values is not None
        for key, decision in decisions.items()
        if key in by_key
    )
    length = document_text_length(item.document_id) if needs_length else 0
    rows: list[FinalAnswer] = []
    for question in questions:
        decision = decisions.get(question.key)
        if decision is None:
            if require_all:
                errors[question.key] = "no decision: take one annotator's answer or enter your own"
            continue
        try:
            values, source = _decide(question, answers[question.pk], decision, length)
        except ValueError as exc:
            errors[question.key] = str(exc)
            continue
        rows.append(
            FinalAnswer(
                project_id=item.project_id,
                item=item,
                question=question,
                values=values,
                source=source,
                reviewer=reviewer,
                note=decision.note.strip(),
            )
        )
    if errors:
        raise AnnotationInvalidError(errors)
    written = FinalAnswer.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["item", "question"],
        update_fields=["values", "source", "reviewer", "note", "decided_at"],
    )
    reviewed = _reviewed_recompute(item)
    logger.info(
        "item %s: %d final answer(s) by %s; reviewed=%s", item.pk, len(written), reviewer, reviewed
    )
    return written


def final_answer_record(
    *,
    item: Item,
    question: Question,
    reviewer: User,
    annotation: Annotation | None = None,
    values: dict[str, Any] | None = None,
    note: str = "",
) -> FinalAnswer:
    """Decide one question of an item: accept or pick ``annotation``, or set ``values``.

    The same rules as ``review_submit`` (one question; the others are left as they are).
    """
    if question.project_id != item.project_id:
        raise ReviewError(f"question {question.key!r} belongs to another project")
    decision = Decision(
        annotation_id=annotation.pk if annotation is not None else None, values=values, note=note
    )
    (answer,) = review_submit(
        item=item, reviewer=reviewer, decisions={question.key: decision}, require_all=False
    )
    return answer
