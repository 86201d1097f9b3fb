"""The annotate pages through the Django test client: access by role, and the flows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from annotate.models import Annotation, AnnotationProject, Assignment, Item, ProjectMember
from annotate.services.assignments import assignment_next
from annotate.services.items import items_add_pairs
from curation.models import Document
from tests.annotate.factories import ALL_KINDS, make_project, member
from tests.curation.factories import UserFactory

pytestmark = pytest.mark.django_db

XSS = "<script>alert('pwned')</script> 😀 Alice met Bob in New York."
MANAGE = {"curator", "staff"}
ANNOTATE = {"annotator", "curator"}
REVIEW = {"reviewer", "curator", "staff"}
ROLES = ("outsider", "reviewer", "annotator", "curator", "staff")


@pytest.fixture
def setup() -> dict[str, Any]:
    project = make_project(
        texts=[XSS, "Second text", "Third"],
        questions=ALL_KINDS,
        add_items=False,
        guidelines="## Rules\n\nMark **names**. <img src=x onerror=alert(1)> "
        "[bad](javascript:alert(1))",
    )
    a, b, c = (
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    items_add_pairs(project=project, pairs=[(a, b), (b, c)])
    users: dict[str, User] = {
        "outsider": UserFactory.create(username="outsider"),
        "reviewer": member(project, "reviewer", ProjectMember.Role.REVIEWER),
        "annotator": member(project, "annotator"),
        "curator": member(project, "curator", ProjectMember.Role.CURATOR),
        "staff": UserFactory.create(username="staff", is_staff=True, is_superuser=True),
    }
    other = member(project, "other-annotator")
    assignment = assignment_next(project=project, user=users["annotator"])
    assert assignment is not None
    return {"project": project, "users": users, "assignment": assignment, "other": other}


def _urls(project: AnnotationProject, assignment: Assignment) -> list[tuple[str, str, set[str]]]:
    slug, pk = project.slug, assignment.pk
    return [
        ("get", reverse("annotate:project_detail", args=[slug]), MANAGE),
        ("get", reverse("annotate:project_dashboard", args=[slug]), MANAGE),
        ("post", reverse("annotate:project_items_add", args=[slug]), MANAGE),
        ("post", reverse("annotate:project_member_add", args=[slug]), MANAGE),
        ("post", reverse("annotate:project_pairs_add", args=[slug]), MANAGE),
        ("post", reverse("annotate:project_suggestions_add", args=[slug]), MANAGE),
        ("post", reverse("annotate:answer_signals", args=[slug]), MANAGE),
        ("post", reverse("annotate:generated_accept", args=[slug]), MANAGE),
        ("get", reverse("annotate:annotations_download", args=[slug]), MANAGE | {"reviewer"}),
        ("get", reverse("annotate:next_item", args=[slug]), ANNOTATE),
        ("post", reverse("annotate:go_back", args=[slug]), ANNOTATE),
        ("get", reverse("annotate:assignment_detail", args=[slug, pk]), ANNOTATE),
        ("post", reverse("annotate:assignment_detail", args=[slug, pk]), ANNOTATE),
        ("post", reverse("annotate:assignment_draft", args=[slug, pk]), ANNOTATE),
        ("post", reverse("annotate:assignment_skip", args=[slug, pk]), ANNOTATE),
        ("get", reverse("annotate:review_queue", args=[slug]), REVIEW),
        ("get", reverse("annotate:review_next", args=[slug]), REVIEW),
        ("get", reverse("annotate:review_item", args=[slug, assignment.item_id]), REVIEW),
        ("post", reverse("annotate:review_item", args=[slug, assignment.item_id]), REVIEW),
    ]


def test_the_role_checks_cover_every_project_url(setup: dict[str, Any]) -> None:
    from annotate.urls import urlpatterns

    checked = {url for _, url, _ in _urls(setup["project"], setup["assignment"])}
    project_routes = [p for p in urlpatterns if "<slug:slug>" in str(p.pattern)]
    for route in project_routes:
        args = [setup["project"].slug] + (
            [setup["assignment"].pk] if "<int:pk>" in str(route.pattern) else []
        )
        if "<int:item_id>" in str(route.pattern):
            args.append(setup["assignment"].item_id)
        assert reverse(f"annotate:{route.name}", args=args) in checked, route.name


def test_every_project_url_refuses_the_wrong_role_and_anonymous_users(
    client: Client, setup: dict[str, Any]
) -> None:
    urls = _urls(setup["project"], setup["assignment"])
    for method, url, _ in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    refused = []
    for role in ROLES:
        client.force_login(setup["users"][role])
        for method, url, allowed in urls:
            status = getattr(client, method)(url).status_code
            if role in allowed:
                assert status != 403, (role, method, url)
            else:
                refused.append((role, url))
                assert status == 403, (role, method, url, status)
    # Everyone but curators and annotators is refused the annotator pages, and so on.
    assert len(refused) == sum(len(set(ROLES) - allowed) for _, _, allowed in urls)


def test_an_annotator_cannot_open_someone_elses_assignment(
    client: Client, setup: dict[str, Any]
) -> None:
    client.force_login(setup["other"])
    url = reverse(
        "annotate:assignment_detail", args=[setup["project"].slug, setup["assignment"].pk]
    )
    assert client.get(url).status_code == 404
    assert client.post(url + "skip/").status_code == 404
    assert Assignment.objects.get(pk=setup["assignment"].pk).state == Assignment.State.LEASED


def test_project_list_shows_only_my_projects_and_creation_needs_the_right(
    client: Client, setup: dict[str, Any]
) -> None:
    make_project(name="elsewhere", add_items=False)
    client.force_login(setup["users"]["annotator"])
    page = client.get(reverse("annotate:project_list")).content.decode()
    assert setup["project"].name in page and "elsewhere" not in page
    assert "Start annotating" in page and "New project" not in page
    assert client.get(reverse("annotate:project_create")).status_code == 403
    client.force_login(setup["users"]["staff"])
    page = client.get(reverse("annotate:project_list")).content.decode()
    assert "elsewhere" in page and "New project" in page


def test_staff_create_a_project_and_its_curator_adds_items_and_members(
    client: Client, setup: dict[str, Any]
) -> None:
    staff = setup["users"]["staff"]
    client.force_login(staff)
    questions = json.dumps(
        [{"key": "ok", "kind": "single_label", "config": {"labels": ["y", "n"]}}]
    )
    bad = client.post(
        reverse("annotate:project_create"),
        {
            "name": "New",
            "dataset": setup["project"].dataset_id,
            "k": 1,
            "lease_seconds": 600,
            "questions": '[{"key": "ok", "kind": "essay"}]',
        },
    )
    assert "kind &#x27;essay&#x27; is not one of" in bad.content.decode()
    response = client.post(
        reverse("annotate:project_create"),
        {
            "name": "New",
            "dataset": setup["project"].dataset_id,
            "k": 2,
            "lease_seconds": 600,
            "questions": questions,
        },
    )
    project = AnnotationProject.objects.get(name="New")
    assert response["Location"] == project.get_absolute_url() == "/annotate/new-2/"
    added = client.post(
        reverse("annotate:project_items_add", args=[project.slug]),
        {"sample": "random", "n": 2, "seed": 1},
    )
    assert added.status_code == 302 and Item.objects.filter(project=project).count() == 2
    client.post(
        reverse("annotate:project_member_add", args=[project.slug]),
        {"username": "outsider", "role": "annotator"},
    )
    page = client.get(project.get_absolute_url()).content.decode()
    assert 'id="items-total">2<' in page and "outsider" in page
    failed = client.post(
        reverse("annotate:project_items_add", args=[project.slug]),
        {"sample": "stratified", "n": 2},
        follow=True,
    )
    assert "needs a numeric signal" in failed.content.decode()


def test_annotator_page_escapes_text_renders_guidelines_safely_and_shows_keys(
    client: Client, setup: dict[str, Any]
) -> None:
    client.force_login(setup["users"]["annotator"])
    response = client.get(reverse("annotate:next_item", args=[setup["project"].slug]))
    assert response["Location"] == setup["assignment"].get_absolute_url()
    page = client.get(response["Location"]).content.decode()
    assert "<script>alert('pwned')" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "\\u003Cscript\\u003E" in page  # the exact text for span offsets, as JSON
    assert "<h2>Rules</h2>" in page and "<strong>names</strong>" in page
    assert "<img" not in page and 'href="javascript' not in page
    assert "Text B" in page and "Second text" in page
    assert "<kbd>1</kbd> good" in page and "A much better" in page
    assert 'name="q-helpsteer-verbosity" value="4"' in page
    assert 'id="my-submitted">0</span> submitted, 0 skipped, of <span id="items-total">2<' in page


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "time_spent_ms": "5000",
        "q-quality": "good",
        "q-topics": ["news", "chat"],
        "q-entities": json.dumps([{"start": 34, "end": 39, "label": "PER"}]),
        "q-helpsteer-helpfulness": "4",
        "q-helpsteer-correctness": "3",
        "q-helpsteer-coherence": "4",
        "q-helpsteer-complexity": "1",
        "q-helpsteer-verbosity": "2",
        "q-preference": "b:2",
        "q-rewrite": "Line one\r\nLine two",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_submitting_the_form_stores_every_kind_and_moves_on(
    client: Client, setup: dict[str, Any]
) -> None:
    client.force_login(setup["users"]["annotator"])
    assignment = setup["assignment"]
    response = client.post(assignment.get_absolute_url(), _form())
    assert response["Location"] == reverse("annotate:next_item", args=[setup["project"].slug])
    stored = dict(Annotation.objects.filter(draft=False).values_list("question__key", "values"))
    assert stored["entities"] == {"spans": [{"start": 34, "end": 39, "label": "PER"}]}
    assert XSS[34:39] == "Alice"
    assert stored["preference"] == {"choice": "b", "strength": 2}
    assert stored["rewrite"] == {"text": "Line one\nLine two"}
    assert stored["topics"] == {"labels": ["news", "chat"]}
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED and assignment.time_spent_ms == 5000
    nxt = client.get(response["Location"])
    assert nxt["Location"] != assignment.get_absolute_url()


def test_a_refused_submission_shows_errors_by_question_and_keeps_the_answers(
    client: Client, setup: dict[str, Any]
) -> None:
    client.force_login(setup["users"]["annotator"])
    url = setup["assignment"].get_absolute_url()
    response = client.post(url, _form(**{"q-rewrite": None, "q-helpsteer-verbosity": "7"}))
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="error-rewrite">no answer given' in page
    assert "verbosity: score 7 is not an integer from 0 to 4" in page
    assert 'value="good" data-hotkey="1" checked' in page
    assert not Annotation.objects.exists()


def test_drafts_autosave_through_htmx_as_a_fragment(client: Client, setup: dict[str, Any]) -> None:
    client.force_login(setup["users"]["annotator"])
    url = setup["assignment"].get_absolute_url() + "draft/"
    response = client.post(
        url, {"q-quality": "bad", "time_spent_ms": "1200"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "Draft saved at" in body and "<html" not in body
    assert Annotation.objects.get().values == {"label": "bad"}
    assert Annotation.objects.get().draft is True
    page = client.get(setup["assignment"].get_absolute_url()).content.decode()
    assert 'value="bad" data-hotkey="2" checked' in page
    wrong = client.post(url, {"q-quality": "<b>meh</b>"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Draft not saved" in wrong and "&lt;b&gt;meh" in wrong


def test_skip_then_back_through_the_pages(client: Client, setup: dict[str, Any]) -> None:
    client.force_login(setup["users"]["annotator"])
    project, first = setup["project"], setup["assignment"]
    client.post(first.get_absolute_url() + "skip/", {"time_spent_ms": "300"})
    first.refresh_from_db()
    assert first.state == Assignment.State.SKIPPED and first.time_spent_ms == 300
    second = client.get(reverse("annotate:next_item", args=[project.slug]))["Location"]
    assert second != first.get_absolute_url()
    back = client.post(reverse("annotate:go_back", args=[project.slug]))
    assert back["Location"] == first.get_absolute_url()
    # A closed assignment's page sends the annotator on to their next item.
    client.post(first.get_absolute_url() + "skip/")
    assert client.get(first.get_absolute_url())["Location"].endswith("/next/")
