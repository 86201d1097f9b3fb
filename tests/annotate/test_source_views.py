"""The curator forms for recipe slices, borderline bands, pairs and suggestions; what shows."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotate.models import Annotation, AnnotationProject, Item, ProjectMember, Suggestion
from annotate.services.assignments import assignment_next
from curation.models import DuplicateGroup, DuplicateMember
from curation.services.recipes import recipe_create, recipe_version_save
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.factories import make_project, member

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}},
    {"key": "scores", "kind": "rating", "config": {"attributes": ["helpful"]}},
]
XSS = "<script>alert(1)</script>"


@pytest.fixture
def setup() -> dict[str, Any]:
    project = make_project(
        texts=[f"text {i}" for i in range(6)], questions=QUESTIONS, add_items=False
    )
    ids = list(project.dataset.documents.order_by("id").values_list("id", flat=True))
    signal = signal_define(name="qc_quality", step="classifier", step_version="1", dtype="float")
    signal_values_write(
        signal=signal,
        dataset_id=project.dataset_id,
        values=list(zip(ids, [0.1, 0.45, 0.9, 0.55, 0.3, 0.8], strict=True)),
    )
    curator = member(project, "curator", ProjectMember.Role.CURATOR)
    return {"project": project, "ids": ids, "curator": curator}


def _post(client: Client, project: AnnotationProject, name: str, data: dict[str, Any]) -> str:
    response = client.post(reverse(f"annotate:{name}", args=[project.slug]), data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_items_form_adds_a_recipe_slice_and_a_borderline_band(
    client: Client, setup: dict[str, Any]
) -> None:
    project, ids = setup["project"], setup["ids"]
    recipe = recipe_create(dataset=project.dataset, name="Keep good")
    version = recipe_version_save(
        recipe=recipe,
        rules=[{"signal": "qc_quality", "op": ">=", "value": 0.5}],
        dedup={},
        user=None,
    )
    other = make_project(name="elsewhere", add_items=False)
    foreign = recipe_version_save(
        recipe=recipe_create(dataset=other.dataset, name="Foreign"), rules=[], dedup={}, user=None
    )
    client.force_login(setup["curator"])
    page = client.get(project.get_absolute_url()).content.decode()
    assert "Keep good v1" in page and "Foreign" not in page
    assert 'id="pairs-form"' in page and 'id="suggestions-form"' in page
    page = _post(
        client, project, "project_items_add", {"sample": "recipe", "recipe_version": version.pk}
    )
    assert "3 items added." in page
    refused = _post(
        client, project, "project_items_add", {"sample": "recipe", "recipe_version": foreign.pk}
    )
    assert "Items not added" in refused and "recipe_version" in refused
    page = _post(
        client,
        project,
        "project_items_add",
        {"sample": "borderline", "signal": "qc_quality", "threshold": 0.5, "n": 1},
    )
    assert "1 items added." in page
    assert set(Item.objects.filter(project=project).values_list("document_id", flat=True)) == {
        ids[1],
        ids[2],
        ids[3],
        ids[5],
    }
    again = _post(
        client, project, "project_items_add", {"sample": "borderline", "signal": "qc_quality"}
    )
    assert "Items not added: the borderline band needs a numeric signal and a threshold" in again
    again = _post(
        client,
        project,
        "project_items_add",
        {"sample": "borderline", "signal": "qc_quality", "threshold": 0.5},
    )
    assert "Items not added: the borderline band needs n &gt;= 1" in again


def test_pairs_form_adds_duplicate_random_and_uploaded_pairs_and_reports_bad_lines(
    client: Client, setup: dict[str, Any]
) -> None:
    project, ids = setup["project"], setup["ids"]
    group = DuplicateGroup.objects.create(
        dataset=project.dataset, kind="exact", step="x", step_version="1", run_key="r", size=2
    )
    DuplicateMember.objects.create(group=group, document_id=ids[0], is_representative=True)
    DuplicateMember.objects.create(group=group, document_id=ids[3], is_representative=False)
    client.force_login(setup["curator"])
    page = _post(client, project, "project_pairs_add", {"source": "duplicates", "kind": "exact"})
    assert "1 pairs added." in page
    upload = SimpleUploadedFile(
        "pairs.csv", f"a,b\nd1,d2\nd4,{XSS}\nd5\n".encode(), content_type="text/csv"
    )
    page = _post(client, project, "project_pairs_add", {"source": "file", "file": upload})
    assert "1 pairs added from 4 lines. 2 lines not added" in page
    assert "line 3: b: no document with external id &#x27;&lt;script&gt;" in page
    assert "line 4: b: missing or not an id" in page and "<script>alert" not in page
    assert Item.objects.filter(project=project, document_id=ids[1], second_document=ids[2]).exists()
    missing = _post(client, project, "project_pairs_add", {"source": "file"})
    assert "Pairs not added" in missing and "choose a CSV or JSONL file" in missing
    assert Item.objects.filter(project=project).count() == 2
    # Three random pairs use all six documents: at least one is not a pair yet.
    page = _post(client, project, "project_pairs_add", {"source": "random", "n": 3, "seed": 4})
    assert "pairs added." in page and Item.objects.filter(project=project).count() > 2
    assert not Item.objects.filter(project=project, second_document__isnull=True).exists()


def test_suggestions_form_makes_and_replaces_suggestions_and_the_pages_show_them(
    client: Client, setup: dict[str, Any]
) -> None:
    project = setup["project"]
    client.force_login(setup["curator"])
    _post(client, project, "project_items_add", {"sample": "all"})
    page = _post(
        client,
        project,
        "project_suggestions_add",
        {
            "mode": "score",
            "question": "quality",
            "signal": "qc_quality",
            "origin": "classifier",
            "threshold": "0.5",
            "label_true": "good",
            "label_false": "bad",
        },
    )
    assert "6 suggestions from qc_quality &gt;= 0.5 (0 stale ones removed)." in page
    assert "qc_quality &gt;= 0.5" in page and "Classifier score" in page
    data = {
        "mode": "score",
        "question": "scores",
        "signal": "qc_quality",
        "attribute": "helpful",
        "score_low": "0",
        "score_high": "1",
    }
    _post(client, project, "project_suggestions_add", data)
    _post(client, project, "project_suggestions_add", data)
    assert Suggestion.objects.filter(project=project).count() == 12
    bad = _post(
        client,
        project,
        "project_suggestions_add",
        {"mode": "rule", "question": "quality", "signal": "qc_quality", "op": ">"},
    )
    assert "Suggestions not made" in bad and "a signal rule needs it" in bad
    wrong = _post(
        client,
        project,
        "project_suggestions_add",
        {**data, "attribute": XSS},
    )
    assert "attribute: &#x27;&lt;script&gt;" in wrong and "<script>alert" not in wrong

    annotator: User = member(project, "ann")
    assignment = assignment_next(project=project, user=annotator)
    assert assignment is not None
    client.force_login(annotator)
    page = client.get(assignment.get_absolute_url()).content.decode()
    assert 'id="suggestions"' in page and "from qc_quality &gt;= 0.5 (Classifier score" in page
    assert 'id="suggestions-data"' in page and "<kbd>a</kbd> accept the suggestions" in page
    Annotation.objects.create(
        item=assignment.item,
        user=annotator,
        question=project.questions.get(key="quality"),
        values=Suggestion.objects.filter(item=assignment.item, question__key="quality")
        .get()
        .values,
        draft=False,
    )
    client.force_login(setup["curator"])
    dashboard = client.get(reverse("annotate:project_dashboard", args=[project.slug]))
    body = dashboard.content.decode()
    assert 'id="model-agreement"' in body and "Cohen&#x27;s kappa" in body
    assert "Krippendorff&#x27;s alpha (interval)" in body and "all annotators (each answer)" in body
