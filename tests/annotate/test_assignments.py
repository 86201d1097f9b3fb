"""The queue: leases, k overlap, expiry, skip, back, and no double assignment under load."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate.errors import AssignmentClosedError
from annotate.models import Annotation, AnnotationProject, Assignment, Item
from annotate.services.annotations import annotation_save_draft, annotation_submit
from annotate.services.assignments import (
    assignment_next,
    assignment_reopen_last,
    assignment_skip,
)
from tests.annotate.factories import make_project, member

GOOD = {"quality": {"label": "good"}}


def _expire(assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk).update(
        leased_until=timezone.now() - timedelta(hours=1)
    )


@pytest.mark.django_db
def test_next_leases_items_in_order_and_a_reload_resumes_the_same_lease() -> None:
    project = make_project(lease_seconds=600)
    ann = member(project, "ann")
    first = assignment_next(project=project, user=ann)
    assert first is not None and first.state == Assignment.State.LEASED
    assert (
        first.item.document_id == Item.objects.filter(project=project).order_by("id")[0].document_id
    )
    assert first.leased_until > timezone.now() + timedelta(seconds=500)
    again = assignment_next(project=project, user=ann)
    assert again is not None and again.pk == first.pk
    assert Assignment.objects.count() == 1


@pytest.mark.django_db
def test_with_k_1_a_leased_item_goes_to_nobody_else_until_its_lease_expires() -> None:
    project = make_project(texts=["only"])
    ann, bob = member(project, "ann"), member(project, "bob")
    mine = assignment_next(project=project, user=ann)
    assert mine is not None
    assert assignment_next(project=project, user=bob) is None
    _expire(mine)
    theirs = assignment_next(project=project, user=bob)
    assert theirs is not None and theirs.item_id == mine.item_id
    mine.refresh_from_db()
    assert mine.state == Assignment.State.EXPIRED
    # The late annotator cannot submit any more, and never gets the item again.
    with pytest.raises(AssignmentClosedError, match="expired"):
        annotation_submit(assignment=mine, values=GOOD, time_spent_ms=10)
    assert assignment_next(project=project, user=ann) is None


@pytest.mark.django_db
def test_an_expired_lease_nobody_took_is_renewed_for_its_holder() -> None:
    project = make_project(texts=["only"])
    ann = member(project, "ann")
    mine = assignment_next(project=project, user=ann)
    assert mine is not None
    _expire(mine)
    again = assignment_next(project=project, user=ann)
    assert again is not None and again.pk == mine.pk and again.leased_until > timezone.now()
    annotation_submit(assignment=again, values=GOOD, time_spent_ms=5)
    assert Item.objects.get().status == Item.Status.COMPLETE


@pytest.mark.django_db
def test_k_overlap_gives_each_item_to_k_different_people_partial_items_first() -> None:
    project = make_project(texts=["a", "b", "c"], k=2)
    ann, bob, cat = (member(project, name) for name in ("ann", "bob", "cat"))
    seen: dict[str, list[int]] = {}
    for user in (ann, bob, cat):
        got = []
        while (a := assignment_next(project=project, user=user)) is not None:
            got.append(a.item_id)
            annotation_submit(assignment=a, values=GOOD, time_spent_ms=1)
        seen[user.get_username()] = got
    items = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    assert seen["ann"] == items  # ann takes all three first (nobody else is there)
    assert seen["bob"] == items  # then bob completes them: partly done items first
    assert seen["cat"] == []  # all complete: k=2 reached everywhere
    assert set(Item.objects.values_list("status", "submitted_count")) == {("complete", 2)}


@pytest.mark.django_db
def test_partly_annotated_items_come_before_untouched_ones() -> None:
    project = make_project(texts=["a", "b", "c"], k=2)
    ann, bob = member(project, "ann"), member(project, "bob")
    items = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    # ann does the last item only (skips the first two).
    for _ in range(2):
        a = assignment_next(project=project, user=ann)
        assert a is not None
        assignment_skip(assignment=a)
    a = assignment_next(project=project, user=ann)
    assert a is not None and a.item_id == items[2]
    annotation_submit(assignment=a, values=GOOD, time_spent_ms=1)
    b = assignment_next(project=project, user=bob)
    assert b is not None and b.item_id == items[2]


@pytest.mark.django_db
def test_skip_frees_the_slot_for_others_drops_drafts_and_never_comes_back() -> None:
    project = make_project(texts=["a", "b"])
    ann, bob = member(project, "ann"), member(project, "bob")
    first = assignment_next(project=project, user=ann)
    assert first is not None
    annotation_save_draft(assignment=first, values=GOOD, time_spent_ms=300)
    assignment_skip(assignment=first, time_spent_ms=900)
    first.refresh_from_db()
    assert first.state == Assignment.State.SKIPPED and first.time_spent_ms == 900
    assert not Annotation.objects.exists()
    second = assignment_next(project=project, user=ann)
    assert second is not None and second.item_id != first.item_id
    other = assignment_next(project=project, user=bob)
    assert other is not None and other.item_id == first.item_id
    with pytest.raises(AssignmentClosedError):
        assignment_skip(assignment=first)


@pytest.mark.django_db
def test_back_reopens_the_last_submission_as_drafts_and_recomputes_status() -> None:
    project = make_project(texts=["a", "b"])
    ann = member(project, "ann")
    assert assignment_reopen_last(project=project, user=ann) is None
    first = assignment_next(project=project, user=ann)
    assert first is not None
    annotation_submit(assignment=first, values=GOOD, time_spent_ms=1)
    assert Item.objects.get(pk=first.item_id).status == Item.Status.COMPLETE
    reopened = assignment_reopen_last(project=project, user=ann)
    assert reopened is not None and reopened.pk == first.pk
    assert reopened.state == Assignment.State.LEASED
    assert Annotation.objects.get().draft is True
    assert Item.objects.get(pk=first.item_id).status == Item.Status.PENDING
    annotation_submit(assignment=reopened, values={"quality": {"label": "bad"}}, time_spent_ms=2)
    assert Annotation.objects.get().values == {"label": "bad"}
    assert Item.objects.get(pk=first.item_id).status == Item.Status.COMPLETE


@pytest.mark.django_db
def test_back_to_a_skipped_item_only_while_it_has_a_free_slot() -> None:
    project = make_project(texts=["a"])
    ann, bob = member(project, "ann"), member(project, "bob")
    mine = assignment_next(project=project, user=ann)
    assert mine is not None
    assignment_skip(assignment=mine)
    theirs = assignment_next(project=project, user=bob)
    assert theirs is not None
    assert assignment_reopen_last(project=project, user=ann) is None
    assignment_skip(assignment=theirs)
    again = assignment_reopen_last(project=project, user=ann)
    assert again is not None and again.pk == mine.pk and again.state == Assignment.State.LEASED


def _annotate_until_done(
    project: AnnotationProject,
    user: object,
    barrier: threading.Barrier,
    log: list[int],
    errors: list[BaseException],
) -> None:
    try:
        barrier.wait()
        while (a := assignment_next(project=project, user=user)) is not None:  # type: ignore[arg-type]
            log.append(a.item_id)
            annotation_submit(assignment=a, values=GOOD, time_spent_ms=1)
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("k", [1, 2])
def test_concurrent_annotators_never_get_an_item_beyond_k(k: int) -> None:
    """Eight annotators, each on its own PostgreSQL connection, race for 30 items."""
    project = make_project(texts=[f"t{i}" for i in range(30)], k=k, name=f"race-{k}")
    users = [member(project, f"ann{i}-{k}") for i in range(8)]
    barrier = threading.Barrier(len(users))
    logs: list[list[int]] = [[] for _ in users]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_annotate_until_done, args=(project, u, barrier, log, errors))
        for u, log in zip(users, logs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    handed = Counter(item for log in logs for item in log)
    assert all(len(set(log)) == len(log) for log in logs)  # never twice to one person
    assert len(handed) == 30 and set(handed.values()) == {k}  # every item exactly k times
    assert set(Item.objects.filter(project=project).values_list("status", flat=True)) == {
        "complete"
    }
    assert sum(len(log) > 0 for log in logs) >= 2  # it really ran concurrently


@pytest.mark.django_db(transaction=True)
def test_a_lease_committed_while_another_search_runs_is_seen_by_its_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race the claim's re-check closes, made deterministic.

    Bob's search takes its snapshot, then sleeps before reaching the only item; ann
    leases that item and commits meanwhile. Bob then locks the item (no longer locked)
    and his stale snapshot shows it free: only the claim's fresh snapshot stops a
    double assignment.
    """
    from annotate.services import assignments

    project = make_project(texts=["only"], name="race-window")
    ann, bob = member(project, "ann-w"), member(project, "bob-w")
    slow = assignments._CANDIDATE.replace(
        "WHERE i.project_id",
        "WHERE (SELECT 1 FROM pg_sleep(CASE WHEN %(user)s = "
        f"{bob.pk} THEN 0.8 ELSE 0 END)) = 1 AND i.project_id",
    )
    monkeypatch.setattr(assignments, "_CANDIDATE", slow)
    result: list[Assignment | None] = []
    errors: list[BaseException] = []

    def bob_asks() -> None:
        try:
            result.append(assignment_next(project=project, user=bob))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=bob_asks)
    thread.start()
    time.sleep(0.3)
    mine = assignment_next(project=project, user=ann)
    thread.join(timeout=30)
    assert errors == [] and mine is not None
    assert result == [None]
    assert list(Assignment.objects.values_list("user_id", flat=True)) == [ann.pk]
