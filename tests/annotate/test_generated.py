"""Generated records go to review in one action; accepted ones are marked by a signal."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, FinalAnswer, Item, ProjectMember
from annotate.services.generated import (
    ACCEPTED_SIGNAL,
    generated_accepted_mark,
    generated_review_create,
)
from curation.models import Dataset
from tests.annotate.factories import member
from tests.curation.factories import UserFactory, make_dataset, signal_values
from tests.pipelines.factories import add_documents

pytestmark = pytest.mark.django_db


def generated() -> tuple[Dataset, list[int]]:
    source = make_dataset(name="seeds")
    add_documents(source, ["seed one", "seed two"])
    dataset = make_dataset(name="seeds sft", parent=source)
    return dataset, add_documents(dataset, ["record a", "record b", "record c"], prefix="g")


def rate(project: AnnotationProject, document_id: int, **ratings: int) -> None:
    item = Item.objects.get(project=project, document_id=document_id)
    question = project.questions.get(key="quality")
    FinalAnswer.objects.create(
        project=project,
        item=item,
        question=question,
        values={"ratings": ratings},
        source=FinalAnswer.Source.ACCEPTED,
    )


def test_a_review_project_rates_and_rewrites_every_generated_record() -> None:
    dataset, ids = generated()
    project = generated_review_create(dataset=dataset, user=UserFactory.create(username="x"))
    questions = list(project.questions.order_by("order").values_list("key", "kind", "config"))
    assert [(key, kind) for key, kind, _ in questions] == [
        ("quality", "rating"),
        ("rewrite", "rewrite"),
    ]
    assert questions[0][2]["attributes"] == [
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    ]
    assert questions[0][2]["scale"] == [0, 4]
    assert project.name == "Review seeds sft" and project.item_count == 3
    assert set(project.items.values_list("document_id", flat=True)) == set(ids)
    assert generated_review_create(dataset=dataset).name == "Review seeds sft (2)"
    with pytest.raises(ProjectError, match="has no parent dataset"):
        generated_review_create(dataset=Dataset.objects.get(name="seeds"))


def test_accepted_records_are_marked_from_the_final_ratings() -> None:
    dataset, ids = generated()
    project = generated_review_create(dataset=dataset)
    rate(project, ids[0], helpfulness=4, correctness=3, coherence=0)
    rate(project, ids[1], helpfulness=4, correctness=2)
    assert generated_accepted_mark(project=project) == 1
    assert signal_values(dataset.pk, ACCEPTED_SIGNAL) == {ids[0]: True, ids[1]: False}
    assert generated_accepted_mark(project=project, min_score=2) == 2
    assert generated_accepted_mark(project=project, attributes=("coherence",)) == 0
    with pytest.raises(ProjectError, match="choose from helpfulness"):
        generated_accepted_mark(project=project, attributes=("charm",))


def test_sending_to_review_needs_the_right_to_create_projects(client: Client) -> None:
    dataset, _ = generated()
    url = reverse("annotate:generated_review", args=[dataset.slug])
    assert client.post(url).status_code == 302  # to the login page
    client.force_login(UserFactory.create(username="annotator"))
    assert client.post(url).status_code == 403
    assert b"generated-review-form" not in client.get(dataset.get_absolute_url()).content
    staff = UserFactory.create(username="staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert b"generated-review-form" in client.get(dataset.get_absolute_url()).content
    response = client.post(url)
    project = AnnotationProject.objects.get(dataset=dataset)
    assert response["Location"] == project.get_absolute_url()
    assert b"accept-form" in client.get(project.get_absolute_url()).content
    response = client.post(reverse("annotate:generated_review", args=["seeds"]), follow=True)
    assert b"has no parent dataset" in response.content


def test_marking_accepted_records_is_for_the_project_curators(client: Client) -> None:
    dataset, ids = generated()
    project = generated_review_create(dataset=dataset)
    rate(project, ids[2], helpfulness=3, correctness=3)
    url = reverse("annotate:generated_accept", args=[project.slug])
    users: dict[str, Any] = {
        "annotator": member(project, "annotator"),
        "reviewer": member(project, "reviewer", ProjectMember.Role.REVIEWER),
    }
    rule = {"attributes": ["helpfulness", "correctness"], "min_score": 3}
    for user in users.values():
        client.force_login(user)
        assert client.post(url, rule).status_code == 403
    client.force_login(member(project, "curator", ProjectMember.Role.CURATOR))
    page = client.get(project.get_absolute_url()).content.decode()
    assert 'name="min_score" value="3"' in page
    assert 'value="helpfulness" id="id_attributes_0" checked' in page
    response = client.post(url, rule, follow=True)
    assert b"1 records accepted (signal synth_accepted: helpfulness, correctness &gt;= 3)" in (
        response.content
    )
    assert signal_values(dataset.pk, ACCEPTED_SIGNAL) == {ids[2]: True}
    # The rule is the curator's: a stricter one recomputes every value.
    response = client.post(url, {"attributes": ["helpfulness"], "min_score": 4}, follow=True)
    assert b"0 records accepted" in response.content
    assert signal_values(dataset.pk, ACCEPTED_SIGNAL) == {ids[2]: False}
    for bad, message in [
        ({"min_score": 3}, b"Choose at least one attribute"),
        ({**rule, "min_score": 7}, b"min_score: Ensure this value is less than or equal to 4"),
        ({**rule, "attributes": ["charm"]}, b"Select a valid choice. charm is not one"),
    ]:
        assert message in client.post(url, bad, follow=True).content
    assert signal_values(dataset.pk, ACCEPTED_SIGNAL) == {ids[2]: False}


def test_accepted_records_export_with_their_lineage(tmp_path: Any) -> None:
    import orjson

    from curation.models import ExportSnapshot
    from curation.services.exports.jobs import export_create, export_run
    from curation.services.exports.options import ExportOptions

    dataset, ids = generated()
    lineage = {"source_ids": [1], "generator": "synth_qa", "template": {"version": "abc"}}
    dataset.documents.filter(pk=ids[0]).update(meta={"lineage": lineage})
    project = generated_review_create(dataset=dataset)
    rate(project, ids[0], helpfulness=4, correctness=4)
    rate(project, ids[1], helpfulness=1, correctness=4)
    generated_accepted_mark(project=project)

    snapshot = export_create(
        dataset=dataset,
        fmt="jsonl",
        options=ExportOptions(
            columns=("id", "meta"), signals=(ACCEPTED_SIGNAL,), compression="none"
        ),
        path=tmp_path / "export",
    )
    snapshot = export_run(snapshot_id=snapshot.pk)
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, snapshot.error
    rows = [
        orjson.loads(line)
        for shard in sorted((tmp_path / "export" / "data").iterdir())
        for line in shard.read_bytes().splitlines()
    ]
    by_id = {row["id"]: row for row in rows}
    assert by_id["g0"][ACCEPTED_SIGNAL] is True and by_id["g1"][ACCEPTED_SIGNAL] is False
    assert by_id["g2"][ACCEPTED_SIGNAL] is None
    meta = by_id["g0"]["meta"]
    assert (orjson.loads(meta) if isinstance(meta, str) else meta)["lineage"] == lineage
