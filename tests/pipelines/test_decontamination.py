from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.management import call_command

from curation.models import EvalSet
from pipelines.errors import PipelineDefinitionError
from pipelines.models import PipelineRun
from pipelines.services.runs import run_batch_execute, run_create
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all

pytestmark = pytest.mark.django_db

QUESTION = "Which river flows through the old town and past the stone bridge built by the monks"
ANSWER = "The Vltava river, which the locals also call the Moldau in older German texts"


@pytest.fixture
def eval_set(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> EvalSet:
    settings.DATA_DIR = tmp_path / "data"
    monkeypatch.setenv("WINNOW_DATA_DIR", str(settings.DATA_DIR))
    source = tmp_path / "bench.jsonl"
    source.write_bytes(
        orjson.dumps({"id": "q1", "question": QUESTION, "answer": ANSWER})
        + b"\n"
        + orjson.dumps({"id": "q2", "question": "Short one?", "answer": "Yes."})
        + b"\n{broken\n"
    )
    out = StringIO()
    call_command("winnow_evalset", str(source), "--name", "River QA", stdout=out)
    assert "2 items, 1 lines rejected" in out.getvalue()
    return EvalSet.objects.get(name="River QA")


def test_documents_sharing_13_grams_with_eval_items_are_flagged(eval_set: EvalSet) -> None:
    dataset = make_dataset()
    words = QUESTION.split()
    ids = add_documents(
        dataset,
        [
            "Blog post. " + " ".join(words[:13]).upper() + " and then some.",  # 13-gram, other case
            "Blog post. " + " ".join(words[:12]) + " and then some.",  # only 12 words in common
            f"A page that quotes the answer: {ANSWER}",
            "Is this the short one? Yes. It is.",  # a whole short item: "short one? yes."
            "Nothing to do with any benchmark at all, just prose about gardens.",
        ],
    )
    pipeline = make_pipeline(
        [{"step": "decontamination", "params": {"eval_sets": [eval_set.slug]}}]
    )
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.first().error  # type: ignore[union-attr]
    flags = signal_values(dataset.pk, "decontamination_flag")
    items = signal_values(dataset.pk, "decontamination_items")
    assert [flags[i] for i in ids] == [True, False, True, False, False]
    # Raw cursors hand jsonb back as text (Django's psycopg setup).
    assert orjson.loads(str(items[ids[0]])) == ["river-qa:q1"] and items[ids[1]] is None


def test_decontamination_needs_an_eval_set_and_its_file(tmp_path: Path, settings: Any) -> None:
    with pytest.raises(PipelineDefinitionError, match="evaluation set"):
        make_pipeline([{"step": "decontamination"}])
    dataset = make_dataset()
    add_documents(dataset, ["some text"])
    pipeline = make_pipeline(
        [{"step": "decontamination", "params": {"eval_sets": ["missing"]}}], name="d2"
    )
    run = run_create(pipeline=pipeline, dataset=dataset)
    batch = run_batch_execute(batch_id=run.batches.get().pk)
    assert batch is not None and batch.status == "failed"
    assert "upload the set first" in batch.error
