"""One interface for text generation, whatever runs the model.

A backend turns a list of prompts into a list of ``Generation`` results, in order.
A prompt is plain text or a list of chat messages (``{"role": ..., "content": ...}``);
backends that serve chat models apply the model's chat template to messages.
Backends are named in configuration (``backend_from_config``) so that pipeline steps
and lineage records can say exactly what produced a text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

ChatMessage = dict[str, str]
Prompt = str | list[ChatMessage]


class GenerationError(RuntimeError):
    """Generation failed for good (bad configuration, a model that cannot load, retries spent)."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters shared by every backend; ``temperature == 0`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise GenerationError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], got {self.top_p}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass(frozen=True)
class Generation:
    """One prompt's result. ``finish_reason``: "stop" (end or a stop string) or "length"."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class Backend(ABC):
    """Base of the generation backends; ``name`` is the value of ``"backend"`` in configs."""

    name: ClassVar[str]

    def __init__(self, model: str) -> None:
        self.model = model

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        """One ``Generation`` per prompt, in the prompts' order."""

    def describe(self) -> dict[str, Any]:
        """What lineage records about the backend (name and model; subclasses add more)."""
        return {"backend": self.name, "model": self.model}
