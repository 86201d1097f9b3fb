"""Core domain: datasets, documents, signals, duplicate groups, imports, API tokens.

Signal values do not live in a Django model: they are typed columns of one wide
table partitioned by dataset (``curation_signal_row``, see migration 0002 and
``services/signals.py``), chosen by measurement (bench/signal_storage_bench.py).

Layout: ``datasets`` (Dataset, ImportJob, ImportRejection, Document), ``signals``
(Signal, SignalWrite), ``duplicates`` (DuplicateGroup, DuplicateMember, DuplicateVerdict),
``recipes`` (Recipe, RecipeVersion, ExportSnapshot), ``evalsets`` (EvalSet, EvalItem),
``tokens`` (ApiToken) and ``text_hits`` (TextHits). Every model is imported here, so
that Django's app registry finds it and ``from curation.models import X`` keeps working;
each keeps the ``curation`` app label, its module being under the app.
"""

from __future__ import annotations

from curation.models.datasets import Dataset, Document, ImportJob, ImportRejection
from curation.models.duplicates import DuplicateGroup, DuplicateMember, DuplicateVerdict
from curation.models.evalsets import EvalItem, EvalSet
from curation.models.recipes import ExportSnapshot, Recipe, RecipeVersion
from curation.models.signals import Signal, SignalWrite
from curation.models.text_hits import TextHits
from curation.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "Dataset",
    "Document",
    "DuplicateGroup",
    "DuplicateMember",
    "DuplicateVerdict",
    "EvalItem",
    "EvalSet",
    "ExportSnapshot",
    "ImportJob",
    "ImportRejection",
    "Recipe",
    "RecipeVersion",
    "Signal",
    "SignalWrite",
    "TextHits",
]
