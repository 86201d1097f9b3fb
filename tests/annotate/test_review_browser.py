"""The review page in headless Chromium: a disagreement adjudicated with the keyboard."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.models import FinalAnswer, Item, ProjectMember
from annotate.services.annotations import annotation_submit
from annotate.services.assignments import assignment_next
from tests.annotate.factories import make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}},
    {"key": "topics", "kind": "multi_label", "config": {"labels": ["news", "code"]}},
]


def test_reviewer_adjudicates_a_disagreement_with_the_keyboard(page: Any, live_server: Any) -> None:
    project = make_project(texts=["<b>Disputed</b> text", "Agreed text"], questions=QUESTIONS, k=2)
    ann, bob = member(project, "ann"), member(project, "bob")
    for user, labels in ((ann, ["good", "good"]), (bob, ["bad", "good"])):
        for label in labels:
            assignment = assignment_next(project=project, user=user)
            assert assignment is not None
            annotation_submit(
                assignment=assignment,
                values={"quality": {"label": label}, "topics": {"labels": ["news"]}},
                time_spent_ms=50,
            )
    rita = member(project, "rita", ProjectMember.Role.REVIEWER)
    disputed, agreed = Item.objects.filter(project=project).order_by("id")
    assert disputed.disagreement and not agreed.disagreement

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/annotate/{project.slug}/review/?mode=first")
    page.click("#start-review")
    page.wait_for_url(f"**/review/{disputed.pk}/**")
    page.wait_for_selector("#review-quality.active")

    # Both answers side by side, the disagreement marked, nothing preselected for it.
    assert page.inner_text("#annotator-quality-1").strip().endswith("ann")
    assert page.inner_text("#annotator-quality-2").strip().endswith("bob")
    assert page.inner_text("#answer-quality-1").strip() == "good"
    assert page.inner_text("#answer-quality-2").strip() == "bad"
    assert page.inner_text("#marker-quality") == "disagree"
    assert page.inner_text("#marker-topics") == "agree"
    assert "<b>Disputed</b>" in page.inner_text("#doc-text")
    assert not page.is_checked("#pick-quality-1") and not page.is_checked("#pick-quality-2")
    assert page.is_checked("#pick-topics-1")  # the majority answer is the default

    page.keyboard.press("2")  # take bob's answer; the next question lights up
    page.wait_for_selector("#review-topics.active")
    assert page.is_checked("#pick-quality-2")
    page.keyboard.press("[")
    page.keyboard.press("n")
    page.keyboard.type("bob followed the guidelines")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # save and go to the next item

    page.wait_for_url(f"**/review/{agreed.pk}/**")
    final = FinalAnswer.objects.get(item=disputed, question__key="quality")
    assert final.values == {"label": "bad"}
    assert final.source == FinalAnswer.Source.ADJUDICATED
    assert final.reviewer_id == rita.pk and final.note == "bob followed the guidelines"
    assert FinalAnswer.objects.get(item=disputed, question__key="topics").source == "accepted"

    # The agreed item: defaults are the majority answers, so Enter accepts them.
    page.wait_for_selector("#review-quality.active")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-queue")
    assert "Nothing is left to review" in page.inner_text(".messages")
    assert page.inner_text("#review-reviewed") == "2"
    assert FinalAnswer.objects.filter(item=agreed, source="accepted").count() == 2
