"""The fast encoder, the vector store and the ``embed`` step through the real runner."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from curation.services.vectors import (
    vector_dir,
    vectors_load,
    vectors_missing,
    vectors_write,
)
from pipelines.devices import DEFAULT_EMBEDDING_MODEL, resolve_model_path
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_create
from pipelines.steps.embedding import Embed, encoder_for
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents, make_pipeline, run_all

WORDS = (
    "the data set holds pages about rivers mountains code tests birds music trains "
    "weather bread maps clocks letters gardens ships lamps"
).split()


def texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 120))) for _ in range(count)]


@pytest.fixture(scope="module")
def reference() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model_path(DEFAULT_EMBEDDING_MODEL), device="cpu")


def test_encoder_matches_sentence_transformers_in_input_order(reference: Any) -> None:
    batch = [
        *texts(40),
        "",
        "<script>alert(1)</script> é ü ß ✓ 漢字",
        "word " * 20_000,  # far past max_seq_length: cut, as sentence-transformers cuts
        " \n\t ",
    ]
    ours = encoder_for(DEFAULT_EMBEDDING_MODEL).encode(batch)
    expected = reference.encode(batch, normalize_embeddings=True)
    assert ours.shape == expected.shape == (len(batch), 384)
    assert ours.dtype == np.float32
    cosine = (ours * expected).sum(axis=1)
    assert cosine.min() >= 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_encoder_results_do_not_depend_on_batching() -> None:
    encoder = encoder_for(DEFAULT_EMBEDDING_MODEL)
    batch = texts(30, seed=1)
    together = encoder.encode(batch)
    alone = np.stack([encoder.encode([t])[0] for t in batch])
    assert np.abs(together - alone).max() < 1e-4


def test_encoder_names_a_model_it_cannot_load(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="could not be loaded|no fast"):
        encoder_for(str(tmp_path / "no-such-model"))


def test_vector_store_skips_stored_ids_and_keeps_the_first_copy(settings: Any) -> None:
    model = "some/model"
    first = np.eye(4, dtype=np.float32)
    vectors_write(dataset_id=7, model=model, ids=[40, 10, 30, 20], vectors=first)
    assert vectors_missing(dataset_id=7, model=model, ids=[10, 20, 50, 60]) == [50, 60]
    # A racing writer stored id 20 again: readers keep one row per id.
    vectors_write(dataset_id=7, model=model, ids=[20, 50], vectors=np.ones((2, 4)))
    loaded = vectors_load(dataset_id=7, model=model)
    assert loaded.ids.tolist() == [10, 20, 30, 40, 50]
    assert loaded.vectors.dtype == np.float16
    assert loaded.vectors[0].tolist() == [0, 1, 0, 0]  # id 10 was the second input row
    assert len(vectors_load(dataset_id=7, model=model, ids=[30, 99])) == 1
    # An interrupted write leaves only a hidden partial file, which readers ignore.
    (vector_dir(dataset_id=7, model=model) / ".x.npy.partial").write_bytes(b"junk")
    assert len(vectors_load(dataset_id=7, model=model)) == 5


@pytest.mark.django_db
def test_embed_step_stores_vectors_once_and_then_only_new_documents() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, texts(25, seed=2))
    pipeline = make_pipeline([{"step": "embed"}], batch_size=10)
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")
    stored = vectors_load(dataset_id=dataset.pk, model=DEFAULT_EMBEDDING_MODEL)
    assert stored.ids.tolist() == sorted(ids)
    expected = encoder_for(DEFAULT_EMBEDDING_MODEL).encode(
        [t for _, t in sorted(zip(ids, texts(25, seed=2), strict=True))]
    )
    assert ((stored.vectors.astype(np.float32) * expected).sum(axis=1)).min() > 0.999
    directory = vector_dir(dataset_id=dataset.pk, model=DEFAULT_EMBEDDING_MODEL)
    shards = sorted(p.name for p in directory.glob("*.ids.npy"))

    run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert sorted(p.name for p in directory.glob("*.ids.npy")) == shards

    new = add_documents(dataset, ["a new page about trains", "about bread"], prefix="new")
    run_all(run_create(pipeline=pipeline, dataset=dataset))
    added = set(p.name for p in directory.glob("*.ids.npy")) - set(shards)
    assert len(added) == 1
    assert np.load(directory / added.pop()).tolist() == sorted(new)
    assert len(vectors_load(dataset_id=dataset.pk, model=DEFAULT_EMBEDDING_MODEL)) == 27


@pytest.mark.django_db
def test_embed_step_with_a_missing_model_fails_the_batch_with_the_reason(tmp_path: Any) -> None:
    dataset = make_dataset()
    add_documents(dataset, texts(3))
    pipeline = make_pipeline([{"step": "embed", "params": {"model": str(tmp_path / "gone")}}])
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.FAILED
    error = run.batches.get(status=RunBatch.Status.FAILED).error
    assert "could not be loaded" in error


def test_embed_step_is_a_gpu_step_keyed_by_model_and_length() -> None:
    assert Embed.device == "gpu"
    assert Embed().vector_model() == DEFAULT_EMBEDDING_MODEL
    assert Embed(max_length=64).vector_model() == f"{DEFAULT_EMBEDDING_MODEL}@64"
