"""GRAPE response selection (``grape_select``): of an instruction's candidate responses, the one
the target model finds most probable.

A document is an instruction (its text, or ``meta[instruction_field]``) with candidate
responses in ``meta[responses_field]``, a list of strings. Each candidate is scored by the
perplexity step's conditional scorer (``PerplexityScorer``: the instruction and ``separator``
are context, only the response's tokens are scored, in windows and packed batches) under the
target model; every candidate of every document in the batch goes through one scoring call.
The chosen candidate has the highest mean log-probability per token (``by="mean"``, GRAPE's
length-normalised choice) or the highest total (``by="total"``); a tie goes to the first.

A document without candidates (no field, an empty list) gets None. One whose candidates are
not a list of strings, or whose instruction is missing, gets None and ``<prefix>_error``
saying what is wrong, so that one bad record does not stop the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register
from pipelines.steps.perplexity import PREFIX, Perplexity, PerplexityScorer

logger = logging.getLogger(__name__)

_SHARED = ("model", "device", "dtype", "max_length", "stride", "batch_tokens")


@register
class GrapeSelect(Step):
    """The candidate response with the highest conditional log-probability under a target LM.

    Signals: ``<prefix>_index`` (the chosen candidate, 0-based), ``<prefix>_scores`` (per
    candidate, in order: {"logprob": mean, "total": sum, "tokens": n}, or None for a candidate
    with no token to score), ``<prefix>_logprob`` (the chosen one's mean log-probability) and
    ``<prefix>_error`` (why a document could not be scored; None when it was, or had nothing).
    """

    name = "grape_select"
    version = "1"
    description = "Choose the response the target model finds most probable (GRAPE)."
    device = "gpu"
    params = (
        *(p for p in Perplexity.params if p.name in _SHARED),
        Param("responses_field", str, "responses", "meta key of the list of candidate responses"),
        Param("instruction_field", str, "", "meta key of the instruction ('': the text)"),
        Param("separator", str, "\n", "text between the instruction and a response"),
        Param(
            "chat_template",
            bool,
            False,
            "wrap the instruction in the model's chat template as a user turn",
        ),
        Param(
            "by",
            str,
            "mean",
            "mean (per token) or total log-probability",
            choices=("mean", "total"),
        ),
        Param("prefix", str, "grape", "signal name prefix, [a-z][a-z0-9_]*"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if not PREFIX.match(self.config["prefix"]):
            raise StepParamError(
                f"step {self.name!r}, parameter 'prefix': {self.config['prefix']!r} must be "
                "lowercase letters, digits and underscores, starting with a letter"
            )
        if not self.config["responses_field"].strip():
            raise StepParamError(
                f"step {self.name!r}, parameter 'responses_field': name the meta key that holds "
                "the candidate responses"
            )
        try:
            # The perplexity step checks the model parameters and builds the scorer.
            self.perplexity = Perplexity(**{k: self.config[k] for k in _SHARED})
        except StepParamError as exc:
            raise StepParamError(str(exc).replace("'perplexity'", repr(self.name), 1)) from exc

    def scorer(self) -> PerplexityScorer:
        return self.perplexity.scorer()

    def signals(self) -> list[SignalSpec]:
        prefix, model = self.config["prefix"], self.config["model"]
        field = self.config["responses_field"]
        return [
            SignalSpec(f"{prefix}_index", "int", f"chosen candidate of meta[{field!r}] ({model})"),
            SignalSpec(f"{prefix}_scores", "json", "per candidate: logprob (mean), total, tokens"),
            SignalSpec(f"{prefix}_logprob", "float", "mean log-probability of the chosen response"),
            SignalSpec(f"{prefix}_error", "text", "why the candidates could not be scored"),
        ]

    def instruction(self, doc: Document) -> str | None:
        field = self.config["instruction_field"]
        value = doc.meta.get(field) if field else doc.text
        return value if isinstance(value, str) and value.strip() else None

    def candidates(self, doc: Document) -> list[str] | str:
        """The document's candidates, or a message saying why they cannot be used."""
        field = self.config["responses_field"]
        value = doc.meta.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            return (
                f"meta[{field!r}] is a {type(value).__name__}; expected a list of candidate "
                "response strings"
            )
        for position, item in enumerate(value):
            if not isinstance(item, str):
                return (
                    f"meta[{field!r}][{position}] is a {type(item).__name__}; every candidate "
                    "must be a string"
                )
        return value

    def context(self, scorer: PerplexityScorer, instruction: str) -> str:
        """What goes before each response: the instruction (chat-formatted) and the separator."""
        if not self.config["chat_template"]:
            return instruction + self.config["separator"]
        tokenizer = scorer.tokenizer
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise StepParamError(
                f"step 'grape_select', parameter 'chat_template': model "
                f"{self.config['model']!r} has no chat template; set chat_template to false"
            )
        text: str = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
        # The scorer puts the tokenizer's BOS in front itself.
        bos = getattr(tokenizer, "bos_token", None)
        if bos and scorer.prefix and text.startswith(bos):
            text = text[len(bos) :]
        return text + self.config["separator"]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        prefix = self.config["prefix"]
        size = len(batch)
        out: dict[str, list[Any]] = {
            f"{prefix}_index": [None] * size,
            f"{prefix}_scores": [None] * size,
            f"{prefix}_logprob": [None] * size,
            f"{prefix}_error": [None] * size,
        }
        owners: list[tuple[int, int]] = []  # (document position, candidate position)
        instructions: dict[int, str] = {}
        lists: dict[int, list[str]] = {}
        for i, doc in enumerate(batch):
            found = self.candidates(doc)
            if isinstance(found, str):
                out[f"{prefix}_error"][i] = found
                continue
            if not found:
                continue
            instruction = self.instruction(doc)
            if instruction is None:
                field = self.config["instruction_field"]
                out[f"{prefix}_error"][i] = (
                    f"meta[{field!r}] holds no instruction" if field else "the text is empty"
                ) + "; the candidates are scored given the instruction"
                continue
            instructions[i] = instruction
            lists[i] = found
            owners.extend((i, c) for c in range(len(found)))
        if not owners:
            return out
        scorer = self.scorer()
        contexts = {i: self.context(scorer, text) for i, text in instructions.items()}
        responses = [lists[i][c] for i, c in owners]
        scores = scorer.score(responses, [contexts[i] for i, _ in owners])
        per_doc: dict[int, list[dict[str, Any] | None]] = {i: [] for i in instructions}
        for (i, _), score in zip(owners, scores, strict=True):
            if score.logprob is None:
                per_doc[i].append(None)
                continue
            total = score.logprob * score.tokens
            per_doc[i].append({"logprob": score.logprob, "total": total, "tokens": score.tokens})
        key = "logprob" if self.config["by"] == "mean" else "total"
        for i, entries in per_doc.items():
            out[f"{prefix}_scores"][i] = entries
            scored = [(e[key], c) for c, e in enumerate(entries) if e is not None]
            if not scored:
                continue
            # max on (value, -position): the first of tied candidates wins.
            _, chosen = max(scored, key=lambda pair: (pair[0], -pair[1]))
            out[f"{prefix}_index"][i] = chosen
            out[f"{prefix}_logprob"][i] = entries[chosen]["logprob"]  # type: ignore[index]
        logger.info("grape_select: %d documents, %d candidates scored", len(per_doc), len(owners))
        return out
