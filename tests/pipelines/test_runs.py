from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from curation.models import Signal
from pipelines.errors import PipelineDefinitionError
from pipelines.models import PipelineRun, RunBatch
from pipelines.selectors import run_progress
from pipelines.services.definitions import pipeline_update
from pipelines.services.runs import (
    run_batch_execute,
    run_cancel,
    run_create,
    run_resume,
)
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all

pytestmark = pytest.mark.django_db


def test_a_run_writes_every_signal_once_per_document() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, [f"doc {'x' * i}" for i in range(25)])
    pipeline = make_pipeline([{"step": "test_text_length", "params": {"scale": 2}}])

    run = run_all(run_create(pipeline=pipeline, dataset=dataset))

    assert run.status == PipelineRun.Status.SUCCEEDED
    assert run.batches.count() == 3
    assert run.stages == [[0]]
    assert [b.size for b in run.batches.order_by("first_document_id")] == [10, 10, 5]
    chars = signal_values(dataset.pk, "test_chars")
    assert chars == {pk: 2.0 * (4 + i) for i, pk in enumerate(ids)}
    assert signal_values(dataset.pk, "test_has_x")[ids[0]] is False
    signal = Signal.objects.get(name="test_chars")
    assert (signal.step, signal.step_version) == ("test_text_length", "1")
    assert run.definition[0]["params"] == {"scale": 2.0}
    assert [p.documents_done for p in run_progress(run=run)] == [25]


def test_running_a_batch_twice_changes_nothing() -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a", "b"])
    run = run_all(
        run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    )
    batch = run.batches.get()
    assert run_batch_execute(batch_id=batch.pk) is None
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (RunBatch.Status.DONE, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM curation_signal_row WHERE dataset_id = %s", [dataset.pk]
        )
        assert cursor.fetchone() == (2,)


def test_a_failing_document_is_named_and_the_batch_can_be_retried() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, ["fine", "also fine", "this one goes BOOM", "fine again"])
    pipeline = make_pipeline([{"step": "test_text_length"}, {"step": "test_explode"}], batch_size=2)
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))

    assert run.status == PipelineRun.Status.FAILED
    assert "1 batch(es) failed" in run.error
    failed = run.batches.get(status=RunBatch.Status.FAILED)
    assert (failed.failed_step_index, failed.failed_document_id) == (1, ids[2])
    assert "cannot handle document" in failed.error and "Traceback" in failed.error
    # Both steps run as one stage per batch: the failed batch wrote neither step's values.
    assert sorted(signal_values(dataset.pk, "test_chars")) == ids[:2]

    from curation.models import Document

    Document.objects.filter(pk=ids[2]).update(text="now harmless")
    assert run_resume(run=run, retry_failed=True) == 1
    run = run_all(run)
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert signal_values(dataset.pk, "test_words")[ids[2]] == 2
    assert len(signal_values(dataset.pk, "test_chars")) == 4


def test_a_cancelled_run_hands_out_no_more_batches() -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a"] * 30)
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    first = run.batches.order_by("id").first()
    assert first is not None
    run_batch_execute(batch_id=first.pk)
    assert run_cancel(run=run)
    assert all(
        run_batch_execute(batch_id=pk) is None
        for pk in run.batches.filter(status="pending").values_list("pk", flat=True)
    )
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.CANCELLED
    assert run.batches.filter(status=RunBatch.Status.DONE).count() == 1


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], "non-empty"),
        ([{"step": "nope"}], "no step named 'nope'"),
        ([{"step": "test_text_length", "params": {"scale": "big"}}], "expected float"),
        ([{"step": "test_text_length", "params": {"colour": 1}}], "unknown parameter"),
        ([{"step": "test_text_length"}, {"step": "test_text_length"}], "writes signal"),
    ],
)
def test_bad_definitions_are_refused_with_the_step_and_parameter(
    definition: Any, message: str
) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        make_pipeline(definition)


def test_the_version_rises_only_when_the_definition_changes() -> None:
    pipeline = make_pipeline([{"step": "test_text_length"}])
    same = pipeline_update(pipeline=pipeline, definition=[{"step": "test_text_length"}])
    assert same.version == 1
    changed = pipeline_update(
        pipeline=pipeline, definition=[{"step": "test_text_length", "params": {"scale": 3}}]
    )
    assert changed.version == 2
    assert changed.definition == [{"step": "test_text_length", "params": {"scale": 3.0}}]


def test_an_empty_dataset_run_succeeds_at_once() -> None:
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=make_dataset())
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert not run.batches.exists()


def test_consecutive_steps_of_one_device_form_a_stage() -> None:
    from pipelines.services.runs import plan_stages

    devices = ["cpu", "cpu", "gpu", "gpu", "cpu"]
    assert plan_stages([{"device": d} for d in devices]) == [[0, 1], [2, 3], [4]]
    assert plan_stages([]) == []


def test_a_stage_writes_all_its_steps_and_shares_progress() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, ["one x", "two", "three"])
    pipeline = make_pipeline([{"step": "test_text_length"}, {"step": "test_explode"}], batch_size=2)
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.stages == [[0, 1]]
    assert run.batches.count() == 2
    assert signal_values(dataset.pk, "test_words") == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
    assert signal_values(dataset.pk, "test_has_x")[ids[0]] is True
    assert [(p.step, p.documents_done) for p in run_progress(run=run)] == [
        ("test_text_length", 3),
        ("test_explode", 3),
    ]
