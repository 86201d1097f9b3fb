"""Agreement measures against published examples, the dashboard selector and its page."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from annotate.agreement import (
    INTERVAL,
    NOMINAL,
    ORDINAL,
    cohen_kappa,
    krippendorff_alpha,
    span_f1,
    span_f1_pairwise,
)
from annotate.models import Annotation, AnnotationProject, Assignment, Item, ProjectMember
from annotate.selectors import QuestionAgreement, project_agreement
from annotate.services.annotations import annotation_save_draft, annotation_submit
from annotate.services.assignments import assignment_next
from tests.annotate.factories import ALL_KINDS, LABEL_ONLY, all_answers, make_project, member

_: None = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
# observers (rows), twelve units (columns), values 1-5 with missing data.
PAPER_OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]
PAPER_UNITS = [list(unit) for unit in zip(*PAPER_OBSERVERS, strict=True)]


def test_kappa_matches_the_classic_two_by_two_example() -> None:
    # 50 items: both yes 20, both no 15, A yes/B no 5, A no/B yes 10 -> p_o .7, p_e .5.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    score = cohen_kappa(a, b)
    assert score.value == pytest.approx(0.4) and score.n == 50


def test_kappa_matches_sklearn_on_random_labels_and_drops_missing() -> None:
    rng = random.Random(7)
    a = [rng.choice("xyz") for _ in range(200)]
    b = [x if rng.random() < 0.6 else rng.choice("xyz") for x in a]
    assert cohen_kappa(a, b).value == pytest.approx(cohen_kappa_score(a, b))
    with_missing = cohen_kappa([*a, None, "x"], [*b, "y", None])
    assert with_missing.value == pytest.approx(cohen_kappa_score(a, b)) and with_missing.n == 200


def test_kappa_degenerate_cases_return_none_with_a_reason() -> None:
    one_label = cohen_kappa(["x", "x"], ["x", "x"])
    assert one_label.value is None and "one and the same label" in one_label.reason
    assert cohen_kappa([None], ["x"]).value is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(["x"], ["x", "y"])


@pytest.mark.parametrize(
    ("level", "expected"), [(NOMINAL, 0.743), (ORDINAL, 0.815), (INTERVAL, 0.849)]
)
def test_alpha_matches_krippendorffs_worked_example(level: str, expected: float) -> None:
    score = krippendorff_alpha(PAPER_UNITS, level)
    assert round(score.value or 0, 3) == expected
    assert score.n == 11  # the last unit has one value only


@pytest.mark.parametrize("level", [NOMINAL, ORDINAL, INTERVAL])
def test_alpha_is_one_for_perfect_agreement(level: str) -> None:
    units: list[list[Any]] = [[1, 1, None], [2, 2, 2], [3, None, 3], [0, 0, 0]]
    assert krippendorff_alpha(units, level).value == pytest.approx(1.0)


def test_alpha_ordinal_and_interval_weigh_near_misses_less_than_nominal() -> None:
    units = [[1, 2], [2, 3], [3, 4], [4, 4], [1, 1], [5, 5]]
    nominal = krippendorff_alpha(units, NOMINAL).value
    ordinal = krippendorff_alpha(units, ORDINAL).value
    interval = krippendorff_alpha(units, INTERVAL).value
    assert nominal is not None and ordinal is not None and interval is not None
    assert nominal < ordinal and nominal < interval


def test_alpha_degenerate_cases_return_none_with_a_reason() -> None:
    single = krippendorff_alpha([[1, None], [2], [None, None, 3]])
    assert single.value is None and "two or more ratings" in single.reason
    one_category = krippendorff_alpha([["a", "a"], ["a", "a", "a"]])
    assert one_category.value is None and "one category" in one_category.reason
    assert krippendorff_alpha([]).value is None
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(PAPER_UNITS, "ratio")


def test_span_f1_counts_exact_matches_only() -> None:
    a = {(0, 5, "PER"), (10, 15, "LOC"), (20, 25, "PER")}
    b = {(0, 5, "PER"), (10, 15, "PER"), (21, 25, "PER"), (30, 31, "LOC")}
    assert span_f1(a, b).value == pytest.approx(2 * 1 / 7)
    assert span_f1(a, a).value == 1.0
    assert span_f1(a, set()).value == 0.0
    assert span_f1(set(), set()).value is None


def test_span_f1_pairwise_averages_pairs_over_shared_items() -> None:
    spans = {
        "ann": {1: [(0, 5, "PER")], 2: [(3, 4, "LOC")]},
        "bob": {1: [(0, 5, "PER")], 2: [(3, 4, "LOC")]},
        "cat": {1: [(0, 4, "PER")], 3: [(9, 10, "PER")]},  # only item 1 is shared
    }
    # ann-bob 1.0, ann-cat 0.0, bob-cat 0.0 -> mean 1/3 over three pairs
    score = span_f1_pairwise(spans)
    assert score.value == pytest.approx(1 / 3) and score.n == 3
    assert span_f1_pairwise({"ann": {1: [(0, 1, "PER")]}, "bob": {2: []}}).value is None


# The selector and the page, on projects built with the factories.

Answers = Callable[[int], dict[str, Any]]


def _annotate(
    project: AnnotationProject, user: User, answers: Answers, time_spent_ms: int = 1000
) -> None:
    """``user`` submits ``answers(i)`` on every item they are handed (i: item's rank by id)."""
    rank = {
        pk: i
        for i, pk in enumerate(
            Item.objects.filter(project=project).order_by("id").values_list("id", flat=True)
        )
    }
    while (assignment := assignment_next(project=project, user=user)) is not None:
        annotation_submit(
            assignment=assignment,
            values=answers(rank[assignment.item_id]),
            time_spent_ms=time_spent_ms,
        )


def _by_key(questions: list[QuestionAgreement]) -> dict[str, dict[str, Any]]:
    return {
        qa.question.key: {row.label: row.score.value for row in qa.rows} | {"note": qa.note}
        for qa in questions
    }


def _label(labels: list[str], i: int) -> dict[str, Any]:
    return {"quality": {"label": labels[i % len(labels)]}}


@pytest.mark.django_db
def test_single_label_agreement_kappa_majority_and_counts() -> None:
    project = make_project(questions=LABEL_ONLY, k=2, texts=["t1", "t2", "t3", "t4", "t5"])
    labels = {"ann": ["good", "good", "bad", "bad"], "bob": ["good", "bad", "bad", "bad"]}
    for name, time_ms in (("ann", 1000), ("bob", 3000)):
        answers: Answers = functools.partial(_label, labels[name])
        _annotate(project, member(project, name), answers, time_ms)
    # The fifth item: both say "good".
    old = Assignment.objects.filter(user__username="bob").order_by("id").first()
    assert old is not None
    Assignment.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))

    result = project_agreement(project=project)
    # Units: (g,g) (g,b) (b,b) (b,b) (g,g): o_gg 4, o_gb = o_bg 1, o_bb 4; n_g = n_b = 5.
    # alpha = 1 - 9 * 2 / (2 * 5 * 5) = 0.64; kappa: p_o .8, p_e .48 -> .32 / .52.
    [question] = result.questions
    assert question.annotators == 2
    scores = {row.metric: row.score for row in question.rows}
    assert scores["Krippendorff's alpha (nominal)"].value == pytest.approx(0.64)
    assert scores["Cohen's kappa"].value == pytest.approx(0.32 / 0.52)
    assert scores["Cohen's kappa"].n == 5
    stats = {a.username: a for a in result.annotators}
    assert stats["ann"].items_done == 5 and stats["ann"].mean_time_ms == pytest.approx(1000)
    assert stats["bob"].mean_time_ms == pytest.approx(3000)
    assert stats["ann"].majority_share == pytest.approx(4 / 5) and stats["ann"].majority_items == 5
    counts = result.counts
    assert (counts.progress.total, counts.progress.complete) == (5, 5)
    assert counts.submissions == 10 and counts.submissions_24h == 9
    assert counts.throughput_per_hour == pytest.approx(9 / 24)


def _perfect(i: int) -> dict[str, Any]:
    """Answers that vary by item, so that two annotators giving them agree perfectly."""
    return {
        "quality": {"label": "good" if i % 2 else "bad"},
        "topics": {"labels": ["news"] if i % 2 else ["chat"]},
        "entities": {"spans": [{"start": 0, "end": i + 1, "label": "PER"}]},
        "helpsteer": {
            "ratings": {
                a: i for a in ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
            }
        },
        "preference": {"choice": "a" if i % 2 else "b", "strength": 1 + i % 2},
        "rewrite": {"text": f"text {i}"},
    }


@pytest.mark.django_db
def test_every_kind_gets_its_measure_and_drafts_do_not_count() -> None:
    project = make_project(questions=ALL_KINDS, k=3, texts=[f"some text {i}" for i in range(4)])
    for name in ("ann", "bob"):
        _annotate(project, member(project, name), _perfect)
    # A third annotator who disagrees on everything but has only saved drafts.
    assignment = assignment_next(project=project, user=member(project, "cat"))
    assert assignment is not None
    rank = list(Item.objects.order_by("id").values_list("id", flat=True)).index(assignment.item_id)
    annotation_save_draft(assignment=assignment, values=_perfect(rank + 1))
    assert Annotation.objects.filter(user__username="cat", draft=True).count() == 6

    result = project_agreement(project=project)
    scores = _by_key(result.questions)
    assert scores["quality"] == {"all annotators": 1.0, "the two annotators": 1.0, "note": ""}
    assert scores["topics"]["mean over labels"] == pytest.approx(1.0)
    assert scores["topics"]["code"] is None  # nobody ever picked it: one category only
    ratings = [v for k, v in scores["helpsteer"].items() if k != "note"]
    assert ratings == [pytest.approx(1.0)] * 5
    [preference] = [v for k, v in scores["preference"].items() if k != "note"]
    assert preference == pytest.approx(1.0)
    [spans] = [v for k, v in scores["entities"].items() if k != "note"]
    assert spans == 1.0
    assert scores["rewrite"] == {"note": "No agreement measure for free-text rewrites."}
    assert [(a.username, a.items_done) for a in result.annotators] == [("ann", 4), ("bob", 4)]


@pytest.mark.django_db
def test_disagreement_lowers_the_kind_specific_measures() -> None:
    project = make_project(questions=ALL_KINDS, k=2, texts=[f"some text {i}" for i in range(4)])
    _annotate(project, member(project, "ann"), _perfect)
    _annotate(project, member(project, "bob"), lambda i: _perfect(3 - i))
    scores = _by_key(project_agreement(project=project).questions)
    assert scores["quality"]["all annotators"] < 0
    [preference] = [v for k, v in scores["preference"].items() if k != "note"]
    [spans] = [v for k, v in scores["entities"].items() if k != "note"]
    assert preference < 0 and spans == 0.0


@pytest.mark.django_db
def test_dashboard_is_for_curators_and_escapes_labels(client: Client) -> None:
    topics = {"key": "topics", "kind": "multi_label", "config": {"labels": ["<i>news</i>", "chat"]}}
    questions = [topics if q["key"] == "topics" else q for q in ALL_KINDS]
    project = make_project(questions=questions, k=2)
    curator = member(project, "cur", ProjectMember.Role.CURATOR)
    annotator = member(project, "ann")
    answers = all_answers(text_length=5) | {"topics": {"labels": ["chat"]}}
    _annotate(project, annotator, lambda i: answers)
    url = reverse("annotate:project_dashboard", args=[project.slug])

    client.force_login(annotator)
    assert client.get(url).status_code == 403
    client.force_login(curator)
    detail = client.get(reverse("annotate:project_detail", args=[project.slug]))
    assert url in detail.content.decode()
    page = client.get(url).content.decode()
    assert "&lt;i&gt;news&lt;/i&gt;" in page and "<i>news" not in page
    assert "n/a: no item has two or more ratings" in page
    assert '<dd id="submissions">5</dd>' in page
    assert "<td>ann</td>" in page and "1 s" in page
    assert "No agreement measure for free-text rewrites." in page
