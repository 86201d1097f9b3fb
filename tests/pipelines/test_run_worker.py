"""Pipeline runs on real Celery worker processes over real Redis and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection

from curation.models import Signal
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_create, run_dispatch
from tests.conftest import wait_for
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def worker_env(settings: Any, **extra: str) -> dict[str, str]:
    return {"WINNOW_STEP_MODULES": ",".join(settings.WINNOW_STEP_MODULES), **extra}


def run_state(run_id: int) -> PipelineRun:
    return PipelineRun.objects.get(pk=run_id)


def test_a_dispatched_run_finishes_on_a_worker(start_worker: Any, settings: Any) -> None:
    start_worker(worker_env(settings))
    dataset = make_dataset()
    add_documents(dataset, [f"doc {i}" for i in range(35)])
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    assert run_dispatch(run=run) == 4

    wait_for(lambda: run_state(run.pk).is_finished)
    assert run_state(run.pk).status == PipelineRun.Status.SUCCEEDED


def test_kill_9_mid_run_then_a_new_worker_leaves_one_value_per_document(
    start_worker: Any, settings: Any
) -> None:
    """The kill may land mid-batch (its lease expires, the new worker resumes it) or
    between taking a message and claiming its batch (the message is lost: beat's
    stale check queues the batch again, called here as beat would)."""
    from pipelines.services.runs import runs_resume_stale

    settings.WINNOW_REQUEUE_AFTER_SECONDS = 3
    env = worker_env(settings, WINNOW_BATCH_LEASE_SECONDS="2")
    first = start_worker(env)
    dataset = make_dataset()
    ids = add_documents(dataset, [f"doc {i}" for i in range(200)])
    pipeline = make_pipeline([{"step": "test_slow", "params": {"seconds": 0.02}}])
    run = run_create(pipeline=pipeline, dataset=dataset)
    run_dispatch(run=run)

    wait_for(lambda: run.batches.filter(status=RunBatch.Status.DONE).count() >= 3, interval=0.02)
    first.kill()
    assert run.batches.exclude(status=RunBatch.Status.DONE).exists()

    start_worker(env)

    def finished() -> bool:
        runs_resume_stale()
        return run_state(run.pk).is_finished

    wait_for(finished, timeout=120, interval=1)
    assert run_state(run.pk).status == PipelineRun.Status.SUCCEEDED
    column = Signal.objects.get(name="test_slow_id").column_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count({column}), count(DISTINCT document_id), "
            f"bool_and({column} = document_id) FROM curation_signal_row WHERE dataset_id = %s",
            [dataset.pk],
        )
        assert cursor.fetchone() == (len(ids), len(ids), len(ids), True)


def test_a_corpus_phase_runs_on_the_worker_after_the_documents(
    start_worker: Any, settings: Any
) -> None:
    start_worker(worker_env(settings))
    dataset = make_dataset()
    add_documents(dataset, ["same text", "Same  text", "other"] * 5)
    pipeline = make_pipeline([{"step": "test_text_length"}, {"step": "exact_dedup"}])
    run = run_create(pipeline=pipeline, dataset=dataset)
    run_dispatch(run=run)

    wait_for(lambda: run_state(run.pk).is_finished)
    assert run_state(run.pk).status == PipelineRun.Status.SUCCEEDED
    corpus = run.batches.get(phase=RunBatch.Phase.CORPUS)
    assert corpus.status == RunBatch.Status.DONE
    from curation.models import DuplicateGroup

    sizes = sorted(DuplicateGroup.objects.filter(dataset=dataset).values_list("size", flat=True))
    assert sizes == [5, 10]


def test_gpu_batches_wait_for_a_gpu_worker(start_worker: Any, settings: Any) -> None:
    start_worker(worker_env(settings), queues="cpu")
    dataset = make_dataset()
    add_documents(dataset, ["a", "bb", "ccc"])
    pipeline = make_pipeline([{"step": "test_text_length"}, {"step": "test_on_gpu"}])
    run = run_create(pipeline=pipeline, dataset=dataset)
    assert run.stages == [[0], [1]]
    run_dispatch(run=run)

    wait_for(lambda: run.batches.filter(stage_index=0, status=RunBatch.Status.DONE).exists())
    time.sleep(2)
    assert run.batches.get(stage_index=1).status == RunBatch.Status.PENDING
    start_worker(worker_env(settings), queues="gpu")
    wait_for(lambda: run_state(run.pk).is_finished)
    assert run_state(run.pk).status == PipelineRun.Status.SUCCEEDED


def test_model_steps_run_on_a_worker_of_the_gpu_queue_alone(
    start_worker: Any, settings: Any
) -> None:
    """semantic_dedup embeds in its document batches and clusters in its corpus phase:
    both go to the gpu queue, so a worker listening on nothing else finishes the run."""
    from curation.services.vectors import vectors_load
    from pipelines.devices import DEFAULT_EMBEDDING_MODEL

    worker = start_worker(worker_env(settings, OMP_WAIT_POLICY="PASSIVE"), queues="gpu")
    dataset = make_dataset()
    ids = add_documents(dataset, [f"page {i} about {w}" for i, w in enumerate("ab" * 6)])
    pipeline = make_pipeline([{"step": "semantic_dedup"}], batch_size=5)
    run = run_create(pipeline=pipeline, dataset=dataset)
    run_dispatch(run=run)

    wait_for(lambda: run_state(run.pk).is_finished, timeout=120)
    assert run_state(run.pk).status == PipelineRun.Status.SUCCEEDED, worker.output()[-3000:]
    stored = vectors_load(dataset_id=dataset.pk, model=DEFAULT_EMBEDDING_MODEL)
    assert stored.ids.tolist() == sorted(ids)
    assert "semantic_dedup" in run_state(run.pk).results
    assert "embedded 5 documents" in worker.output()
