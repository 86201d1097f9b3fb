"""Any Hugging Face sequence-classification or regression model as a step (``hf_classifier``).

FineWeb-Edu's educational-value regressor, a toxicity or language classifier, a reward model:
anything ``AutoModelForSequenceClassification`` loads. The scorer works without Django
(``SequenceClassifier``: texts in, logits out), so benchmarks run it on a GPU host that has no
database; the step wraps it.

How a batch of documents is classified:

1. Tokenize every text with the model's fast tokenizer (special tokens added, truncated to
   ``max_length``; texts far longer than that are cut in characters first so a megabyte line
   does not cost a megabyte of tokenizing).
2. Sort by token count, longest first, and cut batches of at most ``batch_tokens`` padded
   tokens (right padding with an attention mask), as the sentence encoder does: short texts go
   in large batches and padding stays small.
3. One forward pass per batch under ``torch.inference_mode``; logits come back in float32, in
   input order.
4. Score and label: for a regression head (``num_labels == 1``) the raw output and its rounded
   integer (FineWeb-Edu's ``int_score``); for a classification head the softmax probability of
   the chosen label (the last one by default) and the argmax label's name. A multi-label head
   (``problem_type == "multi_label_classification"``) takes a sigmoid per label instead.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.batching import padded_batches
from pipelines.devices import (
    DTYPES,
    load_pretrained,
    to_device,
)
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PREFIX = re.compile(r"[a-z][a-z0-9_]{0,79}\Z")
DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)\Z")
# Characters per token that no real tokenizer exceeds: longer texts are cut before tokenizing.
_CHARS_PER_TOKEN = 32
# A tokenizer's model_max_length above this means "not set" (transformers uses 1e30).
_UNSET_LENGTH = 1_000_000


@dataclass(frozen=True)
class Prediction:
    """One document's result: the score and the label text (see the module docstring)."""

    score: float | None
    label: str | None


class SequenceClassifier:
    """A sequence-classification model and its tokenizer on one device; pure computation."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: str = "cpu",
        max_length: int = 0,
        batch_tokens: int = 32768,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = self._max_length(max_length)
        self.batch_tokens = batch_tokens
        self.pad_id = self._pad_id()
        self.num_labels = int(model.config.num_labels)
        self.id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
        self.multi_label = getattr(model.config, "problem_type", None) == (
            "multi_label_classification"
        )
        # token_type_ids only for models that take them (BERT does, RoBERTa and GPT-2 not).
        self._token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = 0,
        batch_tokens: int = 32768,
    ) -> SequenceClassifier:
        """The classifier named by Hugging Face id or local path, loaded once per process.

        ``device="auto"`` picks CUDA when a GPU is visible; ``dtype="auto"`` float16 there and
        float32 on the CPU. Raises DeviceError naming the model when it cannot be loaded.
        """
        tokenizer, classifier, resolved_device, _ = load_pretrained(
            model,
            auto_class="AutoModelForSequenceClassification",
            kind="a sequence classifier",
            device=device,
            dtype=dtype,
        )
        return cls(
            classifier,
            tokenizer,
            device=resolved_device,
            max_length=max_length,
            batch_tokens=batch_tokens,
        )

    def _max_length(self, requested: int) -> int:
        """``requested`` (0: the model's own limit), never past what the model can embed."""
        limits = []
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _UNSET_LENGTH:
            limits.append(tokenizer_limit)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        model_limit = min(limits) if limits else 512
        return min(requested, model_limit) if requested else model_limit

    def _pad_id(self) -> int:
        # Decoder classifiers read the last non-pad token: their config must name the pad id.
        config = self.model.config
        for candidate in (
            getattr(config, "pad_token_id", None),
            getattr(self.tokenizer, "pad_token_id", None),
            getattr(self.tokenizer, "eos_token_id", None),
        ):
            if isinstance(candidate, int) and candidate >= 0:
                if getattr(config, "pad_token_id", None) is None:
                    config.pad_token_id = candidate
                return candidate
        return 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, special tokens included, at most ``max_length``."""
        limit = self.max_length * _CHARS_PER_TOKEN
        cut = [t[:limit] if len(t) > limit else t for t in texts]
        encoded = self.tokenizer(
            cut,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]
        ids = [list(x) for x in encoded]
        for i, text in enumerate(texts):
            if len(text) > limit and len(ids[i]) < self.max_length:  # mostly spaces: redo whole
                ids[i] = list(
                    self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]
                )
        return ids

    def batches(self, ids: Sequence[Sequence[int]]) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        """(input positions, padded CPU tensors) per forward pass, longest texts first."""
        return padded_batches(
            ids, batch_tokens=self.batch_tokens, pad_id=self.pad_id, token_types=self._token_types
        )

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """float32 logits [len(texts), num_labels], in the order of ``texts``."""
        import torch

        started = time.perf_counter()
        out = np.zeros((len(texts), self.num_labels), dtype=np.float32)
        if not texts:
            return out
        ids = self.encode([t if isinstance(t, str) else str(t) for t in texts])
        parts: list[tuple[np.ndarray, torch.Tensor]] = []
        with torch.inference_mode():
            # Results stay on the device until every batch is queued: one synchronisation.
            for positions, tensors in self.batches(ids):
                features = {k: to_device(v, self.device) for k, v in tensors.items()}
                parts.append((positions, self.model(**features).logits.float()))
            for positions, logits in parts:
                out[positions] = logits.cpu().numpy()
        seconds = time.perf_counter() - started
        tokens = sum(len(x) for x in ids)
        logger.info(
            "classifier: %d texts, %d tokens, %.2fs (%.0f texts/s)",
            len(texts),
            tokens,
            seconds,
            len(texts) / seconds if seconds else 0.0,
        )
        return out

    def label_index(self, label: str) -> int | None:
        """Which output ``label`` scores: "" is the last label (None for a regression head)."""
        if not label:
            return None if self.num_labels == 1 else self.num_labels - 1
        if self.num_labels == 1:
            raise StepParamError(
                f"step 'hf_classifier', parameter 'label': {label!r} was given but the model is "
                "a regression head (num_labels = 1) with no labels: leave label empty"
            )
        for index, name in self.id2label.items():
            if name == label:
                return index
        raise StepParamError(
            f"step 'hf_classifier', parameter 'label': the model has no label {label!r}; its "
            f"labels are {[self.id2label[i] for i in sorted(self.id2label)]}"
        )

    def predict(self, texts: Sequence[str], label: str = "") -> list[Prediction]:
        """Score and label of each text (see the module docstring), in order."""
        index = self.label_index(label)
        logits = self.logits(texts)
        if self.num_labels == 1:
            return [_regression(float(value)) for value in logits[:, 0]]
        if self.multi_label:
            probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        else:
            shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            probabilities = exp / exp.sum(axis=1, keepdims=True)
        best = logits.argmax(axis=1)
        assert index is not None
        return [
            Prediction(float(p[index]), self.id2label.get(int(b), str(int(b))))
            for p, b in zip(probabilities, best, strict=True)
        ]


def _regression(value: float) -> Prediction:
    if not math.isfinite(value):
        return Prediction(None, None)
    return Prediction(value, str(int(round(value))))


@register
class HFClassifier(Step):
    """A Hugging Face sequence classifier or regressor: ``<prefix>_score`` and ``<prefix>_label``.

    The score is the regression output, or the probability of ``label`` (default: the last
    label, the "positive" one of a binary head); the label is the argmax label's name, or for a
    regression head the rounded output as text (FineWeb-Edu's integer score).
    """

    name = "hf_classifier"
    version = "1"
    description = "Score and label from any Hugging Face sequence-classification model."
    device = "gpu"
    params = (
        Param("model", str, "", "Hugging Face id or local path of the classifier (required)"),
        Param("device", str, "auto", "auto (a GPU when visible, else the CPU), cpu, cuda, cuda:N"),
        Param(
            "dtype",
            str,
            "auto",
            "auto (float16 on a GPU, float32 on the CPU), float32, float16 or bfloat16",
            choices=DTYPES,
        ),
        Param(
            "max_length",
            int,
            0,
            "tokens kept per text (0: the model's own maximum)",
            minimum=0,
            maximum=131072,
        ),
        Param("batch_tokens", int, 32768, "padded tokens per forward pass", minimum=16),
        Param("prefix", str, "classifier", "signal name prefix, [a-z][a-z0-9_]*"),
        Param(
            "label",
            str,
            "",
            "label whose probability is the score ('': the last label; a regression head's "
            "raw output)",
        ),
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
                f"{where} 'prefix': {self.config['prefix']!r} must be at most 80 lowercase "
                "letters, digits and underscores, starting with a letter"
            )

    def signals(self) -> list[SignalSpec]:
        prefix, model, label = self.config["prefix"], self.config["model"], self.config["label"]
        what = f"probability of label {label!r}" if label else "regression output or P(last label)"
        return [
            SignalSpec(f"{prefix}_score", "float", f"{model}: {what}"),
            SignalSpec(f"{prefix}_label", "text", f"{model}: argmax label (regression: rounded)"),
        ]

    def classifier(self) -> SequenceClassifier:
        config = self.config
        return SequenceClassifier.load(
            config["model"],
            device=config["device"],
            dtype=config["dtype"],
            max_length=config["max_length"],
            batch_tokens=config["batch_tokens"],
        )

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        prefix = self.config["prefix"]
        predictions = self.classifier().predict([d.text for d in batch], self.config["label"])
        return {
            f"{prefix}_score": [p.score for p in predictions],
            f"{prefix}_label": [p.label for p in predictions],
        }
