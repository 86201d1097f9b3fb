"""Applying a classifier to a dataset as its signal, and the Celery task's queue and claim."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from curation.errors import PermanentError, TransientError
from curation.models import Dataset, Signal
from curation.services.leases import requeue_cutoff
from curation.services.signals import signal_define, signal_values_clear, signal_values_write
from curation.services.vectors import vector_shards
from pipelines.models import QualityClassifier
from pipelines.services.classifiers.labels import ClassifierError, classifier_signal_name
from pipelines.services.classifiers.training import _embed_hint

logger = logging.getLogger(__name__)

STEP_NAME = "quality_classifier"
# Rows scored and written per upsert when applying (float32 copy: 64k x 384 x 4 = 100 MB).
APPLY_CHUNK = 65536


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
