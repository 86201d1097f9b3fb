from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pipelines.steps.registry  # noqa: F401  (registers the built-in steps)
from pipelines.steps.base import REGISTRY, Document, Step

TYPES: dict[str, tuple[type, ...]] = {
    "float": (float,),
    "int": (int,),
    "bool": (bool,),
    "text": (str,),
    "json": (list, dict, str, int, float, bool),
}
MIXED = [
    "The quick brown fox jumps over the lazy dog. " * 12,
    "",
    "   \n\n",
    "- item one\n- item two\n- item one\n",
    "Mail me at a@example.com or call +44 20 7946 0958. Card 4111 1111 1111 1111.",
    "Le chat dort sur le canapé. Il pleut depuis ce matin.",
    "function f() { return 1; }\nPlease enable JavaScript.",
    "x" * 3000,
]
BUILT_IN = sorted(name for name, cls in REGISTRY.items() if cls.__module__.startswith("pipelines."))
# Steps that cannot run on defaults alone get what they need here (models: see below).
PARAMS: dict[str, dict[str, Any]] = {"decontamination": {"eval_sets": ("registry-check",)}}
# Signal name prefixes that differ from the step's name.
PREFIXES = {
    "language_id": "lang",
    "hf_classifier": "classifier_",
    "perplexity": "perplexity",
    "grape_select": "grape_",
    "llm_judge": "judge_",
}


def tiny_causal_lm(path: Path) -> Path:
    """A byte-level BPE and a random 1-layer GPT-2: enough to check shapes and types."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(MIXED, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    eot = tokenizer.eos_token_id  # GPT-2's own 50256 is outside this vocabulary
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(autouse=True, scope="module")
def _model_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from tests.pipelines.test_hf_classifier import save_tiny

    PARAMS["perplexity"] = {"model": str(tiny_causal_lm(tmp_path_factory.mktemp("lm")))}
    lm = {"backend": "transformers", "model": PARAMS["perplexity"]["model"], "device": "cpu"}
    short = {"backend": lm, "template": "{{ text }}", "max_chars": 30, "max_new_tokens": 4}
    # Generator steps: the deterministic test backend (test_synth_transformers runs a model).
    import tests.pipelines.scripted_backend  # noqa: F401  (registers "scripted")

    generators = ("synth_instruct", "synth_qa", "synth_paraphrase", "synth_perturb")
    scripted = {"backend": {"backend": "scripted", "model": "scripted-1"}}
    PARAMS.update(dict.fromkeys(generators, scripted))
    PARAMS["hf_classifier"] = {
        "model": str(save_tiny(tmp_path_factory.mktemp("cls"), num_labels=3, seed=0))
    }
    # A one-judge panel on the same tiny LM: plain prompts short enough for its 64 positions.
    judge = {"name": "tiny", **lm}
    PARAMS["llm_judge"] = {**short, "judges": [judge], "chat": False, "max_retries": 0}
    del PARAMS["llm_judge"]["backend"]
    PARAMS["grape_select"] = {"model": PARAMS["perplexity"]["model"]}
    yield
    PARAMS.pop("llm_judge")
    PARAMS.pop("grape_select")
    PARAMS.pop("perplexity")
    for name in generators:
        PARAMS.pop(name)
    PARAMS.pop("hf_classifier")


@pytest.fixture(autouse=True)
def _eval_set_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny eval set for the decontamination step, in a data dir of the test's own."""
    (tmp_path / "evalsets").mkdir()
    (tmp_path / "evalsets" / "registry-check.jsonl").write_text(
        json.dumps({"id": "1", "text": "the quick brown fox jumps over the lazy dog"}) + "\n"
    )
    monkeypatch.setenv("WINNOW_DATA_DIR", str(tmp_path))


def make(name: str) -> Step:
    return REGISTRY[name](**PARAMS.get(name, {}))


def test_the_registry_module_registers_every_built_in_step() -> None:
    assert set(BUILT_IN) >= {
        "gopher_quality",
        "gopher_repetition",
        "c4_quality",
        "fineweb_quality",
        "doc_stats",
        "language_id",
        "pii",
    }


def plain(value: Any) -> bool:
    """Only what psycopg and JSON take as they are: no numpy scalars, no tuples."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and plain(v) for k, v in value.items())
    return False


@pytest.mark.parametrize("name", BUILT_IN)
def test_step_returns_its_declared_signals_for_every_document(name: str) -> None:
    cls = REGISTRY[name]
    step: Step = make(name)
    specs = step.signals()
    assert len({s.name for s in specs}) == len(specs)
    prefix = PREFIXES.get(name, f"{name}_")
    assert all(s.name.startswith(prefix) for s in specs)
    batch = [Document(id=i, text=text) for i, text in enumerate(MIXED)]
    out = step.run(batch)
    assert list(out) == [s.name for s in specs]
    for spec in specs:
        values = out[spec.name]
        assert len(values) == len(batch), spec.name
        for value in values:
            assert value is None or type(value) in TYPES[spec.dtype], (spec.name, value)
            assert plain(value), (spec.name, value)
    json.dumps(cls.describe())
    assert cls.version == "1"


def test_signal_names_are_unique_across_steps() -> None:
    seen: dict[str, str] = {}
    for name in BUILT_IN:
        for spec in make(name).signals():
            assert spec.name not in seen, (spec.name, name, seen.get(spec.name))
            seen[spec.name] = name
