"""Training: cross-validated logistic regression on the labelled documents' stored vectors."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Max

from curation.models import Dataset
from curation.services.vectors import vectors_load
from pipelines.models import QualityClassifier
from pipelines.services.classifiers.labels import (
    ClassifierError,
    classifier_signal_name,
    label_sets,
)

logger = logging.getLogger(__name__)


def _embed_hint(embedding_model: str) -> str:
    model, _, length = embedding_model.partition("@")
    params = f'"model": "{model}"' + (f', "max_length": {length}' if length else "")
    return f'run a pipeline with the embed step ({{"step": "embed", "params": {{{params}}}}})'


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, y)


def cross_validate(
    x: np.ndarray, y: np.ndarray, *, folds: int, c: float, threshold: float = 0.5
) -> dict[str, Any]:
    """Stratified k-fold metrics of the classifier: per fold and their mean."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    names = ("precision", "recall", "f1", "roc_auc")
    per_fold = []
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(x, y)
    for number, (train, test) in enumerate(splits, start=1):
        probability = _fit(x[train], y[train], c).predict_proba(x[test])[:, 1]
        predicted = probability >= threshold
        truth = y[test]
        per_fold.append(
            {
                "fold": number,
                "precision": float(precision_score(truth, predicted, zero_division=0)),
                "recall": float(recall_score(truth, predicted, zero_division=0)),
                "f1": float(f1_score(truth, predicted, zero_division=0)),
                "roc_auc": float(roc_auc_score(truth, probability)),
                "positive": int(truth.sum()),
                "negative": int(len(truth) - truth.sum()),
            }
        )
    mean = {name: float(np.mean([f[name] for f in per_fold])) for name in names}
    std = {name: float(np.std([f[name] for f in per_fold])) for name in names}
    return {"folds": per_fold, "mean": mean, "std": std, "threshold": threshold}


def classifier_train(
    *,
    dataset: Dataset,
    name: str,
    embedding_model: str,
    labels: Any,
    folds: int = 5,
    c: float = 1.0,
    threshold: float = 0.5,
    user: User | AnonymousUser | None = None,
) -> QualityClassifier:
    """Train, cross-validate and store a new version of the classifier ``name``.

    1. Select the positive and negative documents by the label rules (SQL over signals).
    2. Load their vectors of ``embedding_model``; refuse if any is missing (say which step
       embeds them) or if a class has fewer than ``folds`` documents.
    3. Cross-validate logistic regression (balanced class weights) with stratified folds.
    4. Refit on every labelled document and store the weights as version n + 1 of ``name``.
    """
    started = time.perf_counter()
    signal_name = classifier_signal_name(name)
    if not 2 <= folds <= 20:
        raise ClassifierError(f"folds must be between 2 and 20, got {folds}")
    if not c > 0:
        raise ClassifierError(f"C must be above 0, got {c}")
    positive, negative, ambiguous = label_sets(dataset=dataset, labels=labels)
    for side, ids in (("positive", positive), ("negative", negative)):
        if len(ids) < folds:
            raise ClassifierError(
                f"only {len(ids)} {side} document(s) in {dataset.name!r} match the {side} rule "
                f"(at least {folds} are needed for {folds}-fold cross-validation): label more "
                "documents, widen the rule, or use fewer folds"
            )
    wanted = np.concatenate([positive, negative])
    stored = vectors_load(dataset_id=dataset.pk, model=embedding_model, ids=wanted.tolist())
    if len(stored) < len(wanted):
        raise ClassifierError(
            f"{len(wanted) - len(stored)} of {len(wanted)} labelled documents have no stored "
            f"vector of {embedding_model!r}: {_embed_hint(embedding_model)} on {dataset.name!r} "
            "(it embeds only the documents that have none), then train again"
        )
    # vectors_load returns ids ascending: look each one's class up.
    x = stored.vectors.astype(np.float32)
    y = np.isin(stored.ids, positive).astype(np.int64)
    metrics = cross_validate(x, y, folds=folds, c=c, threshold=threshold)
    model = _fit(x, y, c)
    metrics["counts"] = {
        "positive": int(len(positive)),
        "negative": int(len(negative)),
        "ambiguous": ambiguous,
    }
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "classifier %s: %d positive, %d negative, mean F1 %.3f, AUC %.3f, %.2fs",
        name,
        len(positive),
        len(negative),
        metrics["mean"]["f1"],
        metrics["mean"]["roc_auc"],
        metrics["seconds"],
    )
    for attempt in range(3):
        try:
            with transaction.atomic():
                latest = QualityClassifier.objects.filter(name=name).aggregate(Max("version"))
                return QualityClassifier.objects.create(
                    name=name,
                    version=(latest["version__max"] or 0) + 1,
                    dataset=dataset,
                    embedding_model=embedding_model,
                    labels=labels,
                    folds=folds,
                    c=c,
                    threshold=threshold,
                    metrics=metrics,
                    weights=[float(w) for w in model.coef_[0]],
                    intercept=float(model.intercept_[0]),
                    signal_name=signal_name,
                    created_by=user if user is not None and user.is_authenticated else None,
                )
        except IntegrityError:  # another request took the version number: take the next
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
