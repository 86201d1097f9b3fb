"""Generator steps: steps that derive new records from a batch of documents.

A derive step (``level = "derive"``) is still pure: ``derive(batch, neighbours)``
returns the new records and, like any step, one value per source document for
each of its signals (records made, replies that failed to parse, records dropped).
The runner writes the records into the step's target dataset (a child of the
dataset the run reads) in the same transaction that marks the batch done, keyed
by an external id made from the source id, generator, template version, seed and
index: re-running a batch or the whole pipeline never duplicates a record.

Each record carries its lineage in ``meta["lineage"]``: source document ids,
generator and version, template name and version, the backend's ``describe()``,
sampling parameters, seed and creation time (the runner adds the source dataset,
the source external ids and the run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from pipelines.devices import load_once
from pipelines.generation.base import Backend, GenerationError, GenerationParams, Prompt
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError
from pipelines.synthetic.prompts import (
    OutputParseError,
    PromptTemplate,
    PromptTemplateError,
    template_check,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Extra backends by name, e.g. a scripted test double; looked up before the registry.
BACKEND_FACTORIES: dict[str, Callable[[dict[str, Any]], Backend]] = {}


def _build_backend(config: dict[str, Any]) -> Backend:
    factory = BACKEND_FACTORIES.get(config.get("backend", ""))
    if factory is not None:
        return factory(config)
    from pipelines.generation.registry import backend_from_config

    return backend_from_config(config)


def backend_for(config: dict[str, Any]) -> Backend:
    """The process-wide backend for ``config`` (a model loads once per worker)."""
    key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()
    return load_once(("generation_backend", key), lambda: _build_backend(config))


@dataclass(frozen=True)
class DerivedRecord:
    """A new document: its id in the target dataset, its text and meta (lineage included)."""

    external_id: str
    text: str
    meta: dict[str, Any]


@dataclass
class Derivation:
    records: list[DerivedRecord] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)


# Per source document id: the retrieved documents with their cosine scores, best first.
Neighbours = dict[int, list[tuple[Document, float]]]


@dataclass(frozen=True)
class Retrieval:
    """Neighbours a step needs for each document: the runner searches ``dataset``'s index
    (the run's own dataset when None) with ``query(document)`` and passes ``k`` hits."""

    dataset: str | None
    k: int
    query: Callable[[Document], str]


COMMON_PARAMS = (
    Param(
        "target",
        str,
        None,
        "name of the dataset the records go to (default: '<source name> <step name>')",
        nullable=True,
    ),
    Param("seed", int, 0, "seed of sampling and perturbations; part of every record's id"),
)

LLM_PARAMS = (
    Param(
        "backend",
        dict,
        None,
        'generation backend, e.g. {"backend": "transformers", "model": "Qwen/Qwen2.5-0.5B"}',
    ),
    Param("max_new_tokens", int, 512, "tokens per reply at most", minimum=1, maximum=32768),
    Param("temperature", float, 0.0, "0 samples greedily", minimum=0.0, maximum=5.0),
    Param("top_p", float, 1.0, "nucleus sampling mass", minimum=0.01, maximum=1.0),
    Param(
        "chat",
        bool,
        True,
        "send each prompt as a user chat message (the model's chat template applies)",
    ),
)


def normalized(text: str) -> str:
    return " ".join(text.lower().split())


def source_overlap(text: str, source: str, n: int = 8) -> float:
    """The share of ``text``'s word n-grams (lowercased) that occur in ``source``."""
    words, source_words = text.lower().split(), source.lower().split()
    if len(words) < n:
        return 1.0 if normalized(text) in normalized(source) else 0.0
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    known = {tuple(source_words[i : i + n]) for i in range(len(source_words) - n + 1)}
    return len(grams & known) / len(grams)


OVERLAP_PARAM = Param(
    "max_source_overlap",
    float,
    None,
    "drop a record whose word 8-grams are more than this share in its source (near copies)",
    nullable=True,
    minimum=0.0,
    maximum=1.0,
)


class DeriveStep(Step):
    """Base of the generator steps; subclasses implement ``derive``."""

    level = "derive"
    template_default: str = ""

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if "template" in self.config:
            try:
                template_check(name=self.config["template_name"], source=self.config["template"])
            except PromptTemplateError as exc:
                raise StepParamError(f"step {self.name!r}, parameter 'template': {exc}") from exc
        backend = self.config.get("backend")
        if backend is not None and not isinstance(backend.get("backend"), str):
            raise StepParamError(
                f'step {self.name!r}, parameter "backend": expected {{"backend": NAME, '
                f'"model": ...}}, got {backend!r}'
            )
        if backend is not None and backend["backend"] not in BACKEND_FACTORIES:
            from pipelines.generation.registry import check_config

            try:
                check_config(backend)
            except GenerationError as exc:
                raise StepParamError(f"step {self.name!r}, parameter 'backend': {exc}") from exc
        if "backend" in self.config:
            # The GPU queue only for a model loaded in the worker (a test double counts).
            local = backend is not None and backend["backend"] != "http"
            self.device = "gpu" if local else "cpu"

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(f"{self.name}_records", "int", "records generated from the document"),
            SignalSpec(
                f"{self.name}_failed", "int", "model replies that did not parse, after one retry"
            ),
            SignalSpec(
                f"{self.name}_dropped",
                "int",
                "records dropped by a check (a copy of the source, an answer in the context)",
            ),
        ]

    def retrieval(self) -> Retrieval | None:
        """Neighbours ``derive`` needs (see Retrieval); None for most steps."""
        return None

    def prompts(self, batch: Sequence[Document]) -> list[str]:
        """The prompts ``derive`` sends for the batch (shown by the preview page)."""
        return []

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        return self.derive(batch, {}).values

    def derive(self, batch: Sequence[Document], neighbours: Neighbours) -> Derivation:
        """New records from ``batch`` and the per-document counts (see the module docstring)."""
        raise NotImplementedError

    @classmethod
    def params_default(cls, name: str) -> Any:
        """The default of parameter ``name``, or None when the step has no such parameter."""
        return next((p.default for p in cls.params if p.name == name), None)

    # Helpers for subclasses.

    @property
    def template(self) -> PromptTemplate:
        return PromptTemplate(name=self.config["template_name"], source=self.config["template"])

    def backend(self) -> Backend:
        return backend_for(self.config["backend"])

    def generation_params(self) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=self.config["max_new_tokens"],
            temperature=self.config["temperature"],
            top_p=self.config["top_p"],
            seed=self.config["seed"],
        )

    def generate_parsed(self, prompts: Sequence[str], parse: Callable[[str], T]) -> list[T | None]:
        """Parse each reply; a malformed one is asked again once, else None (counted).

        The retry shows the model its unreadable reply and asks for the format again
        (as the next chat turn, or appended to a plain prompt), with the next seed.
        """
        if not prompts:
            return []
        backend, params = self.backend(), self.generation_params()
        asked: list[Prompt] = [
            [{"role": "user", "content": p}] if self.config["chat"] else p for p in prompts
        ]
        results: list[T | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        for attempt in range(2):
            attempt_params = replace(params, seed=params.seed + attempt)
            replies = backend.generate([asked[i] for i in todo], attempt_params)
            failed = []
            for index, reply in zip(todo, replies, strict=True):
                try:
                    results[index] = parse(reply.text)
                except OutputParseError as exc:
                    logger.info("%s: reply %d did not parse (%s)", self.name, index, exc)
                    asked[index] = _again(asked[index], reply.text)
                    failed.append(index)
            todo = failed
            if not todo:
                break
        return results

    def lineage(
        self, *, sources: Sequence[Document], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        lineage: dict[str, Any] = {
            "source_ids": [d.id for d in sources],
            "generator": self.name,
            "generator_version": self.version,
            "seed": self.config["seed"],
            "created_at": datetime.now(UTC).isoformat(),
        }
        if self.config.get("backend") is not None:
            # Steps whose model is optional use their template only with the model.
            lineage["template"] = {
                "name": self.config["template_name"],
                "version": self.template.version,
            }
            lineage["backend"] = self.backend().describe()
            lineage["params"] = self.generation_params().as_dict()
        lineage.update(extra or {})
        return lineage

    def external_id(self, source: Document, index: int | str) -> str:
        version = self.template.version if "template" in self.config else self.version
        return f"{self.name}/{version}/s{self.config['seed']}/{source.id}/{index}"

    def counts(self, batch: Sequence[Document]) -> dict[str, dict[int, int]]:
        return {s.name: dict.fromkeys((d.id for d in batch), 0) for s in self.signals()}

    def finish(
        self,
        batch: Sequence[Document],
        records: list[tuple[Document, DerivedRecord]],
        counts: dict[str, dict[int, int]],
    ) -> Derivation:
        """Drop records that copy their source document, count what is kept per document.

        A copy is the same text (case and spacing aside) or, with ``max_source_overlap``
        set, a record whose word 8-grams are more than that share in its source.
        """
        kept = []
        limit = self.config.get("max_source_overlap")
        for source, record in records:
            copy = normalized(record.text) == normalized(source.text)
            if not copy and limit is not None:
                share = source_overlap(record.text, source.text)
                record.meta["source_overlap"] = round(share, 4)
                copy = share > limit
            if copy:
                counts[f"{self.name}_dropped"][source.id] += 1
                continue
            counts[f"{self.name}_records"][source.id] += 1
            kept.append(record)
        return Derivation(
            records=kept,
            values={name: [by_id[d.id] for d in batch] for name, by_id in counts.items()},
        )


def _again(prompt: Prompt, reply: str) -> Prompt:
    reminder = "That reply could not be read. Reply exactly in the format asked for."
    if isinstance(prompt, str):
        return f"{prompt}\n\n{reminder}\n"
    return [
        *prompt,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": reminder},
    ]


def template_params(default: str, name: str) -> tuple[Param, ...]:
    return (
        Param("template", str, default, "Jinja prompt template (sandboxed); see the preview page"),
        Param("template_name", str, name, "the template's name in lineage records"),
    )
