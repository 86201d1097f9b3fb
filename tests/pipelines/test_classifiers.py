"""The in-app quality classifier: train from signal labels on stored vectors, apply as a signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.test import Client

from curation.models import Dataset, Signal
from curation.services.signals import signal_define, signal_values_write
from curation.services.vectors import vectors_load, vectors_write
from pipelines.devices import DEFAULT_EMBEDDING_MODEL as MODEL
from pipelines.models import QualityClassifier
from pipelines.services.classifiers import (
    ClassifierError,
    classifier_apply,
    classifier_apply_execute,
    classifier_apply_queue,
    classifier_train,
    label_sets,
)
from tests.conftest import wait_for
from tests.curation.factories import UserFactory, make_dataset, signal_values
from tests.pipelines.factories import add_documents

GOOD = {"positive": {"signal": "test_good", "op": "==", "value": True}, "negative": "rest"}


@dataclass
class Labelled:
    dataset: Dataset
    ids: list[int]  # every document
    vectors: np.ndarray  # the vectors stored, one per id in ``ids[:with_vectors]``
    good: np.ndarray  # the hidden class of each document
    labelled: list[int]  # ids that have a test_good value


def labelled_dataset(
    *,
    n: int = 240,
    labelled: int = 200,
    with_vectors: int | None = None,
    separable: bool = True,
    dim: int = 16,
    seed: int = 0,
) -> Labelled:
    """Documents with unit vectors in two shards; ``labelled`` of them have signal test_good.

    Separable: the good documents lie on one side of the first axis, the others on the
    other. Not separable: the vectors say nothing about the label.
    """
    dataset = make_dataset(f"ds-{seed}-{separable}")
    ids = add_documents(dataset, [f"document {i}" for i in range(n)])
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.4
    vectors = rng.standard_normal((n, dim))
    if separable:
        vectors[:, 0] += np.where(good, 3.0, -3.0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = n if with_vectors is None else with_vectors
    half = stored // 2
    vectors_write(dataset_id=dataset.pk, model=MODEL, ids=ids[:half], vectors=vectors[:half])
    vectors_write(
        dataset_id=dataset.pk, model=MODEL, ids=ids[half:stored], vectors=vectors[half:stored]
    )
    signal = signal_define(name="test_good", step="test", step_version="1", dtype="bool")
    signal_values_write(
        signal=signal,
        dataset_id=dataset.pk,
        values=zip(ids[:labelled], good[:labelled].tolist(), strict=True),
    )
    return Labelled(dataset, ids, vectors[:stored], good, ids[:labelled])


pytestmark = pytest.mark.django_db


def test_separable_labels_give_high_cross_validated_precision_and_recall() -> None:
    data = labelled_dataset()
    classifier = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD
    )
    metrics = classifier.metrics
    assert metrics["counts"] == {
        "positive": int(data.good[:200].sum()),
        "negative": int((~data.good[:200]).sum()),
        "ambiguous": 0,
    }
    assert len(metrics["folds"]) == 5
    assert sum(f["positive"] + f["negative"] for f in metrics["folds"]) == 200
    assert metrics["mean"]["precision"] > 0.95 and metrics["mean"]["recall"] > 0.95
    assert metrics["mean"]["f1"] > 0.95 and metrics["mean"]["roc_auc"] > 0.99
    assert (classifier.version, classifier.signal_name) == (1, "qc_edu")
    assert len(classifier.weights) == 16 and classifier.weights[0] > 0


def test_labels_unrelated_to_the_vectors_give_chance_metrics() -> None:
    data = labelled_dataset(separable=False, seed=1)
    metrics = classifier_train(
        dataset=data.dataset, name="noise", embedding_model=MODEL, labels=GOOD
    ).metrics
    assert 0.3 < metrics["mean"]["roc_auc"] < 0.7
    assert metrics["mean"]["f1"] < 0.65


def test_a_retrain_makes_a_new_version_and_keeps_the_old_one() -> None:
    data = labelled_dataset()
    first = classifier_train(dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD)
    second = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD, c=0.1, folds=3
    )
    other = classifier_train(dataset=data.dataset, name="other", embedding_model=MODEL, labels=GOOD)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert len(second.metrics["folds"]) == 3
    assert QualityClassifier.objects.filter(name="edu").count() == 2


def test_rule_negatives_and_documents_in_both_sets() -> None:
    data = labelled_dataset()
    score = signal_define(name="test_score", step="test", step_version="1", dtype="float")
    # Scores 0.0, 0.01, ... 0.99 for the first 100 documents.
    signal_values_write(
        signal=score,
        dataset_id=data.dataset.pk,
        values=((d, i / 100) for i, d in enumerate(data.ids[:100])),
    )
    labels = {
        "positive": [{"signal": "test_score", "op": ">=", "value": 0.7}],
        "negative": {"signal": "test_score", "op": "<", "value": 0.75},
    }
    positive, negative, ambiguous = label_sets(dataset=data.dataset, labels=labels)
    assert positive.tolist() == data.ids[75:100]
    assert negative.tolist() == data.ids[:70]
    assert ambiguous == 5
    rest = label_sets(
        dataset=data.dataset,
        labels={"positive": {"signal": "test_score", "op": ">", "value": 0.9}, "negative": "rest"},
    )
    # The rest: the other documents with a score, not the unscored ones.
    assert rest[0].tolist() == data.ids[91:100] and rest[1].tolist() == data.ids[:91]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"positive": {"signal": "nope", "op": "==", "value": 1}, "negative": "rest"}, "no signal"),
        ({"positive": {"signal": "test_good", "op": "~", "value": True}, "negative": "rest"}, "op"),
        ({"positive": {"signal": "test_good", "op": ">", "value": True}, "negative": "rest"}, "=="),
        ({"positive": {"signal": "test_good", "op": "==", "value": 1}, "negative": "rest"}, "true"),
        ({"positive": {"signal": "test_good", "op": "==", "value": True}}, "expected"),
    ],
)
def test_bad_label_rules_are_refused_with_the_reason(labels: Any, message: str) -> None:
    data = labelled_dataset(n=20, labelled=20)
    with pytest.raises(ClassifierError, match=message):
        classifier_train(dataset=data.dataset, name="x", embedding_model=MODEL, labels=labels)


def test_too_few_labels_or_missing_vectors_are_refused_with_what_to_do() -> None:
    few = labelled_dataset(n=30, labelled=8, seed=2)
    with pytest.raises(
        ClassifierError, match=r"only \d (positive|negative) doc.*at least 5.*label more"
    ):
        classifier_train(dataset=few.dataset, name="x", embedding_model=MODEL, labels=GOOD)

    partial = labelled_dataset(n=100, labelled=100, with_vectors=90, seed=3)
    with pytest.raises(ClassifierError, match=r"10 of 100 labelled documents have no stored vec"):
        classifier_train(dataset=partial.dataset, name="x", embedding_model=MODEL, labels=GOOD)
    with pytest.raises(ClassifierError, match=r'embed step \(\{"step": "embed", "params": \{"m'):
        classifier_train(
            dataset=partial.dataset, name="x", embedding_model="other/model", labels=GOOD
        )
    assert not QualityClassifier.objects.exists()


def test_apply_scores_every_document_with_a_vector_and_a_rerun_replaces_the_values() -> None:
    from sklearn.linear_model import LogisticRegression

    data = labelled_dataset(n=240, labelled=200, with_vectors=230)
    classifier = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD
    )
    # A stale value from an earlier version on a document that has no vector now.
    signal = signal_define(
        name="qc_edu", step="quality_classifier", step_version="v0", dtype="float"
    )
    signal_values_write(signal=signal, dataset_id=data.dataset.pk, values=[(data.ids[-1], 0.5)])
    seen: list[tuple[int, int]] = []
    written = classifier_apply(
        classifier=classifier, dataset=data.dataset, progress=lambda *p: seen.append(p)
    )
    assert written == 230 and seen[-1] == (230, 230)
    values = {d: v for d, v in signal_values(data.dataset.pk, "qc_edu").items() if v is not None}
    assert sorted(values) == data.ids[:230]
    # The stored weights are the refit model's: its probabilities on the stored vectors.
    stored = vectors_load(dataset_id=data.dataset.pk, model=MODEL)
    labelled = np.isin(stored.ids, data.labelled)
    x = stored.vectors.astype(np.float32)
    reference = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(
        x[labelled], data.good[:200]
    )
    expected = reference.predict_proba(x)[:, 1]
    assert np.allclose([values[i] for i in stored.ids.tolist()], expected, atol=1e-4)
    assert Signal.objects.get(name="qc_edu").step_version == "v1"

    assert classifier_apply(classifier=classifier, dataset=data.dataset) == 230
    again = {d: v for d, v in signal_values(data.dataset.pk, "qc_edu").items() if v is not None}
    assert again == pytest.approx(values)


def test_apply_without_vectors_says_which_step_to_run() -> None:
    data = labelled_dataset()
    classifier = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD
    )
    empty = make_dataset("empty")
    with pytest.raises(ClassifierError, match="no stored vectors.*embed step"):
        classifier_apply(classifier=classifier, dataset=empty)


def test_the_apply_task_body_records_its_outcome_and_ignores_duplicates(
    django_capture_on_commit_callbacks: Any,
) -> None:
    data = labelled_dataset()
    classifier = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert classifier_apply_queue(classifier=classifier)
        assert not classifier_apply_queue(classifier=classifier)  # already queued
    assert len(callbacks) == 1 and classifier.status == QualityClassifier.Status.PENDING
    assert classifier_apply_execute(classifier_id=classifier.pk, dataset_id=data.dataset.pk) == 240
    assert classifier_apply_execute(classifier_id=classifier.pk, dataset_id=data.dataset.pk) is None
    classifier.refresh_from_db()
    assert classifier.status == QualityClassifier.Status.DONE
    assert classifier.documents_scored == 240 and classifier.applied_at is not None

    empty = make_dataset("empty")
    classifier_apply_queue(classifier=classifier, dataset=empty)
    assert classifier_apply_execute(classifier_id=classifier.pk, dataset_id=empty.pk) is None
    classifier.refresh_from_db()
    assert classifier.status == QualityClassifier.Status.FAILED
    assert "no stored vectors" in classifier.error


# -- pages ---------------------------------------------------------------------------------


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def train_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "edu",
        "embedding_model": MODEL,
        "positive_signal": "test_good",
        "positive_op": "==",
        "positive_value": "true",
        "negative": "rest",
        "folds": "5",
        "c": "1.0",
    }
    return {**data, **overrides}


def test_the_dataset_page_links_to_its_classifiers_and_login_is_required(
    user_client: Client, client: Client
) -> None:
    data = labelled_dataset(n=20, labelled=20)
    page = user_client.get(data.dataset.get_absolute_url()).content.decode()
    assert f'href="/datasets/{data.dataset.pk}/classifiers/"' in page
    listing = user_client.get(f"/datasets/{data.dataset.pk}/classifiers/").content.decode()
    assert f'<option value="{MODEL}"' in listing and "Train and cross-validate" in listing
    user_client.logout()
    assert user_client.get(f"/datasets/{data.dataset.pk}/classifiers/").status_code == 302


def test_train_form_errors_are_shown_on_their_fields(user_client: Client) -> None:
    data = labelled_dataset(n=20, labelled=20)
    url = f"/datasets/{data.dataset.pk}/classifiers/"
    bad = train_post(
        name="!!!",
        positive_value="maybe",
        negative="rule",
        embedding_model="not/stored",
        folds="1",
    )
    response = user_client.post(url, bad)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {
        "name",
        "embedding_model",
        "positive_value",
        "negative_signal",
        "negative_op",
        "folds",
    }
    body = response.content.decode()
    assert "enter true or false" in body and "has no letters or digits" in body
    # A service refusal (too few labels for the folds) is shown above the form.
    few = user_client.post(url, train_post(folds="20"))
    assert "at least 20 are needed" in few.content.decode()
    assert not QualityClassifier.objects.exists()


def test_training_shows_the_metrics_and_apply_queues_then_polling_stops(
    user_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    data = labelled_dataset()
    url = f"/datasets/{data.dataset.pk}/classifiers/"
    response = user_client.post(url, train_post(name="<b>edu</b>"))
    classifier = QualityClassifier.objects.get()
    assert response["Location"] == f"/classifiers/{classifier.pk}/"
    page = user_client.get(response["Location"]).content.decode()
    assert 'id="cv-metrics"' in page and "&lt;b&gt;edu&lt;/b&gt;" in page and "<b>edu" not in page
    assert f"{classifier.metrics['mean']['precision']:.3f}" in page
    assert "test_good == true" in page and "Apply to" in page
    assert "&lt;b&gt;edu&lt;/b&gt;" in user_client.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        applied = user_client.post(f"/classifiers/{classifier.pk}/apply/")
    assert applied.status_code == 302 and len(callbacks) == 1
    polling = user_client.get(applied["Location"], headers={"HX-Request": "true"})
    body = polling.content.decode()
    assert polling.status_code == 200 and 'hx-trigger="every 1s"' in body and "<html" not in body
    classifier_apply_execute(classifier_id=classifier.pk, dataset_id=data.dataset.pk)
    final = user_client.get(applied["Location"], headers={"HX-Request": "true"})
    assert final.status_code == 286
    assert "Applied" in final.content.decode() and "240" in final.content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_apply_task_runs_on_a_real_worker(start_worker: Any) -> None:
    start_worker(queues="cpu")
    data = labelled_dataset()
    classifier = classifier_train(
        dataset=data.dataset, name="edu", embedding_model=MODEL, labels=GOOD
    )
    assert classifier_apply_queue(classifier=classifier)

    def done() -> bool:
        classifier.refresh_from_db()
        return not classifier.is_applying

    wait_for(done)
    assert classifier.status == QualityClassifier.Status.DONE, classifier.error
    values = signal_values(data.dataset.pk, "qc_edu")
    assert sorted(values) == data.ids and all(0 <= v <= 1 for v in values.values())
