"""The in-app quality classifier: logistic regression on stored embeddings (DFN / DsDm).

Curators say which documents are good and which are not with rules over signals (a heuristic's
verdict, an annotation answer turned into a signal); the classifier learns that split from the
documents' stored vectors, is cross-validated before anyone uses it, and is then applied to a
whole dataset as the float signal ``qc_<name>``: its probability of the positive class.

Training (``classifier_train``) runs in the request: the labelled set is selected in one SQL
scan of the dataset's signal partition, and logistic regression on up to ~100k labelled 384-d
vectors takes seconds per fold. Applying (``classifier_apply``) streams every memory-mapped
vector shard, scores it in chunks with numpy and upserts the values; it runs as a Celery task
(``pipelines.tasks.classifier_apply``) with its state on the classifier row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.text import slugify
from psycopg import sql

from curation.errors import PermanentError, TransientError
from curation.models import Dataset, Signal
from curation.services.leases import requeue_cutoff
from curation.services.signals import (
    TABLE,
    signal_define,
    signal_values_clear,
    signal_values_write,
)
from curation.services.vectors import vector_shards, vectors_load
from pipelines.models import QualityClassifier

logger = logging.getLogger(__name__)

OPS = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
EQUALITY_OPS = ("==", "!=")
REST = "rest"
SIGNAL_PREFIX = "qc_"
STEP_NAME = "quality_classifier"
# Rows scored and written per upsert when applying (float32 copy: 64k x 384 x 4 = 100 MB).
APPLY_CHUNK = 65536


class ClassifierError(PermanentError):
    """The classifier cannot be trained or applied as asked; the message says what to do."""


@dataclass(frozen=True)
class Rule:
    """One condition on one signal's value: ``signal op value``."""

    signal: Signal
    op: str
    value: Any


def classifier_signal_name(name: str) -> str:
    """The signal a classifier writes: ``qc_`` and its name as a slug with underscores."""
    slug = slugify(name).replace("-", "_")
    if not slug:
        raise ClassifierError(
            f"classifier name {name!r} has no letters or digits: give it a name such as 'edu'"
        )
    return SIGNAL_PREFIX + slug[:80]


def _rule(raw: Any, side: str) -> Rule:
    if not isinstance(raw, dict) or set(raw) != {"signal", "op", "value"}:
        raise ClassifierError(
            f'{side} rule: expected {{"signal": NAME, "op": "==", "value": VALUE}}, got {raw!r}'
        )
    signal = Signal.objects.filter(name=raw["signal"]).first()
    if signal is None:
        raise ClassifierError(
            f"{side} rule: there is no signal {raw['signal']!r}; run the step that writes it first"
        )
    op, value = raw["op"], raw["value"]
    if op not in OPS:
        raise ClassifierError(f"{side} rule: op {op!r} is not one of {list(OPS)}")
    numeric = signal.dtype in (Signal.Dtype.FLOAT, Signal.Dtype.INT)
    if signal.dtype == Signal.Dtype.JSON:
        raise ClassifierError(f"{side} rule: signal {signal.name!r} holds JSON; pick another")
    if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ClassifierError(f"{side} rule: {signal.name} is a number; {value!r} is not")
    if signal.dtype == Signal.Dtype.BOOL and not isinstance(value, bool):
        raise ClassifierError(f"{side} rule: {signal.name} is true or false; {value!r} is not")
    if signal.dtype == Signal.Dtype.TEXT and not isinstance(value, str):
        raise ClassifierError(f"{side} rule: {signal.name} is text; {value!r} is not")
    if not numeric and op not in EQUALITY_OPS:
        raise ClassifierError(
            f"{side} rule: {signal.name} holds {signal.dtype} values: compare with == or !="
        )
    return Rule(signal, op, value)


def labels_parse(labels: Any) -> tuple[list[Rule], list[Rule] | None]:
    """(positive rules, negative rules or None for "rest"); raises ClassifierError.

    A side is one rule or a non-empty list of rules that must all hold.
    """
    if not isinstance(labels, dict) or set(labels) != {"positive", "negative"}:
        raise ClassifierError('labels: expected {"positive": RULE, "negative": RULE or "rest"}')
    sides: list[list[Rule] | None] = []
    for side in ("positive", "negative"):
        raw = labels[side]
        if side == "negative" and raw == REST:
            sides.append(None)
            continue
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise ClassifierError(f"{side} rules: the list is empty")
        sides.append([_rule(item, side) for item in items])
    positive, negative = sides
    assert positive is not None
    return positive, negative


def _condition(rules: list[Rule]) -> sql.Composable:
    """SQL that is true where every rule holds (false, not NULL, where a value is missing)."""
    parts = []
    for rule in rules:
        cast = "double precision" if rule.signal.dtype in ("float", "int") else rule.signal.dtype
        cast = {"bool": "boolean"}.get(cast, cast)
        parts.append(
            sql.SQL("COALESCE({} {} {}::{}, false)").format(
                sql.Identifier(rule.signal.column_name),
                sql.SQL(OPS[rule.op]),
                sql.Literal(rule.value),
                sql.SQL(cast),
            )
        )
    return sql.SQL("({})").format(sql.SQL(" AND ").join(parts))


def label_sets(*, dataset: Dataset, labels: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(positive ids, negative ids, ambiguous count): one scan of the dataset's signal rows.

    "rest" negatives are the documents with a value for every positive-side signal that the
    positive rules reject. A document both rules select is ambiguous and left out of both.
    """
    positive, negative = labels_parse(labels)
    pos = _condition(positive)
    if negative is None:
        present = sql.SQL(" AND ").join(
            sql.SQL("{} IS NOT NULL").format(sql.Identifier(r.signal.column_name)) for r in positive
        )
        neg: sql.Composable = sql.SQL("(NOT {} AND {})").format(pos, present)
    else:
        neg = _condition(negative)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT document_id, {pos}, {neg} FROM {table} "
                "WHERE dataset_id = {dataset} AND ({pos} OR {neg}) ORDER BY document_id"
            )
            .format(pos=pos, neg=neg, table=sql.Identifier(TABLE), dataset=sql.Literal(dataset.pk))
            .as_string(cursor.connection)
        )
        rows = cursor.fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    is_pos = np.fromiter((r[1] for r in rows), dtype=bool, count=len(rows))
    is_neg = np.fromiter((r[2] for r in rows), dtype=bool, count=len(rows))
    both = is_pos & is_neg
    return ids[is_pos & ~both], ids[is_neg & ~both], int(both.sum())


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


def _probability(x: np.ndarray, weights: np.ndarray, intercept: float) -> np.ndarray:
    z = x.astype(np.float32) @ weights + np.float32(intercept)
    return 0.5 * (1.0 + np.tanh(0.5 * z.astype(np.float64)))  # the logistic, without overflow


def classifier_apply(
    *,
    classifier: QualityClassifier,
    dataset: Dataset,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the classifier's probability as its signal for every document with a vector.

    Streams the dataset's memory-mapped vector shards, scores APPLY_CHUNK rows at a time and
    upserts them; the signal's earlier values in this dataset are cleared first, so a rerun
    (or a new version) replaces them and documents without a vector keep none. Returns the
    number of documents scored; ``progress(done, total)`` is called after each chunk.
    """
    started = time.perf_counter()
    weights = np.asarray(classifier.weights, dtype=np.float32)
    shards = list(vector_shards(dataset_id=dataset.pk, model=classifier.embedding_model))
    if not shards:
        raise ClassifierError(
            f"{dataset.name!r} has no stored vectors of {classifier.embedding_model!r}: "
            f"{_embed_hint(classifier.embedding_model)} on it first"
        )
    for _, vectors in shards:
        if vectors.shape[1] != len(weights):
            raise ClassifierError(
                f"{dataset.name!r} has {vectors.shape[1]}-d vectors under "
                f"{classifier.embedding_model!r} but {classifier} has {len(weights)} weights"
            )
    total = len(np.unique(np.concatenate([ids for ids, _ in shards])))
    signal = signal_define(
        name=classifier.signal_name or classifier_signal_name(classifier.name),
        step=STEP_NAME,
        step_version=f"v{classifier.version}",
        dtype=Signal.Dtype.FLOAT,
        description=f"P(positive) of quality classifier {classifier.name} "
        f"v{classifier.version} (logistic regression on {classifier.embedding_model} vectors)",
    )
    signal_values_clear(signal=signal, dataset=dataset)
    seen = np.zeros(0, dtype=np.int64)
    done = 0
    for ids, vectors in shards:
        fresh = ~np.isin(ids, seen)  # racing writers may have stored an id twice: first wins
        for start in range(0, len(ids), APPLY_CHUNK):
            keep = fresh[start : start + APPLY_CHUNK]
            chunk_ids = ids[start : start + APPLY_CHUNK][keep]
            if not len(chunk_ids):
                continue
            scores = _probability(
                np.asarray(vectors[start : start + APPLY_CHUNK])[keep],
                weights,
                classifier.intercept,
            )
            done += signal_values_write(
                signal=signal,
                dataset_id=dataset.pk,
                values=zip(chunk_ids.tolist(), scores.tolist(), strict=True),
            )
            if progress is not None:
                progress(done, total)
        seen = np.union1d(seen, ids)
    logger.info(
        "classifier %s applied to dataset %s: %d documents in %.2fs",
        classifier,
        dataset.pk,
        done,
        time.perf_counter() - started,
    )
    return done


def classifier_apply_queue(
    *, classifier: QualityClassifier, dataset: Dataset | None = None
) -> bool:
    """Queue the apply task (after commit); False when an application is already under way.

    An application queued or started longer ago than WINNOW_REQUEUE_AFTER_SECONDS counts as
    lost (a broker restart, a killed worker) and is queued again.
    """
    from pipelines.tasks import classifier_apply as task

    target = dataset or classifier.dataset
    active = (QualityClassifier.Status.PENDING, QualityClassifier.Status.RUNNING)
    with transaction.atomic():
        queued = (
            QualityClassifier.objects.filter(pk=classifier.pk)
            .filter(
                ~Q(status__in=active)
                | Q(status=QualityClassifier.Status.PENDING, queued_at__lt=requeue_cutoff())
                | Q(status=QualityClassifier.Status.RUNNING, started_at__lt=requeue_cutoff())
            )
            .update(
                status=QualityClassifier.Status.PENDING,
                error="",
                applied_to=target,
                documents_scored=0,
                documents_total=0,
                queued_at=timezone.now(),
                started_at=None,
            )
        )
        if queued:
            transaction.on_commit(lambda: task.delay(classifier.pk, target.pk))
    classifier.refresh_from_db()
    return bool(queued)


def classifier_apply_execute(*, classifier_id: int, dataset_id: int) -> int | None:
    """The apply task's body: claim the queued application, run it, record the outcome.

    The claim is a conditional UPDATE (pending, or running with an expired start): a
    duplicated message finds nothing to do and returns None.
    """
    rows = QualityClassifier.objects.filter(pk=classifier_id, applied_to_id=dataset_id)
    claimed = rows.filter(
        Q(status=QualityClassifier.Status.PENDING)
        | Q(status=QualityClassifier.Status.RUNNING, started_at__lt=requeue_cutoff())
    ).update(status=QualityClassifier.Status.RUNNING, started_at=timezone.now(), error="")
    if not claimed:
        logger.info("classifier %s: no queued application to dataset %s", classifier_id, dataset_id)
        return None
    classifier = QualityClassifier.objects.select_related("applied_to").get(pk=classifier_id)
    assert classifier.applied_to is not None

    def progress(done: int, total: int) -> None:
        rows.update(documents_scored=done, documents_total=total)

    try:
        count = classifier_apply(
            classifier=classifier, dataset=classifier.applied_to, progress=progress
        )
    except TransientError:
        rows.update(status=QualityClassifier.Status.PENDING)  # the task's retry claims it again
        raise
    except PermanentError as exc:
        rows.update(status=QualityClassifier.Status.FAILED, error=str(exc))
        return None
    except Exception as exc:
        rows.update(status=QualityClassifier.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    rows.update(
        status=QualityClassifier.Status.DONE,
        documents_scored=count,
        documents_total=count,
        applied_at=timezone.now(),
    )
    return count
