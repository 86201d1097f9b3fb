from __future__ import annotations

import pytest

from annotate.errors import AnnotationInvalidError, AssignmentClosedError
from annotate.models import Annotation, Assignment, Item
from annotate.services.annotations import annotation_save_draft, annotation_submit
from annotate.services.assignments import assignment_next
from annotate.services.items import items_add_pairs, items_status_recompute
from curation.models import Document
from tests.annotate.factories import ALL_KINDS, all_answers, make_project, member

pytestmark = pytest.mark.django_db

TEXT = "😀 Alice met Bob in New York."


def _pair_assignment() -> Assignment:
    project = make_project(texts=[TEXT, "Other text"], questions=ALL_KINDS, add_items=False)
    a, b = (
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    items_add_pairs(project=project, pairs=[(a, b)])
    assignment = assignment_next(project=project, user=member(project, "ann"))
    assert assignment is not None
    return assignment


def test_submit_stores_all_six_kinds_and_completes_the_item() -> None:
    assignment = _pair_assignment()
    annotation_submit(
        assignment=assignment, values=all_answers(text_length=len(TEXT)), time_spent_ms=4321
    )
    stored = {
        a.question.key: a.values
        for a in Annotation.objects.select_related("question").filter(draft=False)
    }
    assert stored == all_answers(text_length=len(TEXT))
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED and assignment.time_spent_ms == 4321
    assert assignment.finished_at is not None
    item = Item.objects.get()
    assert (item.status, item.submitted_count) == (Item.Status.COMPLETE, 1)


def test_submit_errors_name_each_question_and_field_and_store_nothing() -> None:
    assignment = _pair_assignment()
    values = all_answers(text_length=len(TEXT))
    values["entities"] = {"spans": [{"start": 2, "end": 99, "label": "PER"}]}
    values["helpsteer"] = {"ratings": {"helpfulness": 9}}
    del values["rewrite"]
    values["nonsense"] = {"label": "x"}
    with pytest.raises(AnnotationInvalidError) as info:
        annotation_submit(assignment=assignment, values=values, time_spent_ms=1)
    errors = info.value.errors
    assert set(errors) == {"entities", "helpsteer", "rewrite", "nonsense"}
    assert "<= 28 (the text's length)" in errors["entities"]  # code points, not UTF-16
    assert "helpfulness: score 9" in errors["helpsteer"]
    assert errors["rewrite"] == "no answer given"
    assert not Annotation.objects.exists()
    assert Assignment.objects.get().state == Assignment.State.LEASED


def test_span_offsets_count_characters_not_bytes_or_utf16_units() -> None:
    assignment = _pair_assignment()
    values = all_answers(text_length=len(TEXT))
    values["entities"] = {"spans": [{"start": len(TEXT) - 9, "end": len(TEXT), "label": "LOC"}]}
    annotation_submit(assignment=assignment, values=values, time_spent_ms=1)
    span = Annotation.objects.get(question__key="entities").values["spans"][0]
    assert TEXT[span["start"] : span["end"]] == "New York."


def test_drafts_keep_partial_answers_refuse_wrong_ones_and_follow_the_page() -> None:
    assignment = _pair_assignment()
    annotation_save_draft(
        assignment=assignment,
        values={"quality": {"label": "good"}, "helpsteer": {"ratings": {"coherence": 3}}},
        time_spent_ms=700,
    )
    drafts = dict(Annotation.objects.filter(draft=True).values_list("question__key", "values"))
    assert drafts == {"quality": {"label": "good"}, "helpsteer": {"ratings": {"coherence": 3}}}
    with pytest.raises(AnnotationInvalidError, match="quality: label 'meh'"):
        annotation_save_draft(assignment=assignment, values={"quality": {"label": "meh"}})
    # The annotator took the label back: the draft follows.
    annotation_save_draft(
        assignment=assignment, values={"helpsteer": {"ratings": {"coherence": 2}}}
    )
    assert list(Annotation.objects.values_list("question__key", flat=True)) == ["helpsteer"]
    assert Assignment.objects.get().time_spent_ms == 700  # never goes down
    assert Item.objects.get().status == Item.Status.PENDING


def test_a_submitted_assignment_cannot_be_submitted_or_drafted_again() -> None:
    assignment = _pair_assignment()
    values = all_answers(text_length=len(TEXT))
    annotation_submit(assignment=assignment, values=values, time_spent_ms=1)
    with pytest.raises(AssignmentClosedError, match="submitted"):
        annotation_submit(assignment=assignment, values=values, time_spent_ms=1)
    with pytest.raises(AssignmentClosedError):
        annotation_save_draft(assignment=assignment, values=values)
    assert Annotation.objects.filter(draft=False).count() == 6


def test_status_is_recomputed_from_submitted_annotations() -> None:
    project = make_project(texts=["a"], k=2)
    ann, bob = member(project, "ann"), member(project, "bob")
    for user, expected in ((ann, Item.Status.PARTIAL), (bob, Item.Status.COMPLETE)):
        a = assignment_next(project=project, user=user)
        assert a is not None
        annotation_submit(assignment=a, values={"quality": {"label": "bad"}}, time_spent_ms=1)
        assert Item.objects.get().status == expected
    # A wrong stored status (say, from a bug or a manual edit) is repaired from the facts.
    Item.objects.update(status=Item.Status.PENDING, submitted_count=0)
    assert items_status_recompute(project=project) == 1
    assert Item.objects.get().submitted_count == 2
    assert items_status_recompute(project=project) == 0
