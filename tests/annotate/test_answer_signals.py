"""Final answers become signals on the documents: names, types, upserts, clears, agreement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from annotate.errors import ProjectError
from annotate.models import FinalAnswer
from annotate.services.answer_signals import answer_signal_specs, answer_signals_write
from annotate.services.items import items_add_pairs
from curation.errors import PermanentError
from curation.models import Document, Signal
from curation.services.recipes import recipe_preview
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.answer_factories import final_answer, items_by_document, submit_next
from tests.annotate.factories import ALL_KINDS, all_answers, make_project, member
from tests.curation.factories import signal_values

pytestmark = pytest.mark.django_db

TEXTS = ["Alice went home.", "Bob stayed here.", "Carol left early.", "Dan never came."]


def _values(project: Any, name: str) -> dict[int, Any]:
    """document id -> value (JSON decoded), leaving out documents where the signal has none."""
    raw = {d: v for d, v in signal_values(project.dataset_id, name).items() if v is not None}
    if Signal.objects.get(name=name).dtype == Signal.Dtype.JSON:
        return {d: json.loads(v) for d, v in raw.items()}
    return raw


def _rows(dataset_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM curation_signal_row WHERE dataset_id = %s", [dataset_id]
        )
        return int(cursor.fetchone()[0])


def test_every_question_kind_becomes_typed_signals_on_its_documents() -> None:
    project = make_project(name="Web Quality", texts=TEXTS, questions=ALL_KINDS)
    first, second, third, _ = items_by_document(project)
    for key, values in all_answers(text_length=len(TEXTS[0])).items():
        final_answer(first, key, values)
    final_answer(second, "quality", {"label": "bad"}, source=FinalAnswer.Source.CORRECTED)
    final_answer(
        second,
        "helpsteer",
        {
            "ratings": dict.fromkeys(
                ("helpfulness", "correctness", "coherence", "complexity", "verbosity"), 0
            )
        },
    )

    report = answer_signals_write(project=project)

    dtypes = dict(
        Signal.objects.filter(name__startswith="ann_web_quality_").values_list("name", "dtype")
    )
    assert dtypes == {
        "ann_web_quality_quality": "text",
        "ann_web_quality_topics": "json",
        "ann_web_quality_entities": "json",
        "ann_web_quality_entities_count": "int",
        "ann_web_quality_helpsteer_helpfulness": "float",
        "ann_web_quality_helpsteer_correctness": "float",
        "ann_web_quality_helpsteer_coherence": "float",
        "ann_web_quality_helpsteer_complexity": "float",
        "ann_web_quality_helpsteer_verbosity": "float",
        "ann_web_quality_preference": "text",
        "ann_web_quality_preference_strength": "int",
        "ann_web_quality_rewrite": "text",
    }
    a, b = first.document_id, second.document_id
    assert _values(project, "ann_web_quality_quality") == {a: "good", b: "bad"}
    assert _values(project, "ann_web_quality_topics") == {a: ["news", "chat"]}
    assert _values(project, "ann_web_quality_entities") == {
        a: [{"start": 0, "end": 3, "label": "PER"}]
    }
    assert _values(project, "ann_web_quality_entities_count") == {a: 1}
    assert _values(project, "ann_web_quality_helpsteer_helpfulness") == {a: 4.0, b: 0.0}
    assert _values(project, "ann_web_quality_helpsteer_verbosity") == {a: 2.0, b: 0.0}
    assert _values(project, "ann_web_quality_preference") == {a: "b"}
    assert _values(project, "ann_web_quality_preference_strength") == {a: 2}
    assert _values(project, "ann_web_quality_rewrite") == {a: "A better text."}
    assert third.document_id not in _values(project, "ann_web_quality_quality")
    assert report.final_answers["quality"] == 2 and report.final_answers["rewrite"] == 1
    assert report.rows_changed == 2 and report.rows_cleared == 0
    description = Signal.objects.get(name="ann_web_quality_preference").description
    assert "'preference'" in description and "first document (text A)" in description
    assert "reviewed final answers" in description and "agree" not in description


def test_running_twice_changes_nothing_and_a_changed_answer_replaces_the_value() -> None:
    project = make_project(name="twice", texts=TEXTS)
    items = items_by_document(project)
    for item, label in zip(items, ["good", "bad", "good"], strict=False):
        final_answer(item, "quality", {"label": label})
    # Another signal on the same documents must survive every write and clear.
    other = signal_define(name="other_score", step="test", step_version="1", dtype="float")
    signal_values_write(
        signal=other, dataset_id=project.dataset_id, values=[(i.document_id, 0.5) for i in items]
    )
    answer_signals_write(project=project)
    rows = _rows(project.dataset_id)
    again = answer_signals_write(project=project)
    assert (again.rows_changed, again.rows_cleared) == (0, 0)
    assert _rows(project.dataset_id) == rows == len(items)
    assert len(_values(project, "ann_twice_quality")) == 3

    final_answer(items[0], "quality", {"label": "bad"}, source=FinalAnswer.Source.CORRECTED)
    FinalAnswer.objects.filter(item=items[1]).delete()
    report = answer_signals_write(project=project)
    assert (report.rows_changed, report.rows_cleared) == (1, 1)
    assert _values(project, "ann_twice_quality") == {
        items[0].document_id: "bad",
        items[2].document_id: "good",
    }
    assert set(_values(project, "other_score").values()) == {0.5}
    assert len(_values(project, "other_score")) == len(items)


def test_pairs_write_on_their_first_document_and_the_latest_decision_wins() -> None:
    pairwise = [{"key": "pref", "kind": "pairwise", "config": {}}]
    project = make_project(name="pairs", texts=TEXTS, questions=pairwise, add_items=False)
    a, b, c, d = (
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    items_add_pairs(project=project, pairs=[(a, b), (a, c), (c, d)])
    ab, ac, cd = (
        project.items.get(document_id=x, second_document_id=y) for x, y in ((a, b), (a, c), (c, d))
    )
    final_answer(ac, "pref", {"choice": "b", "strength": 3})
    final_answer(ab, "pref", {"choice": "a", "strength": 1})  # decided later: it wins on a
    final_answer(cd, "pref", {"choice": "tie", "strength": 0})
    answer_signals_write(project=project)
    assert _values(project, "ann_pairs_pref") == {a: "a", c: "tie"}
    assert _values(project, "ann_pairs_pref_strength") == {a: 1, c: 0}


def test_unanimous_answers_count_only_when_asked_and_the_description_says_so() -> None:
    project = make_project(name="agree", texts=TEXTS, k=2)
    ann1, ann2 = member(project, "ann1"), member(project, "ann2")
    agreed = submit_next(project, ann1, {"quality": {"label": "good"}})
    assert submit_next(project, ann2, {"quality": {"label": "good"}}) == agreed
    split = submit_next(project, ann1, {"quality": {"label": "good"}})
    assert submit_next(project, ann2, {"quality": {"label": "bad"}}) == split
    reviewed = submit_next(project, ann1, {"quality": {"label": "good"}})
    assert submit_next(project, ann2, {"quality": {"label": "good"}}) == reviewed
    final_answer(reviewed, "quality", {"label": "bad"}, source=FinalAnswer.Source.CORRECTED)
    lonely = submit_next(project, ann1, {"quality": {"label": "good"}})  # one of k=2

    answer_signals_write(project=project)
    assert _values(project, "ann_agree_quality") == {reviewed.document_id: "bad"}

    report = answer_signals_write(project=project, include_agreed=True)
    assert _values(project, "ann_agree_quality") == {
        agreed.document_id: "good",
        reviewed.document_id: "bad",
    }
    assert lonely.document_id not in _values(project, "ann_agree_quality")
    assert report.agreed_answers == {"quality": 1} and report.final_answers == {"quality": 1}
    description = Signal.objects.get(name="ann_agree_quality").description
    assert "all of at least 2 annotators gave alike" in description

    answer_signals_write(project=project)  # without the flag: the unreviewed value goes
    assert _values(project, "ann_agree_quality") == {reviewed.document_id: "bad"}
    assert "alike" not in Signal.objects.get(name="ann_agree_quality").description


def test_a_recipe_filters_on_answer_signals() -> None:
    questions = [q for q in ALL_KINDS if q["key"] in ("quality", "helpsteer")]
    project = make_project(name="recipe", texts=TEXTS, questions=questions)
    items = items_by_document(project)
    ratings = all_answers(text_length=5)["helpsteer"]
    for item, label, helpfulness in zip(items, ["good", "good", "bad"], [4, 1, 4], strict=False):
        final_answer(item, "quality", {"label": label})
        final_answer(
            item, "helpsteer", {"ratings": {**ratings["ratings"], "helpfulness": helpfulness}}
        )
    answer_signals_write(project=project)
    rules = [
        {"signal": "ann_recipe_quality", "op": "==", "value": "good"},
        {"signal": "ann_recipe_helpsteer_helpfulness", "op": ">=", "value": 3},
    ]
    preview = recipe_preview(dataset=project.dataset, rules=rules, dedup={}, samples=0)
    # Kept: only the first document; the unanswered fourth fails both rules.
    assert (preview.total, preview.kept) == (4, 1)
    assert [o.alone for o in preview.rules] == [2, 2]


def test_long_names_are_cut_with_a_hash_and_clashing_names_are_refused() -> None:
    long_name = "a project with a very long name " * 5
    rating = [{"key": "r", "kind": "rating", "config": {"attributes": ["x" * 60, "y" * 60]}}]
    project = make_project(name=long_name, texts=TEXTS, questions=rating)
    names = [s.name for s in answer_signal_specs(project=project)]
    assert all(len(n) <= 100 and n.startswith("ann_a_project_with") for n in names)
    assert len(set(names)) == 2 and names == [s.name for s in answer_signal_specs(project=project)]

    clash = [
        {"key": "e", "kind": "spans", "config": {"labels": ["X"]}},
        {"key": "e_count", "kind": "single_label", "config": {"labels": ["x", "y"]}},
    ]
    project = make_project(name="clash", texts=TEXTS, questions=clash)
    with pytest.raises(ProjectError, match="ann_clash_e_count"):
        answer_signals_write(project=project)


def test_a_signal_name_taken_with_another_type_is_refused_with_what_to_do() -> None:
    project = make_project(name="taken", texts=TEXTS)
    signal_define(name="ann_taken_quality", step="x", step_version="1", dtype="float")
    final_answer(items_by_document(project)[0], "quality", {"label": "good"})
    with pytest.raises(
        PermanentError, match="already exists with float values, but the answers need text"
    ):
        answer_signals_write(project=project)


def test_the_management_command_writes_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(name="cli", texts=TEXTS)
    final_answer(items_by_document(project)[2], "quality", {"label": "good"})
    call_command("winnow_answer_signals", "--project", project.slug)
    out = capsys.readouterr().out
    assert "ann_cli_quality" in out and "quality: 1 final answer" in out
    assert list(_values(project, "ann_cli_quality").values()) == ["good"]
    with pytest.raises(Exception, match="no annotation project 'nope'"):
        call_command("winnow_answer_signals", "--project", "nope")
