"""Answers: drafts autosaved while the annotator works, then one submission per item."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest, Length, Now

from annotate import questions as kinds
from annotate.errors import AnnotationInvalidError, AssignmentClosedError
from annotate.models import Annotation, Assignment, Question
from annotate.services.assignments import time_spent_clamp
from annotate.services.items import item_lock, item_status_recompute
from curation.models import Document


def document_text_length(document_id: int) -> int:
    """The document's length in characters (span offsets are checked against it)."""
    length = (
        Document.objects.filter(pk=document_id)
        .annotate(n=Length("text"))
        .values_list("n", flat=True)
        .first()
    )
    return length or 0


def annotation_values_clean(
    *,
    questions: list[Question],
    values: dict[str, Any],
    text_length: int,
    partial: bool = False,
) -> dict[str, dict[str, Any]]:
    """Check answers keyed by question key against their questions; returns them cleaned.

    Raises ``AnnotationInvalidError`` with one message per offending question key. With
    ``partial`` (drafts), unanswered questions are left out instead of refused.
    """
    errors: dict[str, str] = {}
    known = {q.key for q in questions}
    for key in values:
        if key not in known:
            errors[key] = f"there is no question {key!r} in this project"
    cleaned: dict[str, dict[str, Any]] = {}
    for question in questions:
        try:
            answer = kinds.values_clean(
                question.kind,
                question.config,
                values.get(question.key),
                text_length=text_length,
                partial=partial,
            )
        except ValueError as exc:
            errors[question.key] = str(exc)
            continue
        if answer is not None:
            cleaned[question.key] = answer
    if errors:
        raise AnnotationInvalidError(errors)
    return cleaned


def _open_assignment(assignment: Assignment) -> Assignment:
    locked = Assignment.objects.select_for_update().select_related("item").get(pk=assignment.pk)
    if locked.state != Assignment.State.LEASED:
        raise AssignmentClosedError(
            f"this item was {locked.get_state_display().lower()}; take the next item"
        )
    return locked


def _write(
    assignment: Assignment,
    questions: list[Question],
    cleaned: dict[str, dict[str, Any]],
    *,
    draft: bool,
) -> list[Annotation]:
    by_key = {q.key: q for q in questions}
    return Annotation.objects.bulk_create(
        [
            Annotation(
                item_id=assignment.item_id,
                user_id=assignment.user_id,
                question=by_key[key],
                values=answer,
                draft=draft,
            )
            for key, answer in cleaned.items()
        ],
        update_conflicts=True,
        unique_fields=["item", "user", "question"],
        update_fields=["values", "draft", "updated_at"],
    )


def _questions_and_length(assignment: Assignment) -> tuple[list[Question], int]:
    questions = list(Question.objects.filter(project_id=assignment.project_id))
    needs_length = any(q.kind == Question.Kind.SPANS for q in questions)
    length = document_text_length(assignment.item.document_id) if needs_length else 0
    return questions, length


@transaction.atomic
def annotation_save_draft(
    *, assignment: Assignment, values: dict[str, Any], time_spent_ms: int = 0
) -> list[Annotation]:
    """Autosave what the annotator has so far; incomplete answers are kept, wrong ones refused."""
    locked = _open_assignment(assignment)
    questions, length = _questions_and_length(locked)
    cleaned = annotation_values_clean(
        questions=questions, values=values, text_length=length, partial=True
    )
    Assignment.objects.filter(pk=locked.pk).update(
        time_spent_ms=Greatest(F("time_spent_ms"), time_spent_clamp(time_spent_ms))
    )
    # A draft mirrors the page: an answer taken back there is taken back here.
    Annotation.objects.filter(item_id=locked.item_id, user_id=locked.user_id, draft=True).exclude(
        question__key__in=list(cleaned)
    ).delete()
    return _write(locked, questions, cleaned, draft=True)


@transaction.atomic
def annotation_submit(
    *, assignment: Assignment, values: dict[str, Any], time_spent_ms: int
) -> list[Annotation]:
    """Submit the answers to every question of the item; the item's status is recomputed.

    1. The item is locked, then the assignment; it must still be leased (a lease past
       its end is fine as long as nobody else took the item).
    2. Every question must have a valid answer; errors name each question key.
    3. The answers are written (drafts become submitted), the assignment is marked
       submitted with the time spent, and the item's count and status are recomputed
       from its submitted annotations.
    """
    item_lock(item_id=assignment.item_id)
    locked = _open_assignment(assignment)
    questions, length = _questions_and_length(locked)
    cleaned = annotation_values_clean(questions=questions, values=values, text_length=length)
    annotations = _write(locked, questions, cleaned, draft=False)
    Assignment.objects.filter(pk=locked.pk).update(
        state=Assignment.State.SUBMITTED,
        finished_at=Now(),
        time_spent_ms=Greatest(F("time_spent_ms"), time_spent_clamp(time_spent_ms)),
    )
    item_status_recompute(item_id=locked.item_id)
    assignment.refresh_from_db()
    return annotations
