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
    left: bool = False,
    reserve: int = 0,
    max_rows: int = MAX_BATCH_TEXTS,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """(positions in ``ids``, padded CPU tensors) per forward pass, longest texts first.

    Each batch holds at most ``batch_tokens`` padded tokens (and ``max_rows`` texts,
    MAX_BATCH_TEXTS by default); its width is its longest text rounded up to
    ``multiple_of``. ``reserve`` tokens per row count against the budget beyond the
    width (the tokens that generation appends). The tensors are ``input_ids`` and
    ``attention_mask`` (right padding; left padding with ``left``, as generation
    needs), plus zero ``token_type_ids`` when ``token_types`` is set.
    """
    import torch

    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")
    i = 0
    while i < len(order):
        width = max(int(lengths[order[i]]), 1)
        width = -(-width // multiple_of) * multiple_of
        rows = max(1, min(max_rows, batch_tokens // (width + reserve), len(order) - i))
        chosen = order[i : i + rows]
        input_ids = np.full((rows, width), pad_id, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        for row, position in enumerate(chosen):
            n = int(lengths[position])
            span = slice(width - n, width) if left else slice(0, n)
            input_ids[row, span] = ids[position]
            mask[row, span] = 1
        tensors = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
        }
        if token_types:
            tensors["token_type_ids"] = torch.zeros((rows, width), dtype=torch.int64)
        yield chosen, tensors
        i += rows
