from __future__ import annotations

import math
import random
import statistics
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.devices import DeviceError
from pipelines.steps.base import Document, StepParamError
from pipelines.steps.perplexity import Perplexity, PerplexityScorer, plan_windows
from tests.pipelines.corpus import docstrings

EOT = "<|endoftext|>"
N_POSITIONS = 128


@dataclass(frozen=True)
class TinyLM:
    path: Path  # tokenizer without BOS
    bos_path: Path  # the same model, its tokenizer adding a BOS
    held_out: tuple[str, ...]
    tokenizer: Any
    model: Any


def tiny_gpt2_config(tokenizer: Any, **extra: Any) -> Any:
    """The tests' 2-layer GPT-2 shape (width 64, N_POSITIONS) on ``tokenizer``'s vocabulary."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=N_POSITIONS,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def random_gpt2(tokenizer: Any, path: Path, *, seed: int) -> Any:
    """A random 2-layer GPT-2 (weights std 0.3) on ``tokenizer``, saved with it to ``path``.

    The trained tiny model answers every prompt greedily with newlines; random weights
    this large give varied continuations, some ending at EOS early. Returns the model.
    """
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(tiny_gpt2_config(tokenizer, initializer_range=0.3)).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> TinyLM:
    """A byte-level BPE and a 2-layer GPT-2 (n_positions 128) trained for ~100 steps on prose."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    docs = [d for d in docstrings() if len(d) > 200]
    random.Random(0).shuffle(docs)
    held_out, train = tuple(d[:400] for d in docs[:24]), docs[24:]

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        train,
        trainers.BpeTrainer(
            vocab_size=1000,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOT)
    stream = torch.tensor(
        [i for ids in tokenizer(train)["input_ids"] for i in [*ids, tokenizer.eos_token_id]]
    )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than 2 on the shared cores
    try:
        torch.manual_seed(0)
        config = tiny_gpt2_config(tokenizer)
        config.loss_type = "ForCausalLM"  # silences "loss_type=None ... unrecognized"
        model = GPT2LMHeadModel(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(100):
            starts = torch.randint(0, len(stream) - 65, (16,)).tolist()
            x = torch.stack([stream[s : s + 64] for s in starts])
            loss = model(input_ids=x, labels=x).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()

    path = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    bos_path = tmp_path_factory.mktemp("tiny-gpt2-bos")
    model.save_pretrained(bos_path)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", special_tokens=[(EOT, tokenizer.eos_token_id)]
    )
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOT, bos_token=EOT).save_pretrained(
        bos_path
    )
    return TinyLM(path, bos_path, held_out, tokenizer, model)


def batch(*texts: str, meta: list[dict[str, Any]] | None = None) -> list[Document]:
    metas = meta or [{} for _ in texts]
    return [
        Document(id=i, text=t, meta=m) for i, (t, m) in enumerate(zip(texts, metas, strict=True))
    ]


def token_count(lm: TinyLM, text: str) -> int:
    return len(lm.tokenizer(text)["input_ids"])


def direct_logprob(lm: TinyLM, ids: list[int], first: int) -> float:
    """Mean log-probability of ``ids[first:]`` from one plain forward pass over ``ids``."""
    import torch

    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    picked = logprobs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    return float(picked[first - 1 :].mean())


def test_gibberish_and_shuffled_words_score_higher_than_held_out_prose(tiny_lm: TinyLM) -> None:
    rng = random.Random(1)
    prose = list(tiny_lm.held_out)
    shuffled = []
    for text in prose:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    alphabet = string.ascii_letters + string.digits + string.punctuation + "  "
    gibberish = ["".join(rng.choice(alphabet) for _ in range(len(t))) for t in prose]

    out = Perplexity(model=str(tiny_lm.path)).run(batch(*prose, *shuffled, *gibberish))[
        "perplexity"
    ]
    n = len(prose)
    p, s, g = out[:n], out[n : 2 * n], out[2 * n :]
    assert all(isinstance(v, float) and v > 1 for v in out)
    assert statistics.median(g) > 1.5 * statistics.median(p)
    assert statistics.median(s) > 1.05 * statistics.median(p)
    assert sum(a > b for a, b in zip(g, p, strict=True)) == n
    assert sum(a > b for a, b in zip(s, p, strict=True)) >= 0.8 * n


def test_scores_match_a_plain_forward_pass(tiny_lm: TinyLM) -> None:
    text = tiny_lm.held_out[0]
    ids = tiny_lm.tokenizer(text)["input_ids"]
    assert len(ids) < N_POSITIONS
    out = Perplexity(model=str(tiny_lm.path)).run(batch(text))
    assert out["perplexity_tokens"] == [len(ids) - 1]
    assert out["perplexity_logprob"][0] == pytest.approx(direct_logprob(tiny_lm, ids, 1), rel=1e-4)
    assert out["perplexity"][0] == pytest.approx(math.exp(-out["perplexity_logprob"][0]))


def test_batched_and_one_by_one_scores_agree(tiny_lm: TinyLM) -> None:
    texts = [*tiny_lm.held_out[:8], "Short one.", "\n\n".join(tiny_lm.held_out[8:13])]
    # A small token budget: several padded batches, rows of different lengths side by side.
    together = Perplexity(model=str(tiny_lm.path), batch_tokens=300).run(batch(*texts))
    step = Perplexity(model=str(tiny_lm.path))
    for i, text in enumerate(texts):
        alone = step.run(batch(text))
        assert alone["perplexity_tokens"][0] == together["perplexity_tokens"][i]
        assert alone["perplexity_logprob"][0] == pytest.approx(
            together["perplexity_logprob"][i], rel=1e-3
        )


def test_long_documents_are_scored_in_windows(tiny_lm: TinyLM) -> None:
    text = "\n\n".join(tiny_lm.held_out[:6])
    tokens = token_count(tiny_lm, text)
    assert tokens > 3 * N_POSITIONS

    # Default max_length 1024 and stride 512 are clipped to the model's 128 and 64.
    default = PerplexityScorer.load(str(tiny_lm.path))
    assert (default.max_length, default.stride) == (N_POSITIONS, 64)
    batches = default.plan(*default.encode([text]))
    assert sum(len(b.input_ids) for b in batches) > 3
    assert max(b.input_ids.shape[1] for b in batches) <= N_POSITIONS

    results = {
        stride: Perplexity(model=str(tiny_lm.path), stride=stride).run(batch(text))
        for stride in (16, 512, 1024)
    }
    logprobs = [r["perplexity_logprob"][0] for r in results.values()]
    assert all(r["perplexity_tokens"] == [tokens - 1] for r in results.values())
    assert all(math.isfinite(lp) for lp in logprobs)
    assert max(logprobs) - min(logprobs) < 0.1 * abs(statistics.mean(logprobs))


@pytest.mark.parametrize(
    ("length", "first", "max_length", "stride"),
    [
        (1, 1, 8, 4),
        (10, 1, 8, 4),
        (100, 1, 16, 5),
        (100, 40, 16, 16),
        (37, 0, 2, 1),
        (50, 3, 50, 9),
    ],
)
def test_windows_score_every_token_once(
    length: int, first: int, max_length: int, stride: int
) -> None:
    windows = plan_windows(length, first, max_length, stride)
    scored = [t for _, start, end in windows for t in range(start, end)]
    assert scored == list(range(max(first, 1), length))
    for begin, start, end in windows:
        assert begin < start < end <= length and end - begin <= max_length
    for begin, start, _ in windows[1:]:
        assert start - begin == max(1, max_length - stride) or begin == 0


def test_a_bos_token_makes_the_first_token_scored(tiny_lm: TinyLM) -> None:
    text = tiny_lm.held_out[2]
    out = Perplexity(model=str(tiny_lm.bos_path)).run(batch(text))
    assert out["perplexity_tokens"] == [token_count(tiny_lm, text)]


def test_conditional_perplexity_scores_only_the_response(tiny_lm: TinyLM) -> None:
    prompt, response = tiny_lm.held_out[3][:150], " " + tiny_lm.held_out[4][:150]
    prompt_ids = tiny_lm.tokenizer(prompt)["input_ids"]
    response_ids = tiny_lm.tokenizer(response)["input_ids"]
    assert len(prompt_ids + response_ids) <= N_POSITIONS
    step = Perplexity(model=str(tiny_lm.path), prompt_field="prompt", prefix="cond")
    docs = batch(response, response, response, meta=[{"prompt": prompt}, {}, {"prompt": 3}])
    out = step.run(docs)

    assert out["cond_tokens"] == [len(response_ids), None, None]
    expected = direct_logprob(tiny_lm, prompt_ids + response_ids, len(prompt_ids))
    assert out["cond_logprob"][0] == pytest.approx(expected, rel=1e-4)
    plain = Perplexity(model=str(tiny_lm.path)).run(batch(response))
    assert plain["perplexity_tokens"] == [len(response_ids) - 1]
    assert abs(plain["perplexity_logprob"][0] - out["cond_logprob"][0]) > 1e-3


def test_nothing_to_score_gives_none(tiny_lm: TinyLM) -> None:
    assert token_count(tiny_lm, "a") == 1
    out = Perplexity(model=str(tiny_lm.path)).run(batch("", "a", "Some words here."))
    assert out["perplexity"][:2] == [None, None]
    assert out["perplexity_logprob"][:2] == [None, None]
    assert out["perplexity_tokens"][:2] == [None, None]
    assert isinstance(out["perplexity"][2], float)


def test_bad_models_and_parameters_are_refused(tiny_lm: TinyLM, tmp_path: Path) -> None:
    with pytest.raises(StepParamError, match="'model'"):
        Perplexity()
    with pytest.raises(StepParamError, match="'prefix'"):
        Perplexity(model=str(tiny_lm.path), prefix="Bad-Prefix")
    with pytest.raises(StepParamError, match="'stride'"):
        Perplexity(model=str(tiny_lm.path), max_length=64, stride=65)
    with pytest.raises(DeviceError, match="not a directory"):
        Perplexity(model=str(tmp_path / "missing")).run(batch("text"))
    with pytest.raises(DeviceError, match="cannot be loaded as a causal LM"):
        Perplexity(model=str(tmp_path)).run(batch("text"))


@pytest.mark.django_db
def test_a_pipeline_writes_the_signals_of_two_perplexity_steps(tiny_lm: TinyLM) -> None:
    from curation.models import Signal
    from pipelines.models import PipelineRun
    from pipelines.services.runs import run_create
    from tests.curation.factories import make_dataset, signal_values
    from tests.pipelines.factories import add_documents, make_pipeline, run_all

    dataset = make_dataset()
    texts = [*tiny_lm.held_out[:5], "", "\n\n".join(tiny_lm.held_out[5:9])]
    ids = add_documents(dataset, texts)
    pipeline = make_pipeline(
        [
            {"step": "perplexity", "params": {"model": str(tiny_lm.path)}},
            {
                "step": "perplexity",
                "params": {"model": str(tiny_lm.bos_path), "prefix": "ppl_bos", "stride": 32},
            },
        ],
        batch_size=4,
    )

    run = run_all(run_create(pipeline=pipeline, dataset=dataset))

    assert run.status == PipelineRun.Status.SUCCEEDED
    assert run.stages == [[0, 1]]
    for prefix, first_scored in (("perplexity", 1), ("ppl_bos", 0)):
        values = {s: signal_values(dataset.pk, s) for s in (prefix, f"{prefix}_logprob")}
        tokens = signal_values(dataset.pk, f"{prefix}_tokens")
        assert set(tokens) == set(ids)
        for pk, text in zip(ids, texts, strict=True):
            if not text:
                assert tokens[pk] is None and values[prefix][pk] is None
                continue
            assert tokens[pk] == token_count(tiny_lm, text) - first_scored
            ppl, logprob = values[prefix][pk], values[f"{prefix}_logprob"][pk]
            assert ppl == pytest.approx(math.exp(-logprob))
        assert Signal.objects.get(name=prefix).step == "perplexity"
