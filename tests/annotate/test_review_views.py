"""The review pages through the Django test client: the queue, one item, decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from annotate.models import Annotation, AnnotationProject, FinalAnswer, Item, ProjectMember
from annotate.services.annotations import annotation_submit
from annotate.services.assignments import assignment_next
from tests.annotate.factories import ALL_KINDS, make_project, member

pytestmark = pytest.mark.django_db

XSS = "<script>alert('pwned')</script> Alice met Bob in New York."
QUESTIONS = [
    *[q for q in ALL_KINDS if q["key"] != "rewrite"],
    {"key": "rewrite", "kind": "rewrite", "config": {"source": "document"}},
]


def _answers(**overrides: Any) -> dict[str, Any]:
    alice = XSS.index("Alice")
    values = {
        "quality": {"label": "good"},
        "topics": {"labels": ["news"]},
        "entities": {"spans": [{"start": alice, "end": alice + 5, "label": "PER"}]},
        "helpsteer": {
            "ratings": {
                "helpfulness": 4,
                "correctness": 3,
                "coherence": 4,
                "complexity": 1,
                "verbosity": 2,
            }
        },
        "preference": {"choice": "b", "strength": 2},
        "rewrite": {"text": XSS.replace("met", "greeted")},
    }
    values.update(overrides)
    return values


def _submit(project: AnnotationProject, user: User, values: dict[str, Any]) -> None:
    assignment = assignment_next(project=project, user=user)
    assert assignment is not None
    annotation_submit(assignment=assignment, values=values, time_spent_ms=100)


@pytest.fixture
def project() -> AnnotationProject:
    """One pairwise-capable item annotated by ann and bob, who disagree on the label."""
    project = make_project(texts=[XSS], questions=QUESTIONS, k=2)
    _submit(project, member(project, "ann"), _answers())
    _submit(
        project,
        member(project, "bob"),
        _answers(
            quality={"label": "bad"},
            helpsteer={
                "ratings": dict.fromkeys(
                    ["helpfulness", "correctness", "coherence", "complexity", "verbosity"], 0
                )
            },
        ),
    )
    return project


@pytest.fixture
def reviewer(client: Client, project: AnnotationProject) -> User:
    user = member(project, "rita", ProjectMember.Role.REVIEWER)
    client.force_login(user)
    return user


def test_queue_page_lists_items_awaiting_review_with_markers(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    item = Item.objects.get(project=project)
    page = client.get(reverse("annotate:review_queue", args=[project.slug])).content.decode()
    assert f'id="queue-item-{item.pk}"' in page and "marker disagree" in page
    assert "&lt;script&gt;alert" in page and "<script>alert" not in page
    assert 'id="review-awaiting">1<' in page and 'id="review-disagreements">1<' in page
    only = client.get(reverse("annotate:review_queue", args=[project.slug]) + "?mode=only")
    assert f'id="queue-item-{item.pk}"' in only.content.decode()
    bad = client.get(reverse("annotate:review_queue", args=[project.slug]) + "?after=zzz")
    assert bad.status_code == 400 and "page cursor like 1:123" in bad.content.decode()


def test_review_page_shows_every_answer_side_by_side_escaped(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    response = client.get(reverse("annotate:review_next", args=[project.slug]))
    item = Item.objects.get(project=project)
    assert response["Location"].startswith(
        reverse("annotate:review_item", args=[project.slug, item.pk])
    )
    item.refresh_from_db()
    assert item.review_leased_by_id == reviewer.pk
    page = client.get(response["Location"]).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)" in page
    assert 'id="annotator-quality-1"><kbd>1</kbd> ann' in page
    assert 'id="annotator-quality-2"><kbd>2</kbd> bob' in page
    assert 'id="marker-quality">disagree' in page and 'id="marker-topics">agree' in page
    assert 'id="answer-quality-1">' in page and "good" in page and "bad" in page
    assert "<strong>PER</strong>" in page and "Alice</span>" in page  # spans with their text
    assert "B better" in page  # pairwise read out on its scale
    assert '<tr class="differs"><th>helpfulness</th>' in page  # ratings table
    assert "<del>met</del><ins>greeted</ins>" in page  # rewrite diff against the text
    # Where they agree the majority answer is preselected; where they do not, nothing is.
    topics = Annotation.objects.filter(question__key="topics").order_by("user__username").first()
    assert topics is not None
    assert f'value="{topics.pk}" data-hotkey="1" id="pick-topics-1" checked' in page
    assert 'id="pick-quality-1" checked' not in page and 'id="pick-quality-2" checked' not in page


def _post(project: AnnotationProject, **overrides: str) -> dict[str, str]:
    """Take ann's answer everywhere (bob's label), as the page's form would send it."""
    picks = {
        f"pick-{a.question.key}": str(a.pk)
        for a in Annotation.objects.filter(user__username="ann").select_related("question")
    }
    picks["pick-quality"] = str(
        Annotation.objects.get(user__username="bob", question__key="quality").pk
    )
    picks["note-quality"] = "bob read the guidelines"
    picks["mode"] = "only"
    picks.update(overrides)
    return picks


def test_adjudicating_records_final_answers_and_moves_on(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    item = Item.objects.get(project=project)
    url = reverse("annotate:review_item", args=[project.slug, item.pk])
    raw = list(Annotation.objects.order_by("id").values_list("values", flat=True))
    response = client.post(url, _post(project))
    assert (
        response["Location"] == reverse("annotate:review_next", args=[project.slug]) + "?mode=only"
    )
    finals = {f.question.key: f for f in FinalAnswer.objects.select_related("question")}
    assert len(finals) == len(QUESTIONS)
    assert finals["quality"].values == {"label": "bad"}
    assert finals["quality"].source == FinalAnswer.Source.ADJUDICATED
    assert finals["quality"].note == "bob read the guidelines"
    assert finals["topics"].source == FinalAnswer.Source.ACCEPTED
    assert finals["helpsteer"].values == _answers()["helpsteer"]
    assert list(Annotation.objects.order_by("id").values_list("values", flat=True)) == raw
    item.refresh_from_db()
    assert item.reviewed and item.review_leased_by_id is None
    # Deciding again with one's own answer replaces the final answer, never duplicates it.
    again = client.post(url, _post(project, **{"pick-quality": "own", "q-quality": "good"}))
    assert again.status_code == 302
    assert FinalAnswer.objects.count() == len(QUESTIONS)
    assert FinalAnswer.objects.get(question__key="quality").values == {"label": "good"}
    page = client.get(url).content.decode()
    assert 'id="final-quality">Final answer: <strong>good</strong>' in page
    assert (
        "Nothing is left to review" in client.get(again["Location"], follow=True).content.decode()
    )


def test_a_refused_decision_names_the_question_and_keeps_the_form(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    item = Item.objects.get(project=project)
    url = reverse("annotate:review_item", args=[project.slug, item.pk])
    spans = json.dumps([{"start": 0, "end": 999, "label": "PER"}])
    response = client.post(
        url, _post(project, **{"pick-entities": "own", "q-entities": spans, "pick-topics": ""})
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="error-entities">your answer: span 1: start 0 and end 999' in page
    assert "no decision: take one annotator" in page
    assert 'id="pick-entities-own" checked' in page and "bob read the guidelines" in page
    assert not FinalAnswer.objects.exists()


def test_project_pages_link_the_queue_and_show_review_progress(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    listing = client.get(reverse("annotate:project_list")).content.decode()
    assert f'id="review-{project.pk}"' in listing and "Start annotating" not in listing
    client.force_login(member(project, "cora", ProjectMember.Role.CURATOR))
    detail = client.get(project.get_absolute_url()).content.decode()
    assert 'id="review-link"' in detail and 'id="review-awaiting">1<' in detail
    assert 'id="review-reviewed">0<' in detail


def test_an_item_open_by_another_reviewer_says_so_and_staff_read_final_answers(
    client: Client, project: AnnotationProject, reviewer: User
) -> None:
    item = Item.objects.get(project=project)
    url = reverse("annotate:review_item", args=[project.slug, item.pk])
    client.get(url)
    client.force_login(member(project, "ravi", ProjectMember.Role.REVIEWER))
    page = client.get(url).content.decode()
    assert 'id="held-by">rita has this item open' in page
    item.refresh_from_db()
    assert item.review_leased_by == reviewer  # the lease stays with the first reviewer
    queue = client.get(reverse("annotate:review_queue", args=[project.slug])).content.decode()
    assert "<td>rita</td>" in queue
    assert (
        client.get(reverse("annotate:review_item", args=[project.slug, 10**9])).status_code == 404
    )
    client.post(url, _post(project))
    client.force_login(User.objects.create(username="root", is_staff=True, is_superuser=True))
    admin = client.get(reverse("admin:annotate_finalanswer_changelist"))
    assert admin.status_code == 200 and "adjudicated" in admin.content.decode().lower()
