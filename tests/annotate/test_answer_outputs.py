"""What answers become, through the real paths: a worker writing signals from the project
page's button, the JSON-lines download and command, and dataset exports with annotation
columns loaded by ``datasets``."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate.models import FinalAnswer, ProjectMember, Suggestion
from annotate.services.annotation_export import annotation_export_lines
from annotate.services.answer_signals import answer_signals_write
from annotate.services.items import items_add_pairs
from curation.models import Document, ExportSnapshot, Signal
from curation.services.exports import export_run
from curation.services.signals import signal_define
from tests.annotate.answer_factories import final_answer, items_by_document, submit_next
from tests.annotate.factories import ALL_KINDS, all_answers, make_project, member
from tests.conftest import wait_for
from tests.curation.factories import signal_values

TEXTS = ["Alice went home.", "Bob stayed here.", "Carol left early.", "Dan never came."]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_project_button_has_a_worker_write_the_answers_as_signals(
    start_worker: Any, client: Client
) -> None:
    project = make_project(name="button", texts=TEXTS, k=2)
    curator = member(project, "cur", ProjectMember.Role.CURATOR)
    ann1, ann2 = member(project, "ann1"), member(project, "ann2")
    agreed = submit_next(project, ann1, {"quality": {"label": "good"}})
    submit_next(project, ann2, {"quality": {"label": "good"}})
    reviewed = items_by_document(project)[3]
    final_answer(reviewed, "quality", {"label": "bad"}, reviewer=curator)
    worker = start_worker()
    client.force_login(curator)
    page = client.get(project.get_absolute_url()).content.decode()
    assert "ann_button_quality" in page and "not written yet" in page
    assert 'id="classifier-links"' not in page  # nothing to train on before the write

    response = client.post(
        reverse("annotate:answer_signals", args=[project.slug]), {"include_agreed": "on"}
    )
    assert response.status_code == 302

    def written() -> bool:
        from curation.models import Signal

        if not Signal.objects.filter(name="ann_button_quality").exists():
            return False
        values = signal_values(project.dataset_id, "ann_button_quality")
        return len([v for v in values.values() if v is not None]) == 2

    try:
        wait_for(written, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"signals not written; the worker said:\n{worker.output()}") from exc
    values = signal_values(project.dataset_id, "ann_button_quality")
    assert values[agreed.document_id] == "good" and values[reviewed.document_id] == "bad"
    page = client.get(project.get_absolute_url()).content.decode()
    assert "not written yet" not in page and "gave alike" in page
    assert 'id="classifier-links"' in page
    assert "positive_signal=ann_button_quality" in page and "positive_value=good" in page


@pytest.mark.django_db
def test_the_button_refuses_a_signal_name_taken_with_another_type(client: Client) -> None:
    project = make_project(name="clash", texts=TEXTS)
    signal_define(name="ann_clash_quality", step="other", step_version="1", dtype="bool")
    client.force_login(member(project, "cur", ProjectMember.Role.CURATOR))
    url = reverse("annotate:answer_signals", args=[project.slug])
    page = client.post(url, follow=True).content.decode()
    assert "Signals not written: the signal ann_clash_quality already exists with bool" in page
    assert 'id="answer-signals-error"' in page
    assert Signal.objects.get(name="ann_clash_quality").dtype == "bool"


@pytest.mark.django_db
def test_the_download_streams_one_line_per_item_with_answers_finals_and_suggestions(
    client: Client,
) -> None:
    project = make_project(name="dl", texts=TEXTS, questions=ALL_KINDS, add_items=False)
    a, b, c, d = (
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    items_add_pairs(project=project, pairs=[(a, b), (c, d)])
    ann, reviewer = member(project, "ann"), member(project, "rev", ProjectMember.Role.REVIEWER)
    answers = all_answers(text_length=len(TEXTS[0]))
    first = submit_next(project, ann, answers)
    final_answer(
        first, "quality", {"label": "bad"}, source=FinalAnswer.Source.CORRECTED, reviewer=reviewer
    )
    Suggestion.objects.create(
        project=project,
        item=first,
        question=project.questions.get(key="quality"),
        origin=Suggestion.Origin.CLASSIFIER,
        source="qc_x >= 0.5",
        values={"label": "good"},
        score=0.8,
    )
    client.force_login(reviewer)
    response = client.get(reverse("annotate:annotations_download", args=[project.slug]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="dl-annotations.jsonl"'
    lines = [json.loads(line) for line in response.getvalue().splitlines()]
    assert [line["item_id"] for line in lines] == sorted(i.pk for i in project.items.all())
    one, two = lines
    assert (one["project"], one["document_id"], one["second_document_id"]) == ("dl", "d0", "d1")
    assert (two["document_id"], two["second_document_id"], two["annotations"]) == ("d2", "d3", [])
    (given,) = one["annotations"]
    assert given["annotator"] == "ann" and given["time_spent_ms"] == 1500
    assert given["answers"] == answers and given["submitted_at"]
    assert one["final"]["quality"]["values"] == {"label": "bad"}
    assert one["final"]["quality"]["source"] == "corrected"
    assert one["final"]["quality"]["reviewer"] == "rev"
    assert one["suggestions"] == [
        {
            "question": "quality",
            "origin": "classifier",
            "source": "qc_x >= 0.5",
            "values": {"label": "good"},
            "score": 0.8,
        }
    ]


@pytest.mark.django_db
def test_the_export_reads_items_in_chunks_with_a_fixed_number_of_queries_each() -> None:
    small = make_project(name="small", texts=[f"t{i}" for i in range(3)])
    large = make_project(name="large", texts=[f"t{i}" for i in range(9)])
    for project in (small, large):
        for item in items_by_document(project):
            final_answer(item, "quality", {"label": "good"})
    counts = []
    for project in (small, large):
        with CaptureQueriesContext(connection) as queries:
            lines = list(annotation_export_lines(project=project, chunk_items=3))
        counts.append(len(queries))
        assert len(lines) == project.items.count()
    # 1 for the questions, 6 per chunk of 3 items, 1 to find no more: 8 and 20.
    assert counts == [1 + 6 + 1, 1 + 3 * 6 + 1]


@pytest.mark.django_db
def test_the_command_writes_the_same_lines_as_the_download(tmp_path: Path) -> None:
    project = make_project(name="cmd", texts=TEXTS)
    final_answer(items_by_document(project)[1], "quality", {"label": "good"})
    out = tmp_path / "ann.jsonl"
    stdout = StringIO()
    call_command("winnow_annotations_export", "--project", "cmd", "--out", str(out), stdout=stdout)
    assert f"4 item(s) of cmd written to {out}" in stdout.getvalue()
    assert out.read_bytes() == b"".join(annotation_export_lines(project=project))
    assert not list(tmp_path.glob(".*partial"))
    with pytest.raises(CommandError, match="no annotation project 'nope'"):
        call_command("winnow_annotations_export", "--project", "nope", "--out", str(out))
    with pytest.raises(CommandError, match="is not a folder"):
        call_command(
            "winnow_annotations_export",
            "--project",
            "cmd",
            "--out",
            str(tmp_path / "missing" / "x.jsonl"),
        )


def _answered_project() -> Any:
    questions = [q for q in ALL_KINDS if q["key"] in ("quality", "topics", "entities", "helpsteer")]
    project = make_project(name="exp", texts=TEXTS, questions=questions)
    first, second, *_ = items_by_document(project)
    answers = all_answers(text_length=len(TEXTS[0]))
    for key in ("quality", "topics", "entities", "helpsteer"):
        final_answer(first, key, answers[key])
    final_answer(second, "quality", {"label": "bad"})
    answer_signals_write(project=project)
    return project


@pytest.mark.django_db
def test_an_export_with_annotation_columns_loads_with_their_values_and_types(
    tmp_path: Path, client: Client
) -> None:
    import datasets

    project = _answered_project()
    client.force_login(member(project, "cur", ProjectMember.Role.CURATOR))
    url = reverse("export_list", args=[project.dataset.slug])
    assert "Annotation columns" in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "format": "parquet",
            "columns": ["id", "text"],
            "annotations": "on",
            "shard_rows": 100,
            "shard_mb": 16,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    snapshot = export_run(snapshot_id=ExportSnapshot.objects.get(dataset=project.dataset).pk)
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, snapshot.error
    ds = datasets.load_dataset(snapshot.path, split="train", cache_dir=str(tmp_path / "cache"))
    ann = [c for c in ds.column_names if c.startswith("ann_")]
    assert ds.column_names == ["id", "text", *ann]
    assert sorted(ann) == sorted(
        [
            "ann_exp_quality",
            "ann_exp_topics",
            "ann_exp_entities",
            "ann_exp_entities_count",
            *(
                f"ann_exp_helpsteer_{a}"
                for a in ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
            ),
        ]
    )
    types = {name: ds.features[name].dtype for name in ann}
    assert types["ann_exp_quality"] == "string" and types["ann_exp_topics"] == "string"
    assert types["ann_exp_entities_count"] == "int64"
    assert types["ann_exp_helpsteer_helpfulness"] == "float64"
    rows = {row["id"]: row for row in ds}
    assert rows["d0"]["ann_exp_quality"] == "good" and rows["d1"]["ann_exp_quality"] == "bad"
    assert rows["d2"]["ann_exp_quality"] is None
    assert json.loads(rows["d0"]["ann_exp_topics"]) == ["news", "chat"]
    assert json.loads(rows["d0"]["ann_exp_entities"]) == [{"start": 0, "end": 3, "label": "PER"}]
    assert (
        rows["d0"]["ann_exp_entities_count"] == 1 and rows["d1"]["ann_exp_entities_count"] is None
    )
    assert rows["d0"]["ann_exp_helpsteer_correctness"] == 3.0
    card = (Path(snapshot.path) / "README.md").read_text()
    assert "question 'quality' (single label): the label" in card


@pytest.mark.django_db(transaction=True)  # the command exports on another thread
def test_the_cli_adds_annotation_columns_and_says_when_there_are_none(tmp_path: Path) -> None:
    import datasets

    project = _answered_project()
    out = tmp_path / "snap"
    call_command(
        "winnow_export",
        "--dataset",
        project.dataset.name,
        "--out",
        str(out),
        "--format",
        "jsonl",
        "--columns",
        "id",
        "--with-annotations",
        "--no-progress",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.column_names[0] == "id" and len(ds.column_names) == 1 + 9
    assert {r["id"]: r["ann_exp_quality"] for r in ds} == {
        "d0": "good",
        "d1": "bad",
        "d2": None,
        "d3": None,
    }
    other = make_project(name="none", texts=TEXTS)
    with pytest.raises(CommandError, match="no annotation answers as signals yet"):
        call_command(
            "winnow_export",
            "--dataset",
            other.dataset.name,
            "--out",
            str(tmp_path / "none"),
            "--with-annotations",
        )
