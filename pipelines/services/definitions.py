"""Pipeline definitions: ordered steps with validated parameters, versioned."""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from pipelines.errors import PipelineDefinitionError
from pipelines.models import Pipeline
from pipelines.steps.base import REGISTRY, Step, StepParamError, get_step


def load_steps() -> dict[str, type[Step]]:
    """Import every module in WINNOW_STEP_MODULES so that their steps register.

    Python imports each module once per process; later calls cost a dict lookup.
    """
    for module in settings.WINNOW_STEP_MODULES:
        importlib.import_module(module)
    return REGISTRY


def definition_validate(definition: Any) -> list[dict[str, Any]]:
    """Check a definition and return it normalised: every parameter explicit.

    Raises PipelineDefinitionError naming the step position and the parameter.
    """
    load_steps()
    if not isinstance(definition, list) or not definition:
        raise PipelineDefinitionError("a pipeline definition is a non-empty list of steps")
    normalised = []
    seen_signals: dict[str, int] = {}
    for position, entry in enumerate(definition, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), str):
            raise PipelineDefinitionError(
                f'step {position}: expected {{"step": NAME, "params": {{...}}}}, got {entry!r}'
            )
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise PipelineDefinitionError(f"step {position}: params must be an object")
        try:
            step = get_step(entry["step"])(**params)
        except StepParamError as exc:
            raise PipelineDefinitionError(f"step {position}: {exc}") from exc
        for signal in [*step.signals(), *step.corpus_signals()]:
            if signal.name in seen_signals:
                raise PipelineDefinitionError(
                    f"step {position} ({step.name}) writes signal {signal.name!r}, "
                    f"which step {seen_signals[signal.name]} writes too"
                )
            seen_signals[signal.name] = position
        normalised.append({"step": step.name, "params": step.config})
    return normalised


def step_from_spec(spec: dict[str, Any]) -> Step:
    load_steps()
    return get_step(spec["step"])(**spec["params"])


def definition_snapshot(definition: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a run records of each step: name, version, device, level, params, signals."""
    snapshot = []
    for spec in definition:
        step = step_from_spec(spec)
        snapshot.append(
            {
                "step": step.name,
                "version": step.version,
                "device": step.device,
                "level": step.level,
                "params": step.config,
                "signals": [
                    {"name": s.name, "dtype": s.dtype, "description": s.description}
                    for s in step.signals()
                ],
                "corpus_signals": [
                    {"name": s.name, "dtype": s.dtype, "description": s.description}
                    for s in step.corpus_signals()
                ],
            }
        )
    return snapshot


@transaction.atomic
def pipeline_create(
    *, name: str, definition: Any, description: str = "", batch_size: int = 1000
) -> Pipeline:
    if Pipeline.objects.filter(name=name).exists():
        raise PipelineDefinitionError(f"a pipeline named {name!r} already exists")
    return Pipeline.objects.create(
        name=name,
        slug=slugify(name)[:200] or "pipeline",
        description=description,
        definition=definition_validate(definition),
        batch_size=batch_size,
    )


@transaction.atomic
def pipeline_update(
    *,
    pipeline: Pipeline,
    definition: Any,
    description: str | None = None,
    batch_size: int | None = None,
) -> Pipeline:
    """Replace the definition; the version goes up only when the steps or params change."""
    normalised = definition_validate(definition)
    locked = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if normalised != locked.definition:
        locked.definition = normalised
        locked.version += 1
    if description is not None:
        locked.description = description
    if batch_size is not None:
        locked.batch_size = batch_size
    locked.save()
    return locked
