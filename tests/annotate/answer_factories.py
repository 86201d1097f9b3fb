"""Final answers and submitted annotations for the tests of what answers become."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from annotate.models import AnnotationProject, FinalAnswer, Item
from annotate.services.annotations import annotation_submit
from annotate.services.assignments import assignment_next


def items_by_document(project: AnnotationProject) -> list[Item]:
    """The project's items in document order (then second document)."""
    return list(project.items.order_by("document_id", "second_document_id"))


def final_answer(
    item: Item,
    key: str,
    values: dict[str, Any],
    *,
    source: str = FinalAnswer.Source.ACCEPTED,
    reviewer: User | None = None,
) -> FinalAnswer:
    """Set the final answer to question ``key`` of ``item`` (replacing an earlier one)."""
    answer, _ = FinalAnswer.objects.update_or_create(
        item=item,
        question=item.project.questions.get(key=key),
        defaults={
            "project": item.project,
            "values": values,
            "source": source,
            "reviewer": reviewer,
        },
    )
    return answer


def submit_next(project: AnnotationProject, user: User, values: dict[str, Any]) -> Item:
    """The user takes the next item of the queue and submits ``values``; returns the item."""
    assignment = assignment_next(project=project, user=user)
    assert assignment is not None, f"no item left for {user}"
    annotation_submit(assignment=assignment, values=values, time_spent_ms=1500)
    return assignment.item
