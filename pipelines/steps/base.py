"""The step contract.

A step is pure computation, in the shape of a datatrove filter: a small class
with a plain ``name`` and ``version``, parameters (thresholds; ``None`` disables
one) validated in ``__init__``, the signals it produces, and ``run(batch)``
returning one value per document for each signal. Steps never touch Django
models: the pipeline runner reads documents, calls ``run`` and writes the values.
Heavy imports and models load lazily, once per process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


class StepParamError(ValueError):
    """A step parameter is missing, unknown or of the wrong type; the message names it."""


@dataclass(frozen=True)
class Document:
    """What a step sees of a document."""

    id: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalSpec:
    """A signal a step produces: its name is global, so prefix it with the step's family."""

    name: str
    dtype: str  # "float" | "int" | "bool" | "text" | "json"
    description: str


@dataclass(frozen=True)
class Param:
    """A step parameter. ``kind`` is the Python type; ``nullable`` lets ``None`` disable it."""

    name: str
    kind: type
    default: Any
    help: str
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any, step: str) -> Any:
        where = f"step {step!r}, parameter {self.name!r}"
        if value is None:
            if self.nullable:
                return None
            raise StepParamError(f"{where}: a value is required ({self.help})")
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind in (tuple, list) and isinstance(value, (list, tuple)):
            value = self.kind(value)
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            raise StepParamError(
                f"{where}: expected {self.kind.__name__}, got {type(value).__name__} {value!r}"
            )
        if self.choices is not None and value not in self.choices:
            raise StepParamError(f"{where}: {value!r} is not one of {list(self.choices)}")
        number: Any = value
        if self.minimum is not None and number < self.minimum:
            raise StepParamError(f"{where}: {value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise StepParamError(f"{where}: {value!r} is above the maximum {self.maximum}")
        return value


class Step(ABC):
    """Base of every step. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    # "cpu" or "gpu": the Celery queue its batches go to. A step whose parameters decide it
    # (an LLM judge calling a server needs no GPU) sets it per instance in ``__init__``.
    device: str = "cpu"
    # "document" (per batch), "corpus" (whole dataset) or "derive" (per batch, writing new
    # records into a derived dataset: see pipelines/steps/derive.py)
    level: ClassVar[str] = "document"
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise StepParamError(
                f"step {self.name!r}: unknown parameter(s) {unknown}; known: {sorted(known)}"
            )
        self.config: dict[str, Any] = {
            p.name: p.check(values.get(p.name, p.default), self.name) for p in self.params
        }

    @abstractmethod
    def signals(self) -> list[SignalSpec]:
        """The signals ``run`` returns, in a fixed order; may depend on the parameters."""

    @abstractmethod
    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        """Values for each signal name of ``signals()``, one per document, in batch order."""

    def corpus_signals(self) -> list[SignalSpec]:
        """Signals a corpus-level step's dataset-wide phase writes (after every ``run``).

        A corpus-level step has two parts: ``run`` computes per-document values in
        batches like any step (a hash, a signature), then the runner's corpus phase
        for the step's name combines them over the whole dataset (groups duplicates)
        and writes these signals and the duplicate groups.
        """
        return []

    def vector_model(self) -> str | None:
        """The embedding model whose vectors this step needs stored, or None.

        For such a step the runner calls ``embed`` on each batch's documents that
        have no stored vector for this model yet, and stores the result (float16
        shards per dataset and model) before calling ``run``.
        """
        return None

    def embed(self, batch: Sequence[Document]) -> Any:
        """A float array [len(batch), dim] of the batch's vectors (see ``vector_model``)."""
        raise NotImplementedError(f"step {self.name!r} stores no vectors")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The step's parameters as a JSON-able schema (for forms and validation messages)."""
        return {
            "name": cls.name,
            "version": cls.version,
            "description": cls.description,
            "device": cls.device,
            "level": cls.level,
            "params": [
                {
                    "name": p.name,
                    "type": p.kind.__name__,
                    "default": list(p.default) if isinstance(p.default, tuple) else p.default,
                    "help": p.help,
                    "nullable": p.nullable,
                    "choices": list(p.choices) if p.choices else None,
                }
                for p in cls.params
            ],
        }


REGISTRY: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    """Class decorator: make the step available to pipelines under ``cls.name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two steps are named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def get_step(name: str) -> type[Step]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise StepParamError(
            f"no step named {name!r}; available: {', '.join(sorted(REGISTRY))}"
        ) from None
