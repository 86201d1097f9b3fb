"""Sliding windows over a document's tokens and the padded batches they are packed into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Window:
    """Tokens ``begin:end`` of document ``doc`` go through the model; ``first:end`` are scored."""

    doc: int
    begin: int
    first: int
    end: int


@dataclass(frozen=True)
class Batch:
    """One forward pass: padded inputs (CPU) and which logits score which document's tokens.

    ``positions`` index the flattened ``[rows * width]`` logits: the logit at a position
    predicts ``targets`` at the same index, for the document ``docs`` at that index.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    docs: torch.Tensor


def plan_windows(
    length: int, first: int, max_length: int, stride: int
) -> list[tuple[int, int, int]]:
    """``(begin, first, end)`` windows that score tokens ``max(first, 1):length`` exactly once.

    A window holds at most ``max_length`` (>= 2) tokens; every window but the first scores
    from where the previous one stopped, with ``max_length - stride`` tokens of context (at
    least one, so ``stride >= max_length`` gives back-to-back windows).
    """
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    context = max_length - min(stride, max_length - 1)
    windows = []
    start = max(first, 1)
    while start < length:
        begin = max(0, start - context)
        end = min(length, begin + max_length)
        windows.append((begin, start, end))
        start = end
    return windows
