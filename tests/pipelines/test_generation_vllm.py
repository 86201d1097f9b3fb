"""The vLLM backend through the real vLLM engine; skipped where vllm is not installed.

vllm is an optional extra, so `make test` skips this file. `make test-vllm` builds an
environment of its own with vLLM's CPU build and runs it there (its engine starts in
~40 s on 2 cores); on a GPU host with `pip install 'winnow[vllm]'` it runs on the GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.generation.base import GenerationParams
from pipelines.generation.registry import backend_from_config
from pipelines.generation.vllm_backend import vllm_device
from tests.pipelines.test_perplexity import TinyLM, random_gpt2, tiny_lm

__all__ = ["tiny_lm"]  # the perplexity tests' fixture: a tiny GPT-2 and its BPE tokenizer

vllm = pytest.importorskip(
    "vllm", reason="vllm is an optional extra: `make test-vllm` runs this file with it"
)
# The CPU build's KV cache, in GiB (its default is 4): a tiny model needs little.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="module")
def model_dir(tiny_lm: TinyLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vllm-gpt2")
    random_gpt2(tiny_lm.tokenizer, path, seed=0)
    return path


def test_vllm_generates_in_order_with_counts_and_stop_strings(
    model_dir: Path, tiny_lm: TinyLM
) -> None:
    backend = backend_from_config(
        {
            "backend": "vllm",
            "model": str(model_dir),
            "gpu_memory_utilization": 0.3,
            "max_model_len": 128,
        }
    )
    device = vllm_device(vllm)
    assert backend.describe()["device"] == device
    assert backend.describe()["dtype"] == ("bfloat16" if device == "cuda" else "float32")
    prompts = [text[: 20 + 23 * i] for i, text in enumerate(tiny_lm.held_out[:6])]
    params = GenerationParams(max_new_tokens=24)
    together = backend.generate(prompts, params)
    # Prompt lengths all differ, so the counts show each result is its own prompt's.
    for prompt, result in zip(prompts, together, strict=True):
        assert result.prompt_tokens == len(tiny_lm.tokenizer(prompt)["input_ids"])
        assert result.finish_reason in ("stop", "length")
        if result.finish_reason == "length":
            assert result.completion_tokens == 24
    # One prompt alone, with and without a stop string taken from its own text (the same
    # batch both times: vLLM's bfloat16 results may depend on what else is batched).
    source = prompts[-1]
    (full,) = backend.generate([source], params)
    assert len(full.text) >= 6, f"too short to take a stop string from: {full!r}"
    stop = full.text[len(full.text) // 2 :][:3]
    (cut,) = backend.generate([source], GenerationParams(max_new_tokens=24, stop=(stop,)))
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < full.completion_tokens
    chat = backend.generate([[{"role": "user", "content": "hello"}]], params)[0]
    assert chat.text == backend.generate(["user: hello\nassistant:"], params)[0].text
    assert "role: content" in backend.describe()["chat_format"]


def test_a_judge_step_scores_through_vllm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The llm_judge step with a vllm judge: prompts rendered, generated and parsed end to end."""
    from pipelines.steps.judge import LLMJudge
    from tests.pipelines.test_judge import docs
    from tests.pipelines.test_judge_models import constant_lm

    judge = {
        "name": "three",
        "backend": "vllm",
        # vLLM's CPU attention wants heads of 32+ dimensions
        "model": str(constant_lm(tmp_path_factory.mktemp("three-vllm"), "3", width=64)),
        "max_model_len": 2048,
    }
    step = LLMJudge(judges=[judge], max_new_tokens=1, max_retries=1)
    out = step.run(docs("Photosynthesis turns light into sugar.", "Buy now! " * 50))
    assert out["judge_score"] == [3.0, 3.0]
    assert out["judge_per_judge"] == [{"three": 3.0}] * 2
    assert out["judge_failed"] == [0, 0]
