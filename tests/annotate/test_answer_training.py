"""Final answers train the in-app quality classifier: answers -> text signal -> label rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from annotate.models import AnnotationProject, ProjectMember
from annotate.services.answer_signals import answer_signals_write
from curation.services.vectors import vectors_write
from pipelines.devices import DEFAULT_EMBEDDING_MODEL as MODEL
from pipelines.models import QualityClassifier
from pipelines.services.classifiers import ClassifierError, classifier_train, label_sets
from tests.annotate.answer_factories import final_answer, items_by_document
from tests.annotate.factories import make_project, member

SIGNAL = "ann_qc_quality"
GOOD_VS_REST = {"positive": {"signal": SIGNAL, "op": "==", "value": "good"}, "negative": "rest"}


@dataclass
class Answered:
    project: AnnotationProject
    good: set[int]  # documents whose final answer is "good"
    bad: set[int]
    unanswered: set[int]


def answered_project(*, n: int = 60, answered: int = 40, seed: int = 0) -> Answered:
    """n documents with vectors (good ones on one side of the first axis); ``answered`` of
    them have a reviewed final answer, written as signals."""
    project = make_project(name="qc", texts=[f"document {i}" for i in range(n)])
    items = items_by_document(project)
    ids = [item.document_id for item in items]
    rng = np.random.default_rng(seed)
    is_good = rng.random(n) < 0.5
    vectors = rng.standard_normal((n, 8))
    vectors[:, 0] += np.where(is_good, 3.0, -3.0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors_write(dataset_id=project.dataset_id, model=MODEL, ids=ids, vectors=vectors)
    for item, good in zip(items[:answered], is_good[:answered], strict=True):
        final_answer(item, "quality", {"label": "good" if good else "bad"})
    answer_signals_write(project=project)
    return Answered(
        project,
        good={d for d, g in zip(ids[:answered], is_good, strict=False) if g},
        bad={d for d, g in zip(ids[:answered], is_good, strict=False) if not g},
        unanswered=set(ids[answered:]),
    )


@pytest.mark.django_db
def test_text_rules_on_an_answer_signal_select_the_reviewed_documents_only() -> None:
    data = answered_project()
    dataset = data.project.dataset
    positive, negative, ambiguous = label_sets(dataset=dataset, labels=GOOD_VS_REST)
    assert (set(positive.tolist()), set(negative.tolist()), ambiguous) == (data.good, data.bad, 0)
    explicit = {
        "positive": {"signal": SIGNAL, "op": "==", "value": "good"},
        "negative": {"signal": SIGNAL, "op": "!=", "value": "good"},
    }
    positive, negative, _ = label_sets(dataset=dataset, labels=explicit)
    assert set(negative.tolist()) == data.bad and not data.unanswered & set(negative.tolist())
    with pytest.raises(ClassifierError, match="is text; 1 is not"):
        label_sets(
            dataset=dataset,
            labels={**GOOD_VS_REST, "positive": {**explicit["positive"], "value": 1}},
        )


@pytest.mark.django_db
def test_a_classifier_trained_on_final_answers_learns_them() -> None:
    data = answered_project()
    classifier = classifier_train(
        dataset=data.project.dataset, name="qc good", embedding_model=MODEL, labels=GOOD_VS_REST
    )
    counts = classifier.metrics["counts"]
    assert counts == {"positive": len(data.good), "negative": len(data.bad), "ambiguous": 0}
    assert classifier.metrics["mean"]["f1"] > 0.9 and classifier.metrics["mean"]["roc_auc"] > 0.95
    assert classifier.weights[0] > 0  # "good" lies on the positive side of the first axis


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_one_click_from_the_project_trains_the_classifier_on_a_label(
    page: Any, live_server: Any
) -> None:
    data = answered_project()
    member(data.project, "cur", ProjectMember.Role.CURATOR)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "cur")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}{data.project.get_absolute_url()}")
    assert page.locator("#answer-signals").inner_text().count(SIGNAL) == 1
    page.click("#classifier-links a:text('quality = good')")
    page.wait_for_selector("#train-form")
    assert page.input_value("select[name=positive_signal]") == SIGNAL
    assert page.input_value("select[name=positive_op]") == "=="
    assert page.input_value("input[name=positive_value]") == "good"
    assert page.input_value("select[name=negative]") == "rest"
    assert page.input_value("select[name=embedding_model]") == MODEL
    page.click("#train-form button[type=submit]")
    page.wait_for_url("**/classifiers/*/")
    classifier = QualityClassifier.objects.get()
    assert classifier.name == "qc-quality-good" and classifier.labels == GOOD_VS_REST
    assert classifier.metrics["counts"]["positive"] == len(data.good)
    assert "qc-quality-good" in page.inner_text("body")
