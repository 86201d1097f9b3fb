"""Generator steps on a real Celery worker: records land once in the derived dataset."""

from __future__ import annotations

from typing import Any

import pytest

from curation.explorer import search_index_state
from curation.models import Dataset
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_create, run_dispatch
from tests.conftest import wait_for
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SCRIPTED = {"backend": "scripted", "model": "scripted-1"}
MODULES = "tests.pipelines.scripted_backend"


def finished(run_id: int) -> bool:
    return PipelineRun.objects.get(pk=run_id).is_finished


def test_a_worker_generates_into_the_derived_dataset_and_reruns_add_nothing(
    start_worker: Any, settings: Any
) -> None:
    settings.WINNOW_STEP_MODULES = [*settings.WINNOW_STEP_MODULES, MODULES]
    start_worker({"WINNOW_STEP_MODULES": ",".join(settings.WINNOW_STEP_MODULES)})
    source = make_dataset(name="seeds")
    texts = [f"Seed document number {i} about trains and owls" for i in range(11)]
    texts[4] = "MALFORMED seed document"
    texts[7] = "FLAKY seed document about rivers"
    ids = add_documents(source, texts)
    pipeline = make_pipeline(
        [{"step": "synth_instruct", "params": {"backend": SCRIPTED, "target": "seeds sft"}}],
        batch_size=4,
    )
    run = run_create(pipeline=pipeline, dataset=source)
    assert run_dispatch(run=run) == 3
    wait_for(lambda: finished(run.pk), timeout=120)
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")

    target = Dataset.objects.get(name="seeds sft")
    assert target.parent_id == source.pk and target.document_count == 10
    flaky = target.documents.get(meta__lineage__source_ids=[ids[7]])
    assert flaky.meta["instruction"] == "Summarise: FLAKY seed document about"
    assert flaky.meta["response"] == texts[7]
    lineage = flaky.meta["lineage"]
    assert lineage["generator"] == "synth_instruct" and lineage["template"]["name"] == "instruct"
    assert lineage["backend"]["model"] == "scripted-1" and lineage["run"] == run.pk
    assert lineage["source_external_ids"] == ["d7"]
    failed = signal_values(source.pk, "synth_instruct_failed")
    assert failed == {pk: int(pk == ids[4]) for pk in ids}
    # The generated dataset gets its full-text search index, as an import's does.
    wait_for(lambda: search_index_state(dataset_id=target.pk).status == "ready", timeout=60)

    # A batch run again (as after a lost lease) and a second run of the pipeline.
    batch = run.batches.order_by("first_document_id").first()
    assert batch is not None
    RunBatch.objects.filter(pk=batch.pk).update(status=RunBatch.Status.PENDING)
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.RUNNING)
    run.refresh_from_db()
    assert run_dispatch(run=run) == 1
    second = run_create(pipeline=pipeline, dataset=source)
    run_dispatch(run=second)
    wait_for(lambda: finished(run.pk) and finished(second.pk), timeout=120)
    assert PipelineRun.objects.get(pk=second.pk).status == PipelineRun.Status.SUCCEEDED
    target.refresh_from_db()
    assert target.document_count == 10 == target.documents.count()

    # The generated dataset then goes through dedup against its source, on the worker.
    (copy,) = add_documents(target, ["  " + texts[2].upper()], prefix="copy")
    check = make_pipeline([{"step": "source_dedup"}], name="against the seeds")
    overlap = run_create(pipeline=check, dataset=target)
    run_dispatch(run=overlap)
    wait_for(lambda: finished(overlap.pk), timeout=120)
    overlap.refresh_from_db()
    assert overlap.status == PipelineRun.Status.SUCCEEDED, overlap.batches.values_list("error")
    flags = signal_values(target.pk, "source_dedup_flag")
    assert len(flags) == 11 and flags[copy] is True
    assert overlap.results["source_dedup"]["flagged"] == sum(flags.values())
    assert signal_values(target.pk, "source_dedup_similarity")[copy] == 1.0
