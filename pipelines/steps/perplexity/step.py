"""The ``perplexity`` step: parameters checked, signals named, documents scored by the scorer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipelines.devices import DTYPES
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register
from pipelines.steps.perplexity.scorer import PerplexityScorer

PREFIX = re.compile(r"[a-z][a-z0-9_]*\Z")
DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)\Z")


@register
class Perplexity(Step):
    """Per-document perplexity under a causal LM, in sliding windows; optionally conditional.

    Signals ``<prefix>``, ``<prefix>_logprob`` and ``<prefix>_tokens`` (the prefix lets two
    perplexity steps with different models share a pipeline). With ``prompt_field`` set, the
    text is a response to ``meta[prompt_field]``: only its tokens are scored, the prompt is
    context; a document without a string there gets None. A document with nothing to score
    (empty text, one token) gets None for all three.
    """

    name = "perplexity"
    version = "1"
    description = "Perplexity of each document under a causal language model (sliding windows)."
    device = "gpu"
    params = (
        Param("model", str, "", "Hugging Face id or local path of a causal LM (required)"),
        Param("device", str, "auto", "auto (a GPU when visible, else the CPU), cpu, cuda, cuda:N"),
        Param(
            "dtype",
            str,
            "auto",
            "auto (bfloat16 on a GPU, float32 on the CPU), float32, float16 or bfloat16",
            choices=DTYPES,
        ),
        Param(
            "max_length",
            int,
            1024,
            "tokens per window (clipped to the model's context)",
            minimum=2,
        ),
        Param("stride", int, 512, "tokens newly scored by each window after the first", minimum=1),
        Param("batch_tokens", int, 16384, "padded tokens per forward pass", minimum=1),
        Param("prefix", str, "perplexity", "signal name prefix, [a-z][a-z0-9_]*"),
        Param("prompt_field", str, "", "meta key of the prompt for conditional perplexity"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        where = f"step {self.name!r}, parameter"
        if not self.config["model"].strip():
            raise StepParamError(
                f"{where} 'model': a model is required (a Hugging Face id or a local path)"
            )
        if not DEVICE.match(self.config["device"]):
            raise StepParamError(
                f"{where} 'device': {self.config['device']!r} is not auto, cpu, cuda or cuda:N"
            )
        if not PREFIX.match(self.config["prefix"]):
            raise StepParamError(
                f"{where} 'prefix': {self.config['prefix']!r} must be lowercase letters, digits "
                "and underscores, starting with a letter"
            )
        if self.config["stride"] > self.config["max_length"]:
            raise StepParamError(
                f"{where} 'stride': {self.config['stride']} is above max_length "
                f"{self.config['max_length']}: tokens would be skipped"
            )

    def signals(self) -> list[SignalSpec]:
        prefix = self.config["prefix"]
        model = self.config["model"]
        what = "response tokens" if self.config["prompt_field"] else "tokens"
        return [
            SignalSpec(prefix, "float", f"perplexity under {model}: exp(-mean log-probability)"),
            SignalSpec(f"{prefix}_logprob", "float", f"mean log-probability (natural) of {what}"),
            SignalSpec(f"{prefix}_tokens", "int", f"{what} scored"),
        ]

    def scorer(self) -> PerplexityScorer:
        config = self.config
        return PerplexityScorer.load(
            config["model"],
            device=config["device"],
            dtype=config["dtype"],
            max_length=config["max_length"],
            stride=config["stride"],
            batch_tokens=config["batch_tokens"],
        )

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        prefix = self.config["prefix"]
        field = self.config["prompt_field"]
        out: dict[str, list[Any]] = {
            prefix: [None] * len(batch),
            f"{prefix}_logprob": [None] * len(batch),
            f"{prefix}_tokens": [None] * len(batch),
        }
        todo = [
            i
            for i, doc in enumerate(batch)
            if doc.text and (not field or isinstance(doc.meta.get(field), str))
        ]
        if not todo:
            return out
        texts = [batch[i].text for i in todo]
        prompts = [batch[i].meta[field] for i in todo] if field else None
        for i, score in zip(todo, self.scorer().score(texts, prompts), strict=True):
            if score.tokens:
                out[prefix][i] = score.perplexity
                out[f"{prefix}_logprob"][i] = score.logprob
                out[f"{prefix}_tokens"][i] = score.tokens
        return out
