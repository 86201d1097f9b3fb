"""Prompt checks and text helpers that the generation backends share.

Pure Python: no torch, no Django, no HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.generation.base import ChatMessage, GenerationError, Prompt

PLAIN_CHAT_FORMAT = "plain 'role: content' lines ending 'assistant:' (no chat template)"


def check_prompts(prompts: Sequence[Prompt]) -> None:
    """Raise ``GenerationError`` naming the first prompt that is neither text nor chat messages."""
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            continue
        if not isinstance(prompt, list) or not prompt:
            raise GenerationError(
                f"prompt {index}: expected a string or a non-empty list of chat messages "
                f"({{'role': ..., 'content': ...}}), got {type(prompt).__name__}"
            )
        for number, message in enumerate(prompt):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not isinstance(message.get("content"), str)
            ):
                raise GenerationError(
                    f"prompt {index}, message {number}: a chat message is a dict with string "
                    f"'role' and 'content', got {message!r:.120}"
                )


def plain_chat_text(messages: list[ChatMessage]) -> str:
    """Messages as ``role: content`` lines and a trailing ``assistant:`` for the reply.

    The fallback for tokenizers that have no chat template (base models).
    """
    lines = [f"{message['role']}: {message['content']}" for message in messages]
    return "\n".join([*lines, "assistant:"])


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (excluded), and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True
