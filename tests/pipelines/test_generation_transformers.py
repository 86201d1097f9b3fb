from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.generation.backend_utils import plain_chat_text
from pipelines.generation.base import Generation, GenerationError, GenerationParams
from pipelines.generation.transformers_backend import TransformersBackend
from tests.pipelines.test_perplexity import TinyLM, random_gpt2, tiny_lm

__all__ = ["tiny_lm"]  # the perplexity tests' fixture: a tiny GPT-2 and its BPE tokenizer

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
GREEDY = GenerationParams(max_new_tokens=24)


@dataclass(frozen=True)
class LM:
    path: Path
    tokenizer: Any
    model: Any
    held_out: tuple[str, ...]


@pytest.fixture(scope="module")
def lm(tiny_lm: TinyLM, tmp_path_factory: pytest.TempPathFactory) -> LM:
    """The perplexity tests' tokenizer with a random 2-layer GPT-2 (weights std 0.3).

    The trained tiny model answers every prompt greedily with newlines; random weights this
    large give varied continuations, some ending at EOS within 24 tokens, so batched and
    one-by-one generation are compared on texts that differ.
    """
    path = tmp_path_factory.mktemp("random-gpt2")
    model = random_gpt2(tiny_lm.tokenizer, path, seed=0)
    return LM(path, tiny_lm.tokenizer, model, tiny_lm.held_out)


def prompts(lm: LM, count: int = 7) -> list[str]:
    """Held-out prose cut to different lengths, so batches need padding."""
    return [text[: 20 + 23 * i] for i, text in enumerate(lm.held_out[:count])]


def copy_model(lm: LM, target: Path, **changes: Any) -> Path:
    """The tiny model in ``target``, its tokenizer given a chat template or its config changed."""
    from transformers import AutoTokenizer, GenerationConfig

    shutil.copytree(lm.path, target)
    if "chat_template" in changes:
        tokenizer = AutoTokenizer.from_pretrained(target)
        tokenizer.chat_template = changes["chat_template"]
        tokenizer.save_pretrained(target)
    if "eos_token_id" in changes:
        config = GenerationConfig.from_pretrained(target)
        config.eos_token_id = changes["eos_token_id"]
        config.save_pretrained(target)
    return target


def reference(lm: LM, prompt: str, max_new_tokens: int) -> tuple[list[int], str]:
    """Greedy ids and text from a plain one-prompt ``model.generate`` call."""
    import torch

    ids = lm.tokenizer(prompt)["input_ids"]
    with torch.inference_mode():
        out = lm.model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=lm.tokenizer.eos_token_id,
        )
    generated = out[0, len(ids) :].tolist()
    eos = lm.tokenizer.eos_token_id
    body = generated[: generated.index(eos)] if eos in generated else generated
    return generated, lm.tokenizer.decode(body, skip_special_tokens=True)


def test_batched_greedy_equals_one_prompt_at_a_time(lm: LM) -> None:
    texts = prompts(lm)
    batched = TransformersBackend(str(lm.path), batch_size=3).generate(texts, GREEDY)
    single = TransformersBackend(str(lm.path), batch_size=1).generate(texts, GREEDY)
    assert batched == single
    assert {g.finish_reason for g in batched} == {"stop", "length"}
    for text, result in zip(texts, batched, strict=True):
        ids, expected = reference(lm, text, GREEDY.max_new_tokens)
        assert result.text == expected
        assert result.prompt_tokens == len(lm.tokenizer(text)["input_ids"])
        if result.finish_reason == "length":
            assert result.completion_tokens == GREEDY.max_new_tokens == len(ids)
        else:
            assert result.completion_tokens == ids.index(lm.tokenizer.eos_token_id) + 1


def test_batches_are_cut_by_the_token_budget_and_keep_the_order(lm: LM) -> None:
    texts = prompts(lm)
    # A budget of two rows of the longest prompt plus its new tokens: several batch widths.
    longest = max(len(lm.tokenizer(t)["input_ids"]) for t in texts)
    small = TransformersBackend(
        str(lm.path), max_batch_tokens=2 * (longest + GREEDY.max_new_tokens)
    )
    expected = [reference(lm, t, GREEDY.max_new_tokens)[1] for t in texts]
    assert [g.text for g in small.generate(texts, GREEDY)] == expected


def test_generation_stops_at_any_eos_id_of_the_generation_config(lm: LM, tmp_path: Path) -> None:
    text = prompts(lm)[2]
    ids, full = reference(lm, text, GREEDY.max_new_tokens)
    assert lm.tokenizer.eos_token_id not in ids[:6]
    # Models such as Llama 3 end on several ids: make the 6th generated token one of them.
    path = copy_model(lm, tmp_path / "eos", eos_token_id=[lm.tokenizer.eos_token_id, ids[5]])
    (result,) = TransformersBackend(str(path)).generate([text], GREEDY)
    assert result.finish_reason == "stop"
    assert result.completion_tokens == ids.index(ids[5]) + 1
    assert result.text == lm.tokenizer.decode(ids[: ids.index(ids[5])])
    assert full.startswith(result.text)

    ignoring = TransformersBackend(str(path), ignore_eos=True).generate([text], GREEDY)
    assert ignoring[0].completion_tokens == GREEDY.max_new_tokens
    assert ignoring[0].finish_reason == "length"


def test_stop_strings_cut_the_text_and_count_the_tokens_to_them(lm: LM) -> None:
    texts = prompts(lm, 4)
    backend = TransformersBackend(str(lm.path), batch_size=4)
    plain = backend.generate(texts, GREEDY)
    row = next(i for i, g in enumerate(plain) if g.finish_reason == "length")
    full = plain[row].text
    stop = next(
        full[i : i + 3]
        for i in range(4, len(full) - 3)
        if full.find(full[i : i + 3]) == i and full[i : i + 3].strip()
    )
    cut = full.index(stop)
    params = GenerationParams(max_new_tokens=GREEDY.max_new_tokens, stop=(stop, "\x00never"))
    stopped = backend.generate(texts, params)
    assert stopped[row].text == full[:cut]
    assert stopped[row].finish_reason == "stop"
    ids, _ = reference(lm, texts[row], GREEDY.max_new_tokens)
    needed = next(k for k in range(1, len(ids) + 1) if stop in lm.tokenizer.decode(ids[:k]))
    assert stopped[row].completion_tokens == needed < GREEDY.max_new_tokens
    # Rows without the stop string are untouched; one at a time gives the same.
    for before, after in zip(plain, stopped, strict=True):
        if stop not in before.text:
            assert after == before
    one = TransformersBackend(str(lm.path), batch_size=1).generate(texts, params)
    assert one == stopped


def test_chat_messages_use_the_tokenizer_chat_template(lm: LM, tmp_path: Path) -> None:
    path = copy_model(lm, tmp_path / "chat", chat_template=TEMPLATE)
    backend = TransformersBackend(str(path))
    assert backend.describe()["chat_format"] == "tokenizer chat template"
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": lm.held_out[0][:60]},
    ]
    rendered = f"<system> Answer briefly.\n<user> {lm.held_out[0][:60]}\n<assistant>"
    assert backend.encode([messages]) == [lm.tokenizer(rendered)["input_ids"]]
    chat, text = backend.generate([messages, rendered], GREEDY)
    assert chat == text
    assert chat.text == reference(lm, rendered, GREEDY.max_new_tokens)[1]


def test_without_a_template_messages_become_role_lines(lm: LM) -> None:
    backend = TransformersBackend(str(lm.path))
    assert "role: content" in backend.describe()["chat_format"]
    messages = [{"role": "user", "content": "What does a queue do?"}]
    assert plain_chat_text(messages) == "user: What does a queue do?\nassistant:"
    chat, text = backend.generate([messages, plain_chat_text(messages)], GREEDY)
    assert chat == text


def test_sampling_is_reproducible_with_a_seed(lm: LM) -> None:
    backend = TransformersBackend(str(lm.path))
    texts = prompts(lm, 3)

    def sample(seed: int) -> list[Generation]:
        return backend.generate(
            texts, GenerationParams(max_new_tokens=16, temperature=1.0, top_p=0.95, seed=seed)
        )

    first = sample(1)
    assert sample(1) == first
    assert [g.text for g in sample(2)] != [g.text for g in first]
    assert [g.text for g in first] != [g.text for g in backend.generate(texts, GREEDY)[:3]]


def test_bad_prompts_and_settings_are_refused(lm: LM, tmp_path: Path) -> None:
    backend = TransformersBackend(str(lm.path))
    long_prompt = " ".join(lm.held_out)
    with pytest.raises(GenerationError, match="prompt 1 has .* context of 128 tokens"):
        backend.generate(["short", long_prompt], GREEDY)
    with pytest.raises(GenerationError, match="prompt 0, message 0"):
        backend.generate([[{"role": "user"}]], GREEDY)  # type: ignore[list-item]
    with pytest.raises(GenerationError, match="prompt 1: expected a string"):
        backend.generate(["fine", 3], GREEDY)  # type: ignore[list-item]
    with pytest.raises(GenerationError, match="batch_size"):
        TransformersBackend(str(lm.path), batch_size=0)
    with pytest.raises(GenerationError, match="not a directory"):
        TransformersBackend(str(tmp_path / "missing"))
    with pytest.raises(GenerationError, match="cannot be loaded as a causal LM"):
        TransformersBackend(str(tmp_path))


def test_left_padded_batches_reserve_room_for_the_new_tokens() -> None:
    from pipelines.batching import padded_batches

    ids = [[1, 2], [3, 4, 5, 6], [7], [8, 9, 10]]
    batches = list(padded_batches(ids, batch_tokens=20, pad_id=0, left=True, reserve=6))
    # Width 4 + 6 reserved = 10 tokens a row: two rows per batch, longest first.
    assert [b[0].tolist() for b in batches] == [[1, 3], [0, 2]]
    first = batches[0][1]
    assert first["input_ids"].tolist() == [[3, 4, 5, 6], [0, 8, 9, 10]]
    assert first["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    assert batches[1][1]["input_ids"].tolist() == [[1, 2], [0, 7]]
    capped = list(padded_batches(ids, batch_tokens=1000, pad_id=0, left=True, max_rows=3))
    assert [len(b[0]) for b in capped] == [3, 1]
