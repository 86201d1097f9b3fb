"""An annotator sees a model's suggestions, accepts them with "a" and submits (Chromium)."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.models import Annotation, Item
from annotate.services.suggestions import suggestions_from_rule, suggestions_from_score
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.factories import make_project, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    {"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}},
    {"key": "scores", "kind": "rating", "config": {"attributes": ["helpful", "clear"]}},
    {"key": "topics", "kind": "multi_label", "config": {"labels": ["news", "code"]}},
]


def test_an_annotator_accepts_the_suggestions_with_one_key_and_submits(
    page: Any, live_server: Any
) -> None:
    project = make_project(texts=["<b>Some</b> text to judge."], questions=QUESTIONS)
    item = Item.objects.get(project=project)
    score = signal_define(name="qc_quality", step="classifier", step_version="1", dtype="float")
    signal_values_write(
        signal=score, dataset_id=project.dataset_id, values=[(item.document_id, 0.8)]
    )
    quality, scores = project.questions.get(key="quality"), project.questions.get(key="scores")
    suggestions_from_rule(
        project=project,
        question=quality,
        signal=score,
        op="<",
        value=0.5,
        label_true="good",
        label_false="bad",
    )
    suggestions_from_score(project=project, question=scores, signal=score, attribute="clear")
    ann = member(project, "ann")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/annotate/{project.slug}/next/")
    page.wait_for_selector("#question-quality.active")
    first_url = page.url
    box = page.inner_text("#suggestions")
    assert "quality: bad" in box and "qc_quality < 0.5" in box and "score 0.800" in box
    assert "scores: clear 3" in box
    assert not page.is_checked("#question-quality input[value=bad]")

    page.keyboard.press("a")
    assert page.is_checked("#question-quality input[value=bad]")
    assert page.is_checked("input[name=q-scores-clear][value='3']")
    # The other keys still work beside it: rate "helpful" and pick a topic by hand.
    page.keyboard.press("]")
    page.wait_for_selector("#question-scores.active")
    page.keyboard.press("2")
    page.keyboard.press("]")
    page.wait_for_selector("#question-topics.active")
    page.keyboard.press("2")
    assert page.is_checked("input[name=q-scores-helpful][value='2']")
    # "u" undoes the last change only (the topic), not the accepted suggestions.
    page.keyboard.press("u")
    assert not page.is_checked("#question-topics input[value=code]")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != first_url)

    stored = dict(
        Annotation.objects.filter(user=ann, draft=False).values_list("question__key", "values")
    )
    assert stored == {
        "quality": {"label": "bad"},
        "scores": {"ratings": {"helpful": 2, "clear": 3}},
        "topics": {"labels": ["code"]},
    }
