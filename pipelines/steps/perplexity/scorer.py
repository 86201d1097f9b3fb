"""``PerplexityScorer``: texts or token ids in, ``Score`` out; pure computation, no Django.

How a document is scored is told in the package docstring (``pipelines.steps.perplexity``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.devices import DeviceError, load_causal_lm, to_device
from pipelines.steps.perplexity.windows import Batch, Window, plan_windows

if TYPE_CHECKING:
    import numpy as np
    import torch

logger = logging.getLogger(__name__)

# Float32 elements of logits materialised at once when taking log-probabilities (512 MiB).
LOGIT_CHUNK_ELEMENTS = 1 << 27


@dataclass(frozen=True)
class Score:
    """One document's result: the tokens scored and their mean natural-log probability.

    ``perplexity`` is ``exp(-logprob)``. Both are None when no token could be scored
    (empty text, or a single token with nothing before it); ``tokens`` is then 0.
    """

    perplexity: float | None
    logprob: float | None
    tokens: int


def model_context(model: Any) -> int | None:
    """The longest input the model's position embeddings allow, when its config says."""
    config = model.config
    for attr in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class PerplexityScorer:
    """Scores texts (or token ids) with a causal LM; pure computation, no Django.

    ``max_length`` is clipped to the model's context, and ``stride`` scaled by the same factor;
    see the module docstring for the method.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any | None = None,
        *,
        device: str = "cpu",
        max_length: int = 1024,
        stride: int = 512,
        batch_tokens: int = 16384,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        context = model_context(model)
        self.max_length = max(2, min(max_length, context) if context else max_length)
        # A window clipped to the model's context keeps the overlap ratio asked for (the
        # defaults, 512 of 1024, become 64 of 128), not a stride longer than the window.
        self.stride = (
            max(1, stride * self.max_length // max_length)
            if self.max_length < max_length
            else stride
        )
        self.batch_tokens = batch_tokens
        self.pad_id = self._pad_id()
        self.prefix, self.suffix = self._special_tokens()

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = 1024,
        stride: int = 512,
        batch_tokens: int = 16384,
    ) -> PerplexityScorer:
        """A scorer for the model named by Hugging Face id or local path, loaded once per process.

        ``device="auto"`` picks CUDA when a GPU is visible; ``dtype="auto"`` bfloat16 there
        (float16 where the GPU lacks bfloat16) and float32 on the CPU. Raises DeviceError
        naming the model when it cannot be loaded.
        """
        tokenizer, lm, resolved_device, _ = load_causal_lm(model, device=device, dtype=dtype)
        return cls(
            lm,
            tokenizer,
            device=resolved_device,
            max_length=max_length,
            stride=stride,
            batch_tokens=batch_tokens,
        )

    def _pad_id(self) -> int:
        # Right padding under an attention mask: the pad id only has to be a valid token.
        candidates: list[Any] = []
        if self.tokenizer is not None:
            candidates += [self.tokenizer.pad_token_id, self.tokenizer.eos_token_id]
        config = self.model.config
        candidates += [getattr(config, "pad_token_id", None), getattr(config, "eos_token_id", None)]
        vocab = self.model.get_input_embeddings().num_embeddings
        for candidate in candidates:
            if isinstance(candidate, list) and candidate:
                candidate = candidate[0]
            if isinstance(candidate, int) and 0 <= candidate < vocab:
                return candidate
        return 0

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer's template puts before and after a text (BOS, EOS)."""
        if self.tokenizer is None:
            return [], []
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        probe = "Hello world"
        bare = self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(probe, add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start : start + len(bare)] == bare:
                return list(full[:start]), list(full[start + len(bare) :])
        return [], []

    def encode(
        self, texts: Sequence[str], prompts: Sequence[str | None] | None = None
    ) -> tuple[list[list[int]], list[int]]:
        """Token ids of each document (special tokens and prompt included) and its first scored
        token; a document whose text has no token gets an empty list (nothing to score)."""
        if self.tokenizer is None:
            raise DeviceError("this scorer has no tokenizer: score token ids with score_ids")
        tokenize = self.tokenizer
        bodies = tokenize(
            list(texts), add_special_tokens=False, return_attention_mask=False, verbose=False
        )["input_ids"]
        heads: list[list[int]] = [[] for _ in texts]
        if prompts is not None:
            if len(prompts) != len(texts):
                raise ValueError(f"{len(prompts)} prompts for {len(texts)} texts")
            given = [i for i, p in enumerate(prompts) if p]
            encoded = tokenize(
                [prompts[i] for i in given],
                add_special_tokens=False,
                return_attention_mask=False,
                verbose=False,
            )["input_ids"]
            for i, ids in zip(given, encoded, strict=True):
                heads[i] = list(ids)
        docs: list[list[int]] = []
        firsts: list[int] = []
        for head, body in zip(heads, bodies, strict=True):
            if not body:
                docs.append([])
                firsts.append(0)
                continue
            context = self.prefix + head
            docs.append(context + list(body) + self.suffix)
            firsts.append(len(context))
        return docs, firsts

    def score(
        self, texts: Sequence[str], prompts: Sequence[str | None] | None = None
    ) -> list[Score]:
        """Scores of ``texts``, in order; with ``prompts``, each text is the response to its
        prompt (None or "": no prompt) and only the text's tokens are scored."""
        docs, firsts = self.encode(texts, prompts)
        return self.score_ids(docs, firsts)

    def windows(
        self, docs: Sequence[Sequence[int]], firsts: Sequence[int] | None = None
    ) -> list[list[Window]]:
        """Every window of every document, longest first, grouped into forward passes of at
        most ``batch_tokens`` padded tokens (``firsts``: first scored token, default 1)."""
        starts = list(firsts) if firsts is not None else [1] * len(docs)
        windows = [
            Window(index, begin, first, end)
            for index, ids in enumerate(docs)
            for begin, first, end in plan_windows(
                len(ids), starts[index], self.max_length, self.stride
            )
        ]
        windows.sort(key=lambda w: w.end - w.begin, reverse=True)
        groups: list[list[Window]] = []
        for window in windows:
            # Sorted longest first: the first window of a group sets its padded width.
            if groups:
                width = groups[-1][0].end - groups[-1][0].begin
                if (len(groups[-1]) + 1) * width <= self.batch_tokens:
                    groups[-1].append(window)
                    continue
            groups.append([window])
        return groups

    def batch(self, group: Sequence[Window], arrays: Sequence[np.ndarray]) -> Batch:
        """The padded CPU tensors of one group of windows over ``arrays`` (int64 token ids)."""
        import numpy as np
        import torch

        width = group[0].end - group[0].begin
        input_ids = np.full((len(group), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=np.int64)
        positions: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        for row, w in enumerate(group):
            size = w.end - w.begin
            input_ids[row, :size] = arrays[w.doc][w.begin : w.end]
            mask[row, :size] = 1
            offset = row * width - w.begin
            positions.append(np.arange(w.first - 1 + offset, w.end - 1 + offset))
            targets.append(arrays[w.doc][w.first : w.end])
            owners.append(np.full(w.end - w.first, w.doc, dtype=np.int64))
        return Batch(
            input_ids=torch.from_numpy(input_ids),
            attention_mask=torch.from_numpy(mask),
            positions=torch.from_numpy(np.concatenate(positions)),
            targets=torch.from_numpy(np.concatenate(targets)),
            docs=torch.from_numpy(np.concatenate(owners)),
        )

    def plan(
        self, docs: Sequence[Sequence[int]], firsts: Sequence[int] | None = None
    ) -> list[Batch]:
        """All the padded batches that ``score_ids`` runs for these documents, in its order."""
        arrays = _arrays(docs)
        return [self.batch(group, arrays) for group in self.windows(docs, firsts)]

    def score_ids(
        self, docs: Sequence[Sequence[int]], firsts: Sequence[int] | None = None
    ) -> list[Score]:
        """Scores of documents given as token ids (``firsts``: first scored token, default 1)."""
        import torch

        started = time.perf_counter()
        arrays = _arrays(docs)
        groups = self.windows(docs, firsts)
        counts = [0] * len(docs)
        for group in groups:
            for w in group:
                counts[w.doc] += w.end - w.first
        totals = torch.zeros(len(docs), dtype=torch.float64, device=self.device)
        with torch.inference_mode():
            # Each batch is built while the GPU still works on the previous one: nothing
            # waits for the device until the sums are read.
            for group in groups:
                self._accumulate(self.batch(group, arrays), totals)
            sums = totals.tolist()
        scores = []
        for total, count in zip(sums, counts, strict=True):
            if not count:
                scores.append(Score(None, None, 0))
                continue
            logprob = total / count
            perplexity = math.exp(-logprob) if -logprob < 709 else math.inf
            scores.append(Score(perplexity, logprob, count))
        seconds = time.perf_counter() - started
        tokens = sum(counts)
        logger.info(
            "perplexity: %d documents, %d tokens scored in %d batches, %.2fs (%.0f tokens/s)",
            len(docs),
            tokens,
            len(groups),
            seconds,
            tokens / seconds if seconds else 0.0,
        )
        return scores

    def _accumulate(self, batch: Batch, totals: torch.Tensor) -> None:
        """Add the log-probabilities of the batch's scored tokens to their documents' totals.

        Float32 log-softmax over blocks of positions, each small enough that its float32
        logits stay under LOGIT_CHUNK_ELEMENTS; blocks without a scored position (padding,
        context) are skipped. Nothing here waits for the GPU.
        """
        import torch

        # Without padding, no mask: SDPA can then use its causal flash kernel, and the model
        # does not read the mask back from the GPU to find that out.
        padded = not bool(batch.attention_mask.all())
        logits = self.model(
            input_ids=to_device(batch.input_ids, self.device),
            attention_mask=to_device(batch.attention_mask, self.device) if padded else None,
            use_cache=False,
        ).logits
        flat = logits.reshape(-1, logits.shape[-1])
        size = max(1, LOGIT_CHUNK_ELEMENTS // flat.shape[-1])
        # Positions ascend (row by row), so each block's scored positions are one slice.
        edges = torch.searchsorted(
            batch.positions, torch.arange(0, flat.shape[0] + size, size)
        ).tolist()
        positions = to_device(batch.positions, self.device)
        targets = to_device(batch.targets, self.device)
        logprobs = torch.empty(positions.shape[0], dtype=torch.float32, device=flat.device)
        for block, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
            if lo == hi:
                continue
            start = block * size
            block_logprobs = torch.log_softmax(
                flat[start : start + size], dim=-1, dtype=torch.float32
            )
            logprobs[lo:hi] = block_logprobs[positions[lo:hi] - start, targets[lo:hi]]
        totals.index_add_(0, to_device(batch.docs, self.device), logprobs.to(torch.float64))


def _arrays(docs: Sequence[Sequence[int]]) -> list[np.ndarray]:
    import numpy as np

    return [np.asarray(doc, dtype=np.int64) for doc in docs]
