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

Layout: ``labels`` parses the label rules and selects the labelled documents (and holds
``ClassifierError``), ``training`` cross-validates and stores a classifier, ``apply`` writes
its signal over a dataset and queues and claims the Celery task's work.
"""

from __future__ import annotations

from pipelines.services.classifiers.apply import (
    APPLY_CHUNK,
    STEP_NAME,
    classifier_apply,
    classifier_apply_execute,
    classifier_apply_queue,
)
from pipelines.services.classifiers.labels import (
    EQUALITY_OPS,
    OPS,
    REST,
    SIGNAL_PREFIX,
    ClassifierError,
    Rule,
    classifier_signal_name,
    label_sets,
    labels_parse,
)
from pipelines.services.classifiers.training import classifier_train, cross_validate

__all__ = [
    "APPLY_CHUNK",
    "EQUALITY_OPS",
    "OPS",
    "REST",
    "SIGNAL_PREFIX",
    "STEP_NAME",
    "ClassifierError",
    "Rule",
    "classifier_apply",
    "classifier_apply_execute",
    "classifier_apply_queue",
    "classifier_signal_name",
    "classifier_train",
    "cross_validate",
    "label_sets",
    "labels_parse",
]
