"""Review services and selectors: the queue, reviewer leases, final answers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from annotate.errors import AnnotationInvalidError, ReviewError
from annotate.models import Annotation, AnnotationProject, FinalAnswer, Item, ProjectMember
from annotate.review_selectors import (
    majority,
    review_counts,
    review_page,
    review_queue,
    rewrite_diff,
)
from annotate.services.annotations import annotation_submit
from annotate.services.assignments import assignment_next
from annotate.services.items import items_status_recompute
from annotate.services.review import (
    Decision,
    ReviewMode,
    final_answer_record,
    review_next,
    review_submit,
)
from tests.annotate.factories import make_project, member

pytestmark = pytest.mark.django_db

GOOD, BAD = {"label": "good"}, {"label": "bad"}


def annotate_items(project: AnnotationProject, user: User, labels: list[dict[str, Any]]) -> None:
    """``user`` submits one answer per item, in the order the queue hands items out."""
    for values in labels:
        assignment = assignment_next(project=project, user=user)
        assert assignment is not None
        annotation_submit(assignment=assignment, values={"quality": values}, time_spent_ms=10)


@pytest.fixture
def project() -> AnnotationProject:
    """Five items, k = 2: items 1, 3 agree, 2 and 4 disagree, 5 has one answer only."""
    project = make_project(k=2)
    ann, bob = member(project, "ann"), member(project, "bob")
    annotate_items(project, ann, [GOOD, GOOD, BAD, GOOD, GOOD])
    annotate_items(project, bob, [GOOD, BAD, BAD, BAD])
    return project


def _items(project: AnnotationProject) -> list[Item]:
    return list(Item.objects.filter(project=project).order_by("id"))


def _reviewer(project: AnnotationProject, name: str = "rev") -> User:
    return member(project, name, ProjectMember.Role.REVIEWER)


def test_disagreement_is_recomputed_from_submitted_answers(project: AnnotationProject) -> None:
    items = _items(project)
    assert [i.status for i in items] == ["complete"] * 4 + ["partial"]
    assert [i.disagreement for i in items] == [False, True, False, True, False]


def test_queue_orders_by_item_or_disagreements_first_or_only(project: AnnotationProject) -> None:
    ids = [i.pk for i in _items(project)]
    listed = {
        mode: [r.item_id for r in review_queue(project=project, mode=mode).rows]
        for mode in ReviewMode.values
    }
    assert listed[ReviewMode.ALL] == ids[:4]  # the partial item waits for its k answers
    assert listed[ReviewMode.DISAGREEMENTS_FIRST] == [ids[1], ids[3], ids[0], ids[2]]
    assert listed[ReviewMode.DISAGREEMENTS_ONLY] == [ids[1], ids[3]]
    page = review_queue(project=project, mode=ReviewMode.DISAGREEMENTS_FIRST, limit=3)
    assert page.next_after == f"0:{ids[0]}"
    rest = review_queue(project=project, mode=ReviewMode.DISAGREEMENTS_FIRST, after=page.next_after)
    assert [r.item_id for r in rest.rows] == [ids[2]] and rest.next_after == ""
    second = review_queue(project=project, mode=ReviewMode.DISAGREEMENTS_FIRST, after=f"1:{ids[1]}")
    assert [r.item_id for r in second.rows] == [ids[3], ids[0], ids[2]]
    with pytest.raises(ValueError, match="page cursor"):
        review_queue(project=project, mode=ReviewMode.ALL, after="x")


def test_review_next_leases_distinct_items_and_resumes_ones_own(
    project: AnnotationProject,
) -> None:
    ids = [i.pk for i in _items(project)]
    first, second, third = (_reviewer(project, n) for n in ("r1", "r2", "r3"))
    got = review_next(project=project, user=first, mode=ReviewMode.DISAGREEMENTS_FIRST)
    assert got is not None and got.pk == ids[1] and got.review_leased_by_id == first.pk
    again = review_next(project=project, user=first, mode=ReviewMode.ALL)
    assert again is not None and again.pk == ids[1]  # a reload keeps one's own item
    other = review_next(project=project, user=second, mode=ReviewMode.DISAGREEMENTS_ONLY)
    assert other is not None and other.pk == ids[3]
    assert review_next(project=project, user=third, mode=ReviewMode.DISAGREEMENTS_ONLY) is None
    # A lease that ran out returns the item to the pool.
    Item.objects.filter(pk=ids[1]).update(review_leased_until=timezone.now() - timedelta(1))
    freed = review_next(project=project, user=third, mode=ReviewMode.DISAGREEMENTS_ONLY)
    assert freed is not None and freed.pk == ids[1]
    with pytest.raises(ReviewError, match="mode 'worst'"):
        review_next(project=project, user=third, mode="worst")


@pytest.mark.django_db(transaction=True)
def test_reviewers_asking_at_once_never_get_the_same_item() -> None:
    """One reviewer's transaction holds its new lease uncommitted while others ask."""
    project = make_project(k=1, texts=[f"text {i}" for i in range(6)])
    annotate_items(project, member(project, "ann"), [GOOD] * 6)
    reviewers = [_reviewer(project, f"r{n}") for n in range(5)]
    taken: dict[str, int | None] = {}
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_first() -> None:
        try:
            with transaction.atomic():
                item = review_next(project=project, user=reviewers[0], mode=ReviewMode.ALL)
                taken[reviewers[0].username] = item.pk if item else None
                holding.set()
                release.wait(60)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
            holding.set()
        finally:
            connection.close()

    def ask(user: User) -> None:
        try:
            item = review_next(project=project, user=user, mode=ReviewMode.ALL)
            taken[user.username] = item.pk if item else None
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert holding.wait(20)
    askers = [threading.Thread(target=ask, args=(u,)) for u in reviewers[1:]]
    for thread in askers:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        for thread in askers:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Nobody waited for the held row: it was skipped, not queued behind.
        assert not any(thread.is_alive() for thread in askers)
    finally:
        release.set()
        holder.join(20)
        for thread in askers:
            thread.join(20)
    assert errors == []
    got = [taken[u.username] for u in reviewers]
    assert None not in got and len(set(got)) == len(reviewers)
    assert taken["r0"] == _items(project)[0].pk
    leased = Item.objects.filter(project=project, review_leased_by__isnull=False)
    assert leased.count() == len(reviewers)


def test_decisions_are_upserts_with_the_source_from_the_facts(project: AnnotationProject) -> None:
    agree_item, split_item = _items(project)[:2]
    quality = project.questions.get()
    rev = _reviewer(project)
    raw_before = list(Annotation.objects.order_by("id").values_list("id", "values", "updated_at"))

    taken = Annotation.objects.filter(item=agree_item).first()
    answer = final_answer_record(item=agree_item, question=quality, reviewer=rev, annotation=taken)
    assert (answer.values, answer.source) == (GOOD, FinalAnswer.Source.ACCEPTED)
    corrected = final_answer_record(
        item=agree_item, question=quality, reviewer=rev, values=BAD, note=" typo "
    )
    assert (corrected.values, corrected.source, corrected.note) == (BAD, "corrected", "typo")
    assert FinalAnswer.objects.filter(item=agree_item).count() == 1
    assert FinalAnswer.objects.get(item=agree_item).values == BAD

    bad_one = Annotation.objects.get(item=split_item, values=BAD)
    (adjudicated,) = review_submit(
        item=split_item, reviewer=rev, decisions={"quality": Decision(annotation_id=bad_one.pk)}
    )
    assert (adjudicated.values, adjudicated.source) == (BAD, FinalAnswer.Source.ADJUDICATED)
    (own,) = review_submit(
        item=split_item, reviewer=rev, decisions={"quality": Decision(values={"label": "good"})}
    )
    assert own.source == FinalAnswer.Source.ADJUDICATED
    assert FinalAnswer.objects.count() == 2
    raw_after = list(Annotation.objects.order_by("id").values_list("id", "values", "updated_at"))
    assert raw_after == raw_before  # raw annotations are never touched


def test_invalid_decisions_name_the_question_and_write_nothing(project: AnnotationProject) -> None:
    first, second = _items(project)[:2]
    rev = _reviewer(project)
    other_items_answer = Annotation.objects.filter(item=second).first()
    assert other_items_answer is not None
    cases = [
        ({"quality": Decision(values={"label": "meh"})}, "your answer: label 'meh' is not one of"),
        ({"quality": Decision(annotation_id=other_items_answer.pk)}, "is not a submitted answer"),
        ({}, "no decision: take one annotator's answer or enter your own"),
        ({"quality": Decision()}, "no decision"),
    ]
    for decisions, message in cases:
        with pytest.raises(AnnotationInvalidError) as caught:
            review_submit(item=first, reviewer=rev, decisions=decisions)
        assert message in caught.value.errors["quality"]
    with pytest.raises(AnnotationInvalidError) as caught:
        review_submit(
            item=first,
            reviewer=rev,
            decisions={"quality": Decision(values=GOOD), "nope": Decision(values=GOOD)},
        )
    assert caught.value.errors == {"nope": "there is no question 'nope' in this project"}
    assert not FinalAnswer.objects.exists()


def test_a_reviewed_item_leaves_the_queue_and_its_lease_ends(project: AnnotationProject) -> None:
    rev = _reviewer(project)
    item = review_next(project=project, user=rev, mode=ReviewMode.ALL)
    assert item is not None
    before = review_counts(project=project)
    assert (before.complete, before.reviewed, before.awaiting, before.disagreements) == (4, 0, 4, 2)
    review_submit(item=item, reviewer=rev, decisions={"quality": Decision(values=GOOD)})
    item.refresh_from_db()
    assert item.reviewed and item.review_leased_by_id is None and item.review_leased_until is None
    after = review_counts(project=project)
    assert (after.reviewed, after.awaiting) == (1, 3)
    assert item.pk not in [r.item_id for r in review_queue(project=project, mode="all").rows]
    following = review_next(project=project, user=rev, mode=ReviewMode.ALL)
    assert following is not None and following.pk != item.pk


def test_an_answer_changed_after_review_sends_the_item_back_to_the_queue(
    project: AnnotationProject,
) -> None:
    from annotate.services.assignments import assignment_reopen_last

    rev = _reviewer(project)
    fourth = _items(project)[3]  # ann GOOD, bob BAD: bob's last submitted item
    review_submit(item=fourth, reviewer=rev, decisions={"quality": Decision(values=GOOD)})
    fourth.refresh_from_db()
    assert fourth.reviewed

    bob = User.objects.get(username="bob")
    again = assignment_reopen_last(project=project, user=bob)
    assert again is not None and again.item_id == fourth.pk
    annotation_submit(assignment=again, values={"quality": GOOD}, time_spent_ms=5)
    fourth.refresh_from_db()
    assert fourth.status == "complete" and not fourth.reviewed and not fourth.disagreement
    # The old decision stays until a reviewer decides again.
    assert FinalAnswer.objects.filter(item=fourth).count() == 1
    assert fourth.pk in [r.item_id for r in review_queue(project=project, mode="all").rows]

    review_submit(item=fourth, reviewer=rev, decisions={"quality": Decision(values=GOOD)})
    fourth.refresh_from_db()
    assert fourth.reviewed
    # Recomputing without a new answer leaves a reviewed item reviewed.
    items_status_recompute(project=project)
    fourth.refresh_from_db()
    assert fourth.reviewed


def test_every_question_needs_a_final_answer_before_the_item_is_reviewed() -> None:
    questions = [
        {"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}},
        {"key": "topics", "kind": "multi_label", "config": {"labels": ["news", "code"]}},
    ]
    project = make_project(questions=questions, texts=["one text"])
    ann = member(project, "ann")
    assignment = assignment_next(project=project, user=ann)
    assert assignment is not None
    annotation_submit(
        assignment=assignment,
        values={"quality": GOOD, "topics": {"labels": ["code"]}},
        time_spent_ms=5,
    )
    item, rev = Item.objects.get(project=project), _reviewer(project)
    taken = Annotation.objects.get(item=item, question__key="quality")
    final_answer_record(
        item=item, question=project.questions.get(key="quality"), reviewer=rev, annotation=taken
    )
    item.refresh_from_db()
    assert not item.reviewed
    with pytest.raises(AnnotationInvalidError, match="labels repeats a label"):
        final_answer_record(
            item=item,
            question=project.questions.get(key="topics"),
            reviewer=rev,
            values={"labels": ["news", "news"]},
        )
    answer = final_answer_record(
        item=item,
        question=project.questions.get(key="topics"),
        reviewer=rev,
        values={"labels": ["code", "news"]},
    )
    assert answer.values == {"labels": ["news", "code"]}  # normalized by the validator
    item.refresh_from_db()
    assert item.reviewed


def test_the_majority_answer_is_the_suggested_default() -> None:
    assert majority({1: GOOD, 2: GOOD, 3: BAD}) == 1
    assert majority({1: BAD, 2: GOOD, 3: GOOD}) == 2
    assert majority({1: GOOD, 2: BAD}) is None
    assert majority({1: {"ratings": {"a": 1, "b": 2}}, 2: {"ratings": {"b": 2, "a": 1}}}) == 1
    assert majority({}) is None


def test_review_page_lays_out_answers_side_by_side(project: AnnotationProject) -> None:
    agree_item, split_item = _items(project)[:2]
    split = review_page(item=split_item).questions[0]
    assert [c.username for c in split.cells] == ["ann", "bob"]
    assert [c.summary for c in split.cells] == ["good", "bad"]
    assert split.agree is False and split.majority_id is None and split.selected == ""
    agreed = review_page(item=agree_item).questions[0]
    assert agreed.agree is True and agreed.selected == str(agreed.cells[0].annotation_id)
    assert all(c.is_majority for c in agreed.cells)
    final_answer_record(
        item=split_item, question=project.questions.get(), reviewer=_reviewer(project), values=BAD
    )
    decided = review_page(item=split_item).questions[0]
    assert decided.final is not None and decided.final_summary == "bad"
    assert decided.selected == str(decided.cells[1].annotation_id)


def test_rewrite_diff_marks_deleted_and_inserted_words() -> None:
    assert rewrite_diff("the cat sat", "the dog sat") == [
        ("eq", "the "),
        ("del", "cat"),
        ("ins", "dog"),
        ("eq", " sat"),
    ]
    assert rewrite_diff("x" * 20_000, "y") is None
