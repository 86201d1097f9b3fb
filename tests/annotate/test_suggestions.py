"""Model suggestions: made set-based from signals, replaced on rerun, compared with humans."""

from __future__ import annotations

from typing import Any

import pytest

from annotate import agreement
from annotate.errors import ProjectError
from annotate.model_selectors import FINAL, POOLED, item_suggestions, model_agreement
from annotate.models import Annotation, AnnotationProject, FinalAnswer, Item, Question, Suggestion
from annotate.services.suggestions import (
    suggestions_create,
    suggestions_from_rule,
    suggestions_from_score,
)
from curation.models import Signal
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.factories import make_project, member

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad", "unsure"]}},
    {"key": "scores", "kind": "rating", "config": {"attributes": ["helpful", "clear"]}},
    {"key": "topics", "kind": "multi_label", "config": {"labels": ["news", "code"]}},
]


def _setup(values: list[Any], dtype: str = "float") -> tuple[AnnotationProject, list[Item], Signal]:
    """A project with one item per value and the signal ``score`` holding the values."""
    project = make_project(texts=[f"t{i}" for i in range(len(values))], questions=QUESTIONS)
    items = list(Item.objects.filter(project=project).order_by("document_id"))
    signal = signal_define(name=f"score_{dtype}", step="test", step_version="1", dtype=dtype)
    signal_values_write(
        signal=signal,
        dataset_id=project.dataset_id,
        values=[(i.document_id, v) for i, v in zip(items, values, strict=True)],
    )
    return project, items, signal


def _question(project: AnnotationProject, key: str) -> Question:
    return project.questions.get(key=key)


def _suggested(question: Question) -> dict[int, tuple[dict[str, Any], float | None]]:
    return {s.item_id: (s.values, s.score) for s in Suggestion.objects.filter(question=question)}


def test_a_signal_rule_labels_every_item_with_a_value_and_a_rerun_replaces() -> None:
    project, items, signal = _setup([0.9, 0.2, None, 0.5])
    quality = _question(project, "quality")
    made = suggestions_from_rule(
        project=project,
        question=quality,
        signal=signal,
        op=">=",
        value="0.5",
        label_true="good",
        label_false="bad",
    )
    assert (made.source, made.written, made.removed) == ("score_float >= 0.5", 3, 0)
    assert _suggested(quality) == {
        items[0].pk: ({"label": "good"}, 0.9),
        items[1].pk: ({"label": "bad"}, 0.2),
        items[3].pk: ({"label": "good"}, 0.5),
    }
    assert {s.origin for s in Suggestion.objects.all()} == {"signal_rule"}
    # New values: the same source is replaced in place; the item that lost its value
    # loses its suggestion; nothing is duplicated.
    signal_values_write(
        signal=signal,
        dataset_id=project.dataset_id,
        values=[(items[0].document_id, 0.1), (items[3].document_id, None)],
    )
    again = suggestions_from_rule(
        project=project,
        question=quality,
        signal=signal,
        op=">=",
        value=0.5,
        label_true="good",
        label_false="bad",
    )
    assert (again.written, again.removed) == (2, 1)
    assert _suggested(quality) == {
        items[0].pk: ({"label": "bad"}, 0.1),
        items[1].pk: ({"label": "bad"}, 0.2),
    }
    # Another rule is another source, kept beside the first.
    suggestions_from_rule(
        project=project,
        question=quality,
        signal=signal,
        op="<",
        value=0.15,
        label_true="bad",
        label_false="unsure",
    )
    assert Suggestion.objects.filter(question=quality).count() == 4


def test_rules_on_booleans_and_text_compare_with_equality() -> None:
    project, items, flag = _setup([True, False, None], dtype="bool")
    quality = _question(project, "quality")
    suggestions_from_rule(
        project=project,
        question=quality,
        signal=flag,
        op="==",
        value="true",
        label_true="bad",
        label_false="good",
    )
    assert _suggested(quality) == {
        items[0].pk: ({"label": "bad"}, None),
        items[1].pk: ({"label": "good"}, None),
    }
    with pytest.raises(ProjectError, match="compare with == or != only"):
        suggestions_from_rule(
            project=project,
            question=quality,
            signal=flag,
            op=">",
            value="1",
            label_true="bad",
            label_false="good",
        )
    with pytest.raises(ProjectError, match="value: 'maybe' is not a bool"):
        suggestions_from_rule(
            project=project,
            question=quality,
            signal=flag,
            op="==",
            value="maybe",
            label_true="bad",
            label_false="good",
        )


def test_a_score_threshold_picks_between_two_labels() -> None:
    project, items, signal = _setup([0.7, 0.69, 0.71])
    quality = _question(project, "quality")
    made = suggestions_from_score(
        project=project,
        question=quality,
        signal=signal,
        origin="judge",
        threshold=0.7,
        label_above="good",
        label_below="bad",
    )
    assert made.source == "score_float >= 0.7"
    assert [v["label"] for v, _ in _suggested(quality).values()] == ["good", "bad", "good"]
    assert set(Suggestion.objects.values_list("origin", flat=True)) == {"judge"}


def test_a_score_maps_linearly_onto_one_rating_attribute_clamped_to_the_scale() -> None:
    project, items, signal = _setup([0.0, 0.5, 1.0, 0.3, 1.7, -2.0])
    scores = _question(project, "scores")  # scale [0, 4]
    made = suggestions_from_score(
        project=project, question=scores, signal=signal, attribute="helpful"
    )
    assert made.source == "score_float [0, 1] -> helpful"
    got = [v["ratings"]["helpful"] for v, _ in _suggested(scores).values()]
    assert got == [0, 2, 4, 1, 4, 0]  # 0.3 -> 1.2 -> 1; 1.7 and -2 clamp
    # A score on [-2, 2] onto the same scale; halves round up (0.5 -> 2.5 -> 3).
    suggestions_from_score(
        project=project,
        question=scores,
        signal=signal,
        attribute="clear",
        score_low=-2,
        score_high=2,
    )
    clear = [
        s.values["ratings"]["clear"]
        for s in Suggestion.objects.filter(question=scores, source__endswith="clear").order_by(
            "item__document_id"
        )
    ]
    assert clear == [2, 3, 3, 2, 4, 0]


def test_suggestion_errors_name_the_field() -> None:
    project, _, signal = _setup([0.5])
    quality, scores, topics = (_question(project, k) for k in ("quality", "scores", "topics"))
    text = signal_define(name="lang", step="x", step_version="1", dtype="text")
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "label_true: 'great' is not a label",
            {
                "question": quality,
                "op": ">",
                "value": 1,
                "label_true": "great",
                "label_false": "bad",
            },
        ),
        (
            "op: '=~' is not one of",
            {
                "question": quality,
                "op": "=~",
                "value": 1,
                "label_true": "good",
                "label_false": "bad",
            },
        ),
        (
            "is multi_label; this source suggests",
            {
                "question": topics,
                "op": ">",
                "value": 1,
                "label_true": "news",
                "label_false": "code",
            },
        ),
    ]
    for message, options in cases:
        with pytest.raises(ProjectError, match=message):
            suggestions_create(project=project, mode="rule", signal=signal, **options)
    with pytest.raises(ProjectError, match="attribute: 'speed' is not an attribute"):
        suggestions_from_score(project=project, question=scores, signal=signal, attribute="speed")
    with pytest.raises(ProjectError, match="threshold: a single-label question needs"):
        suggestions_from_score(project=project, question=quality, signal=signal)
    with pytest.raises(ProjectError, match="holds text values, not scores"):
        suggestions_from_score(project=project, question=scores, signal=text, attribute="clear")
    with pytest.raises(ProjectError, match="high 0 must be above low 1"):
        suggestions_from_score(
            project=project,
            question=scores,
            signal=signal,
            attribute="clear",
            score_low=1,
            score_high=0,
        )
    other = make_project(name="other", questions=QUESTIONS)
    with pytest.raises(ProjectError, match="is not a question of"):
        suggestions_from_score(
            project=project,
            question=_question(other, "scores"),
            signal=signal,
            attribute="clear",
        )
    assert not Suggestion.objects.exists()


def test_item_suggestions_list_every_source_and_accept_the_first_label_and_all_ratings() -> None:
    project, items, signal = _setup([0.9])
    quality, scores = _question(project, "quality"), _question(project, "scores")
    for value, label in ((0.5, "good"), (0.95, "unsure")):
        suggestions_from_rule(
            project=project,
            question=quality,
            signal=signal,
            op=">=",
            value=value,
            label_true=label,
            label_false="bad",
        )
    suggestions_from_score(project=project, question=scores, signal=signal, attribute="clear")
    suggestions_from_score(project=project, question=scores, signal=signal, attribute="helpful")
    found = item_suggestions(item_id=items[0].pk, questions=project.questions.order_by("order"))
    assert [(r.question_key, r.answer) for r in found.rows] == [
        ("quality", "good"),
        ("quality", "bad"),
        ("scores", "clear 4"),
        ("scores", "helpful 4"),
    ]
    assert found.rows[0].source == "score_float >= 0.5" and found.rows[0].score == 0.9
    assert found.accept == {
        "quality": {"label": "good"},
        "scores": {"ratings": {"clear": 4, "helpful": 4}},
    }


def _answer(item: Item, user: Any, question: Question, values: dict[str, Any]) -> None:
    Annotation.objects.create(item=item, user=user, question=question, values=values, draft=False)


def test_model_agreement_gives_kappa_for_labels_against_each_human_and_the_final() -> None:
    project, items, signal = _setup([0.9, 0.8, 0.1, 0.2, 0.7, 0.3])
    quality = _question(project, "quality")
    suggestions_from_score(
        project=project,
        question=quality,
        signal=signal,
        threshold=0.5,
        label_above="good",
        label_below="bad",
    )
    model: list[str | None] = ["good", "good", "bad", "bad", "good", "bad"]
    ann: list[str | None] = ["good", "bad", "bad", "bad", "good", "good"]
    bob = ["good", "good", "bad", None, None, None]
    alice, bobby = member(project, "alice"), member(project, "bob")
    for item, a, b in zip(items, ann, bob, strict=True):
        _answer(item, alice, quality, {"label": a})
        if b:
            _answer(item, bobby, quality, {"label": b})
    Annotation.objects.create(
        item=items[5], user=bobby, question=quality, values={"label": "bad"}, draft=True
    )
    FinalAnswer.objects.create(
        project=project,
        item=items[0],
        question=quality,
        values={"label": "good"},
        source="accepted",
    )
    FinalAnswer.objects.create(
        project=project,
        item=items[1],
        question=quality,
        values={"label": "bad"},
        source="corrected",
    )
    rows = {r.against: r for r in model_agreement(project=project)}
    assert list(rows) == [POOLED, "alice", "bob", FINAL]
    assert all(r.suggested == 6 and r.metric == "Cohen's kappa" for r in rows.values())
    expected_alice = agreement.cohen_kappa(model, ann)
    assert rows["alice"].score == expected_alice and expected_alice.n == 6
    assert rows["bob"].score.value == 1.0 and rows["bob"].score.n == 3  # drafts not counted
    pooled = agreement.cohen_kappa(model + model[:3], ann + bob[:3])
    assert rows[POOLED].score == pooled and pooled.n == 9
    assert rows[FINAL].score.n == 2 and rows[FINAL].score.value == 0.0


def test_model_agreement_gives_alpha_and_mean_difference_for_ratings() -> None:
    project, items, signal = _setup([0.0, 0.25, 0.5, 1.0, 0.75])
    scores = _question(project, "scores")
    suggestions_from_score(project=project, question=scores, signal=signal, attribute="helpful")
    model = [0, 1, 2, 4]
    human = [0, 2, 2, 3]
    carol = member(project, "carol")
    for item, h in zip(items[:4], human, strict=True):
        _answer(item, carol, scores, {"ratings": {"helpful": h, "clear": 1}})
    rows = {r.against: r for r in model_agreement(project=project)}
    assert list(rows) == [POOLED, "carol"]
    row = rows["carol"]
    # The fifth item has a suggestion but no answer: counted as suggested, not compared.
    assert row.suggested == 5 and row.score.n == 4
    assert row.attribute == "helpful" and row.metric == "Krippendorff's alpha (interval)"
    expected = agreement.krippendorff_alpha(
        [[m, h] for m, h in zip(model, human, strict=True)], "interval"
    )
    assert row.score == expected and expected.value is not None and 0 < expected.value < 1
    assert row.mean_abs_diff is not None
    assert row.mean_abs_diff.value == pytest.approx(0.5) and row.mean_abs_diff.n == 4


def test_model_agreement_is_empty_without_suggestions() -> None:
    project, _, _ = _setup([0.5])
    assert model_agreement(project=project) == []
