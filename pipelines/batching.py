"""Padded, length-sorted batches of token ids for the encoder-style model steps.

Pure (numpy and torch, no Django), like ``pipelines.devices``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# Longest batch in texts, whatever the token budget (per-call overhead is gone by then).
MAX_BATCH_TEXTS = 1024


def padded_batches(
    ids: Sequence[Sequence[int]],
    *,
    batch_tokens: int,
    pad_id: int,
    multiple_of: int = 1,
    token_types: bool = False,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """(positions in ``ids``, padded CPU tensors) per forward pass, longest texts first.

    Each batch holds at most ``batch_tokens`` padded tokens (and MAX_BATCH_TEXTS
    texts); its width is its longest text rounded up to ``multiple_of``. The tensors
    are ``input_ids`` and ``attention_mask`` (right padding), plus zero
    ``token_type_ids`` when ``token_types`` is set.
    """
    import torch

    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")
    i = 0
    while i < len(order):
        width = max(int(lengths[order[i]]), 1)
        width = -(-width // multiple_of) * multiple_of
        rows = max(1, min(MAX_BATCH_TEXTS, batch_tokens // width, len(order) - i))
        chosen = order[i : i + rows]
        input_ids = np.full((rows, width), pad_id, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        for row, position in enumerate(chosen):
            n = int(lengths[position])
            input_ids[row, :n] = ids[position]
            mask[row, :n] = 1
        tensors = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
        }
        if token_types:
            tensors["token_type_ids"] = torch.zeros((rows, width), dtype=torch.int64)
        yield chosen, tensors
        i += rows
