"""Perplexity of each document under a causal language model (CCNet's signal, any HF model).

The scorer works without Django (``PerplexityScorer``: texts or token ids in, ``Score`` out), so
benchmarks run it on a GPU host that has no database; the ``perplexity`` step wraps it.

How a document is scored:

1. Tokenize it without special tokens, then add the tokens the tokenizer's template would add
   (a BOS in front, an EOS behind, where it adds them). With a prompt (conditional perplexity)
   the prompt's tokens go between the BOS and the text's: they are context, never scored.
2. Every token after the first is scored, and only those (the first has nothing to predict it
   from: with a BOS that is the BOS, so every real token is scored). Long documents are cut
   into windows of ``max_length`` tokens, as in the Hugging Face perplexity guide: each window
   after the first scores the next ``stride`` tokens with the ``max_length - stride`` tokens
   before them as context, so each token is scored exactly once.
3. Windows from every document of the call are sorted by length and packed into batches of at
   most ``batch_tokens`` padded tokens (right padding, attention mask); one window longer than
   that still goes alone.
4. One forward pass per batch under ``torch.inference_mode``; the log-probabilities of the
   scored tokens are taken from a float32 log-softmax, a bounded block of positions at a time
   (the float32 logits of a whole batch over a large vocabulary would not fit), and summed per
   document on the device; the sums are read back once, at the end.

Layout: ``windows`` plans the windows and their padded batches, ``scorer`` holds
``PerplexityScorer`` and its ``Score``, ``step`` the ``perplexity`` step (registered when this
package is imported).
"""

from __future__ import annotations

from pipelines.steps.perplexity.scorer import (
    LOGIT_CHUNK_ELEMENTS,
    PerplexityScorer,
    Score,
    model_context,
)
from pipelines.steps.perplexity.step import DEVICE, PREFIX, Perplexity
from pipelines.steps.perplexity.windows import Batch, Window, plan_windows

__all__ = [
    "DEVICE",
    "LOGIT_CHUNK_ELEMENTS",
    "PREFIX",
    "Batch",
    "Perplexity",
    "PerplexityScorer",
    "Score",
    "Window",
    "model_context",
    "plan_windows",
]
