"""The llm_judge step with real models through the real transformers backend, in-process and on
a Celery worker (with grape_select in the same pipeline), values read from the signal table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.steps.judge import EDUCATIONAL_TEMPLATE, LLMJudge
from tests.pipelines.test_judge import docs
from tests.pipelines.test_perplexity import TinyLM, tiny_lm

__all__ = ["tiny_lm"]  # the trained tiny GPT-2 fixture, GRAPE's target in the worker test

EOT = "<|endoftext|>"

# Real models: tiny GPT-2s whose every next token is one fixed token, so a judge built on one
# answers exactly that (with max_new_tokens=1) through the real transformers backend.


def constant_lm(path: Path, answer: str, *, width: int = 16) -> Path:
    """A byte-level BPE and a 1-layer GPT-2 (2048 positions, two heads of ``width / 2``)
    that always predicts ``answer``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([EDUCATIONAL_TEMPLATE] * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOT)
    target = tokenizer.convert_tokens_to_ids(answer)
    assert isinstance(target, int)
    assert tokenizer.decode([target]) == answer
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=2048,
        n_embd=width,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        # The final layer norm outputs its bias alone; the tied output embedding scores it.
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 10.0
        model.transformer.wte.weight[:, 0] = 0.0
        model.transformer.wte.weight[target, 0] = 10.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def constant_judges(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return [
        {
            "name": "three",
            "backend": "transformers",
            "model": str(constant_lm(tmp_path_factory.mktemp("three"), "3")),
            "device": "cpu",
        },
        {
            "name": "junk",
            "backend": "transformers",
            "model": str(constant_lm(tmp_path_factory.mktemp("junk"), "x")),
            "device": "cpu",
        },
    ]


def test_real_transformers_judges_answer_and_retry(constant_judges: list[dict[str, Any]]) -> None:
    step = LLMJudge(judges=constant_judges, max_new_tokens=1, max_retries=2, aggregation="min")
    assert step.device == "gpu"
    texts = ["Photosynthesis turns light into sugar.", "", "Buy now! " * 50]
    out = step.run(docs(*texts))

    assert out["judge_score"] == [3.0, 3.0, 3.0]
    assert out["judge_per_judge"] == [{"three": 3.0, "junk": None}] * 3
    assert out["judge_malformed"] == [3, 3, 3]
    assert out["judge_failed"] == [1, 1, 1]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_grape_and_a_judge_panel_into_the_signal_table(
    start_worker: Any, settings: Any, tiny_lm: TinyLM, constant_judges: list[dict[str, Any]]
) -> None:
    from curation.models import Document as DocumentRow
    from pipelines.models import PipelineRun
    from pipelines.services.runs import run_create, run_dispatch
    from tests.conftest import wait_for
    from tests.curation.factories import make_dataset, signal_values
    from tests.pipelines.factories import make_pipeline
    from tests.pipelines.test_grape import candidates_for, direct

    worker = start_worker({"WINNOW_STEP_MODULES": ",".join(settings.WINNOW_STEP_MODULES)})
    dataset = make_dataset()
    instruction, candidates = candidates_for(tiny_lm)
    metas = [{"responses": candidates}, {"responses": candidates[:2]}, {}, {"responses": "bad"}]
    rows = DocumentRow.objects.bulk_create(
        DocumentRow(
            dataset=dataset,
            external_id=f"d{i}",
            text=instruction,
            meta=meta,
            content_hash=i,
            char_count=len(instruction),
            word_count=len(instruction.split()),
            line_count=1,
        )
        for i, meta in enumerate(metas)
    )
    ids = [r.pk for r in rows]
    pipeline = make_pipeline(
        [
            {"step": "grape_select", "params": {"model": str(tiny_lm.path)}},
            {
                "step": "llm_judge",
                "params": {"judges": constant_judges, "max_new_tokens": 1, "max_retries": 1},
            },
        ],
        batch_size=3,
    )
    run = run_create(pipeline=pipeline, dataset=dataset)
    run_dispatch(run=run)

    wait_for(lambda: PipelineRun.objects.get(pk=run.pk).is_finished, timeout=180)
    assert PipelineRun.objects.get(pk=run.pk).status == PipelineRun.Status.SUCCEEDED, (
        worker.output()[-3000:]
    )
    expected = [direct(tiny_lm, instruction, c)[0] for c in candidates]
    index = signal_values(dataset.pk, "grape_index")
    logprob = signal_values(dataset.pk, "grape_logprob")
    # Raw SQL through Django's connection returns jsonb as its text.
    scores = {k: v and json.loads(v) for k, v in signal_values(dataset.pk, "grape_scores").items()}
    errors = signal_values(dataset.pk, "grape_error")
    assert index == {
        ids[0]: 2,
        ids[1]: max((0, 1), key=lambda i: expected[i]),
        ids[2]: None,
        ids[3]: None,
    }
    assert logprob[ids[0]] == pytest.approx(expected[2], rel=1e-4)
    assert [s["logprob"] for s in scores[ids[0]]] == pytest.approx(expected, rel=1e-4)
    assert errors[ids[2]] is None and "expected a list" in errors[ids[3]]

    assert signal_values(dataset.pk, "judge_score") == dict.fromkeys(ids, 3.0)
    per_judge = signal_values(dataset.pk, "judge_per_judge")
    assert {k: json.loads(v) for k, v in per_judge.items()} == dict.fromkeys(
        ids, {"three": 3.0, "junk": None}
    )
    assert signal_values(dataset.pk, "judge_malformed") == dict.fromkeys(ids, 2)
    assert signal_values(dataset.pk, "judge_failed") == dict.fromkeys(ids, 1)
