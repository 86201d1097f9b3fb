"""Selectors read: query helpers for views, the API and the CLI."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.db.models import QuerySet
from psycopg import sql

from curation.models import Dataset, Document, EvalSet, ImportJob, ImportRejection, Signal
from curation.services.signals import TABLE as SIGNAL_TABLE

PAGE_SIZE = 25


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.select_related("created_by").order_by("name")


@dataclass(frozen=True)
class DocumentPage:
    documents: list[Document]
    next_after: int | None


def document_page(
    *, dataset: Dataset, after: int | None = None, size: int = PAGE_SIZE
) -> DocumentPage:
    """A keyset page of the dataset's documents by id (no OFFSET: constant time at any depth)."""
    qs = Document.objects.filter(dataset=dataset).order_by("id").defer("text")
    if after is not None:
        qs = qs.filter(id__gt=after)
    documents = list(qs[: size + 1])
    next_after = documents[size - 1].pk if len(documents) > size else None
    return DocumentPage(documents=documents[:size], next_after=next_after)


def document_sample(*, dataset: Dataset, size: int = 10, seed: int | None = None) -> list[Document]:
    """A cheap sample: a run of documents starting at a random id (index range scan)."""
    bounds = Document.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)
    first = bounds.first()
    last = bounds.last()
    if first is None or last is None:
        return []
    start = random.Random(seed).randint(first, last)
    qs = Document.objects.filter(dataset=dataset).order_by("id")
    docs = list(qs.filter(id__gte=start)[:size])
    if len(docs) < size:
        docs = list(qs.filter(id__lt=start).order_by("-id")[: size - len(docs)])[::-1] + docs
    return docs


def document_preview(document: Document, chars: int = 300) -> str:
    return document.text[:chars]


@dataclass(frozen=True)
class SignalValue:
    signal: Signal
    value: Any


def document_signals(*, document: Document) -> list[SignalValue]:
    """Every signal value stored for the document, by signal name."""
    signals = list(Signal.objects.order_by("name"))
    if not signals:
        return []
    with connection.cursor() as cursor:
        query = sql.SQL("SELECT {} FROM {} WHERE dataset_id = %s AND document_id = %s").format(
            sql.SQL(", ").join(sql.Identifier(s.column_name) for s in signals),
            sql.Identifier(SIGNAL_TABLE),
        )
        cursor.execute(query.as_string(cursor.connection), [document.dataset_id, document.pk])
        row = cursor.fetchone()
    if row is None:
        return []
    return [
        SignalValue(s, _decode(s, v)) for s, v in zip(signals, row, strict=True) if v is not None
    ]


def _decode(signal: Signal, value: Any) -> Any:
    # Django's psycopg setup hands jsonb to raw cursors as text.
    if signal.dtype == Signal.Dtype.JSON and isinstance(value, str):
        return orjson.loads(value)
    return value


def document_meta_json(document: Document) -> str:
    return orjson.dumps(document.meta, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def dataset_imports(*, dataset: Dataset, limit: int = 20) -> QuerySet[ImportJob]:
    return dataset.imports.select_related("created_by").order_by("-created_at")[:limit]


def import_rejections(*, job: ImportJob, limit: int | None = 100) -> QuerySet[ImportRejection]:
    qs = job.rejections.order_by("source", "number")
    return qs[:limit] if limit is not None else qs


def evalset_list() -> QuerySet[EvalSet]:
    return EvalSet.objects.order_by("name")
