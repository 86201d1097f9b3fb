"""Generator steps with the real transformers backend on a tiny causal LM made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.models import Dataset
from pipelines.generation.base import GenerationParams
from pipelines.generation.registry import backend_from_config
from pipelines.models import PipelineRun
from pipelines.services.runs import run_create
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all
from tests.pipelines.test_perplexity import (  # noqa: F401  (its tokenizer)
    TinyLM,
    random_gpt2,
    tiny_lm,
)


@pytest.fixture(scope="module")
def random_lm(tiny_lm: TinyLM, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A random 2-layer GPT-2 on the tiny tokenizer: varied, non-empty continuations."""
    path = tmp_path_factory.mktemp("synth-gpt2")
    random_gpt2(tiny_lm.tokenizer, path, seed=1)
    return path


@pytest.mark.django_db
def test_a_pipeline_generates_with_a_transformers_model(random_lm: Path) -> None:
    backend = {"backend": "transformers", "model": str(random_lm), "device": "cpu"}
    common = {"backend": backend, "template": "{{ text }}", "max_new_tokens": 12}
    source = make_dataset(name="seeds")
    texts = ["The river flooded the fields", "Owls hunt at night", "Bread rises after kneading"]
    ids = add_documents(source, texts)
    pipeline = make_pipeline(
        [
            {"step": "synth_paraphrase", "params": {**common, "min_chars": 1, "target": "rw"}},
            {"step": "synth_qa", "params": {**common, "target": "qa"}},
        ]
    )
    run = run_all(run_create(pipeline=pipeline, dataset=source))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")

    # A random model writes no question/answer JSON: every reply is counted, none made up.
    assert Dataset.objects.get(name="qa").documents.count() == 0
    assert signal_values(source.pk, "synth_qa_failed") == dict.fromkeys(ids, 1)

    made = signal_values(source.pk, "synth_paraphrase_records")
    failed = signal_values(source.pk, "synth_paraphrase_failed")
    assert all(made[pk] + failed[pk] == 1 for pk in ids) and sum(made.values()) >= 1
    model = backend_from_config(backend)
    greedy = GenerationParams(max_new_tokens=12, temperature=0.0, seed=0)
    matched = 0
    for record in Dataset.objects.get(name="rw").documents.all():
        lineage = record.meta["lineage"]
        (source_id,) = lineage["source_ids"]
        assert lineage["backend"] == model.describe()
        assert lineage["backend"]["backend"] == "transformers"
        assert lineage["params"]["max_new_tokens"] == 12
        # Greedy decoding: the record is what the model writes for its document's prompt,
        # sent as a user chat message (or, if that reply was empty, for the retry).
        message = {"role": "user", "content": texts[ids.index(source_id)]}
        first = model.generate([[message]], greedy)[0].text.strip().replace("\x00", "")
        assert record.text == first or not first
        matched += record.text == first
    assert matched >= 1
