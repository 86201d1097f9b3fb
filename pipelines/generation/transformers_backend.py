"""Text generation with a Hugging Face causal LM and ``model.generate``, in padded batches.

How a call runs:

1. Each prompt becomes token ids: plain text through the tokenizer (with its special tokens);
   chat messages through the tokenizer's chat template with the generation prompt added, or,
   when the tokenizer has no template, as plain ``role: content`` lines ending ``assistant:``
   (``describe()`` says which). An empty prompt starts from the BOS (or EOS) token.
2. Prompts are sorted by length and cut into batches of at most ``batch_size`` prompts and
   ``max_batch_tokens`` tokens, counting each row's padded prompt and its ``max_new_tokens``
   (``pipelines.batching.padded_batches``); padding goes on the left, as a decoder needs.
3. One ``generate`` call per batch under ``torch.inference_mode``: greedy when
   ``temperature == 0``, else sampling seeded by ``params.seed`` (reproducible for the same
   prompts, batch settings and device). A row stops at an end-of-sequence token or when its
   text so far contains a stop string.
4. Each row's text is decoded without special tokens and cut before the earliest stop string.
   ``completion_tokens`` counts the tokens generated up to and including the EOS token or the
   token that completed the stop string; ``finish_reason`` is "stop" then, "length" otherwise.

The model is loaded once per process (``pipelines.devices.load_causal_lm``, shared with the
perplexity step); the shared tokenizer is never modified: padding is done here, and the pad id
(the tokenizer's, else its EOS) is passed to ``generate``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.batching import padded_batches
from pipelines.devices import (
    DeviceError,
    load_causal_lm,
    to_device,
)
from pipelines.generation.backend_utils import (
    PLAIN_CHAT_FORMAT,
    check_prompts,
    cut_at_stop,
    plain_chat_text,
)
from pipelines.generation.base import Backend, Generation, GenerationError, GenerationParams, Prompt

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class TransformersBackend(Backend):
    """``model.generate`` over length-sorted, left-padded batches (bfloat16 on a GPU).

    ``ignore_eos`` makes every row generate exactly ``max_new_tokens`` (benchmarks).
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 64,
        max_batch_tokens: int = 32768,
        ignore_eos: bool = False,
    ) -> None:
        super().__init__(model)
        if batch_size < 1:
            raise GenerationError(f"batch_size must be >= 1, got {batch_size}")
        if max_batch_tokens < 1:
            raise GenerationError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.ignore_eos = ignore_eos
        try:
            self.tokenizer, self.lm, self.device, self.dtype = load_causal_lm(
                model, device=device, dtype=dtype
            )
        except DeviceError as exc:
            raise GenerationError(str(exc)) from exc
        self.eos_ids = _eos_ids(self.lm, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        start = self.tokenizer.bos_token_id
        self.start_id: int = start if start is not None else self.pad_id
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.context: int | None = getattr(self.lm.config, "max_position_embeddings", None)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            device=self.device,
            dtype=str(self.dtype).removeprefix("torch."),
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            chat_format="tokenizer chat template" if self.has_template else PLAIN_CHAT_FORMAT,
        )
        if self.ignore_eos:
            info["ignore_eos"] = True
        return info

    def encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of each prompt, as step 1 of the module docstring says."""
        check_prompts(prompts)
        texts: list[str] = []
        special: list[bool] = []
        for prompt in prompts:
            if isinstance(prompt, str):
                texts.append(prompt)
                special.append(True)
            elif self.has_template:
                rendered = self.tokenizer.apply_chat_template(
                    prompt, tokenize=False, add_generation_prompt=True
                )
                texts.append(str(rendered))
                special.append(False)
            else:
                texts.append(plain_chat_text(prompt))
                special.append(True)
        ids: list[list[int]] = [[] for _ in prompts]
        for flag in (True, False):
            chosen = [i for i, s in enumerate(special) if s is flag]
            if not chosen:
                continue
            encoded = self.tokenizer(
                [texts[i] for i in chosen], add_special_tokens=flag, verbose=False
            )["input_ids"]
            for i, row in zip(chosen, encoded, strict=True):
                ids[i] = list(row) or [self.start_id]
        return ids

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        import torch

        ids = self.encode(prompts)
        if self.context is not None:
            for index, row in enumerate(ids):
                if len(row) + params.max_new_tokens > self.context:
                    raise GenerationError(
                        f"prompt {index} has {len(row)} tokens; with max_new_tokens "
                        f"{params.max_new_tokens} it exceeds the model's context of "
                        f"{self.context} tokens: shorten the prompt or lower max_new_tokens"
                    )
        results: list[Generation | None] = [None] * len(ids)
        config = self._generation_config(params)
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        batches = padded_batches(
            ids,
            batch_tokens=self.max_batch_tokens,
            pad_id=self.pad_id,
            left=True,
            reserve=params.max_new_tokens,
            max_rows=self.batch_size,
        )
        for positions, tensors in batches:
            started = time.perf_counter()
            width = tensors["input_ids"].shape[1]
            criteria = [_StopStrings(self.tokenizer, params.stop, width)] if params.stop else []
            with torch.inference_mode():
                output = self.lm.generate(
                    input_ids=to_device(tensors["input_ids"], self.device),
                    attention_mask=to_device(tensors["attention_mask"], self.device),
                    generation_config=config,
                    stopping_criteria=criteria or None,
                )
            rows = output[:, width:].tolist()
            made = 0
            for position, row in zip(positions.tolist(), rows, strict=True):
                result = self._finish(row, len(ids[position]), params.stop)
                results[position] = result
                made += result.completion_tokens
            logger.info(
                "generated %d tokens for %d prompts (width %d) in %.2fs",
                made,
                len(rows),
                width,
                time.perf_counter() - started,
            )
        return [r for r in results if r is not None]

    def _generation_config(self, params: GenerationParams) -> Any:
        from transformers import GenerationConfig

        sampling: dict[str, Any] = {"do_sample": False}
        if params.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": 0,  # GenerationParams has no top-k: sample from the whole top-p set
            }
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=params.max_new_tokens if self.ignore_eos else 0,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
            bos_token_id=self.tokenizer.bos_token_id,
            **sampling,
        )

    def _finish(self, row: list[int], prompt_tokens: int, stop: Sequence[str]) -> Generation:
        """One row's ``Generation`` from its generated ids (step 4 of the module docstring)."""
        end = len(row)
        if not self.ignore_eos:
            end = next((i for i, t in enumerate(row) if t in self.eos_ids), len(row))
        body = row[:end]
        text, stopped = cut_at_stop(self._decode(body), stop)
        if stopped:
            return Generation(text, prompt_tokens, self._tokens_to_stop(body, stop), "stop")
        if end < len(row):
            return Generation(text, prompt_tokens, end + 1, "stop")
        return Generation(text, prompt_tokens, len(row), "length")

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _tokens_to_stop(self, body: list[int], stop: Sequence[str]) -> int:
        """The fewest leading tokens of ``body`` whose text contains a stop string."""
        low, high = 1, len(body)
        while low < high:
            middle = (low + high) // 2
            if cut_at_stop(self._decode(body[:middle]), stop)[1]:
                high = middle
            else:
                low = middle + 1
        return high


def _eos_ids(lm: Any, tokenizer: Any) -> list[int]:
    """EOS ids: the model generation config's (one or several), else the tokenizer's."""
    configured = getattr(getattr(lm, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return [int(x) for x in (configured if isinstance(configured, list) else [configured])]


class _StopStrings:
    """A stopping criterion: a row is done once its generated text contains a stop string.

    Only the last few generated tokens are decoded each step: enough to hold the longest stop
    string, which first appears when the token completing it is added.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str], start: int) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.start = start
        self.window = 2 * max((len(s) for s in self.stop), default=1) + 4

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        import torch

        first = max(self.start, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, first:].tolist(), skip_special_tokens=True)
        done = [any(s in tail for s in self.stop) for tail in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
