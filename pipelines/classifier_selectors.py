"""Reads for the quality-classifier pages (see services/classifiers/ for the writes)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from curation.models import Signal
from curation.services.vectors import model_key, vector_models
from pipelines.devices import DEFAULT_EMBEDDING_MODEL
from pipelines.models import PipelineRun, QualityClassifier
from pipelines.services.definitions import step_from_spec
from pipelines.steps.base import StepParamError


def classifier_list(*, dataset_id: int) -> QuerySet[QualityClassifier]:
    """The classifiers trained on a dataset, newest version of each name first."""
    return QualityClassifier.objects.filter(dataset_id=dataset_id).order_by("name", "-version")


def classifier_versions(*, classifier: QualityClassifier) -> QuerySet[QualityClassifier]:
    return QualityClassifier.objects.filter(name=classifier.name).order_by("-version")


def classifier_embedding_models(*, dataset_id: int, runs: int = 200) -> list[str]:
    """Embedding models (vector keys) with vectors stored for the dataset.

    The vector store names its directories by a hash of the key, so the keys come from what
    may have written them: the steps of the dataset's recent runs, earlier classifiers and
    the default model; those whose directory exists are offered.
    """
    present = set(vector_models(dataset_id=dataset_id))
    if not present:
        return []
    names = {DEFAULT_EMBEDDING_MODEL}
    names.update(
        QualityClassifier.objects.filter(dataset_id=dataset_id).values_list(
            "embedding_model", flat=True
        )
    )
    recent = PipelineRun.objects.filter(dataset_id=dataset_id).order_by("-created_at")[:runs]
    for definition in recent.values_list("definition", flat=True):
        for spec in definition:
            try:
                model = step_from_spec(spec).vector_model()
            except (StepParamError, KeyError, TypeError):  # a step renamed or changed since
                continue
            if model:
                names.add(model)
    return sorted(name for name in names if model_key(name) in present)


def label_signals() -> QuerySet[Signal]:
    """Signals a label rule can compare (every dtype but JSON)."""
    return Signal.objects.exclude(dtype=Signal.Dtype.JSON).order_by("name")


def rule_text(rules: Any) -> str:
    """A label side as people read it: ``fineweb_quality_keep == true AND ...`` or ``rest``."""
    if isinstance(rules, str):
        return rules
    items = rules if isinstance(rules, list) else [rules]
    parts = []
    for rule in items:
        value = rule.get("value")
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        parts.append(f"{rule.get('signal')} {rule.get('op')} {shown}")
    return " AND ".join(parts)
