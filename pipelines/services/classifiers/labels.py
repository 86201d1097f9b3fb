"""Which documents are positive and which negative: label rules over signals, read in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.utils.text import slugify
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Dataset, Signal
from curation.services.signals import TABLE

OPS = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
EQUALITY_OPS = ("==", "!=")
REST = "rest"
SIGNAL_PREFIX = "qc_"


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
