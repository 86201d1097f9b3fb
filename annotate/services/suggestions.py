"""Model suggestions (pre-annotations) for one question of a project, written set-based.

A suggestion comes from a signal: a rule ``signal op value`` that picks one label when
true and another when false, or a score (an in-app classifier's ``qc_<name>``, an LLM
judge's float) with a threshold between two labels, or mapped linearly onto the rating
scale of one attribute. Each source is one statement over the project's items joined to
the signal table; running the same source again replaces its suggestions (upsert, and
the items whose document lost its value lose their suggestion).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from psycopg import sql

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Question, Suggestion
from curation.models import Signal
from curation.services.signals import TABLE as SIGNAL_TABLE

logger = logging.getLogger(__name__)

RULE_OPS = ("==", "!=", ">=", "<=", ">", "<")
_SQL_OPS = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_NUMERIC = (Signal.Dtype.FLOAT, Signal.Dtype.INT)
_RULE_DTYPES = (*_NUMERIC, Signal.Dtype.BOOL, Signal.Dtype.TEXT)


@dataclass(frozen=True)
class SuggestionsMade:
    source: str
    written: int
    removed: int
    seconds: float


def _check(project: AnnotationProject, question: Question, kinds: tuple[str, ...]) -> None:
    if question.project_id != project.pk:
        raise ProjectError(f"question {question.key!r} is not a question of {project.name}")
    if question.kind not in kinds:
        raise ProjectError(
            f"question {question.key!r} is {question.kind}; this source suggests answers to "
            f"{' or '.join(kinds)} questions"
        )


def _column(signal: Signal) -> sql.Composable:
    """The signal's column of the signal row ``v``."""
    return sql.SQL("v.{}").format(sql.Identifier(signal.column_name))


def _label(question: Question, label: str, field: str) -> str:
    if label not in question.config["labels"]:
        raise ProjectError(
            f"{field}: {label!r} is not a label of {question.key!r} "
            f"(labels: {', '.join(question.config['labels'])})"
        )
    return label


def _rule_value(signal: Signal, value: Any) -> tuple[Any, str]:
    """The rule's value in the signal's type, and the SQL cast for it."""
    try:
        if signal.dtype in _NUMERIC:
            return float(value), "float8"
        if signal.dtype == Signal.Dtype.BOOL:
            text = str(value).strip().lower()
            if text not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text in ("true", "1"), "boolean"
    except (TypeError, ValueError) as exc:
        raise ProjectError(
            f"value: {value!r} is not a {signal.dtype} like the values of {signal.name!r}"
        ) from exc
    return str(value), "text"


def _write(
    *,
    project: AnnotationProject,
    question: Question,
    origin: str,
    source: str,
    signal: Signal,
    values: sql.Composable,
    score: sql.Composable,
    params: list[Any],
) -> SuggestionsMade:
    """Replace the (question, source) suggestions with one per item whose document has a value.

    ``values`` and ``score`` are SQL over ``v`` (the signal row, see ``_column``) and
    ``params`` their parameters, in order.
    """
    started = time.perf_counter()
    if len(source) > 200:
        raise ProjectError("the source description is longer than 200 characters")
    column = _column(signal)
    statement = sql.SQL(
        "WITH fresh AS MATERIALIZED ("
        " SELECT i.id AS item_id, {values} AS values, {score} AS score"
        " FROM annotate_item i JOIN {table} v"
        "  ON v.dataset_id = %s AND v.document_id = i.document_id"
        " WHERE i.project_id = %s AND {column} IS NOT NULL),"
        " gone AS (DELETE FROM annotate_suggestion s WHERE s.question_id = %s AND s.source = %s"
        "  AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.item_id = s.item_id) RETURNING 1),"
        " written AS (INSERT INTO annotate_suggestion"
        "  (project_id, item_id, question_id, origin, source, values, score, created_at)"
        "  SELECT %s, item_id, %s, %s, %s, values, score, now() FROM fresh"
        "  ON CONFLICT (item_id, question_id, source) DO UPDATE SET origin = EXCLUDED.origin,"
        "  values = EXCLUDED.values, score = EXCLUDED.score, created_at = EXCLUDED.created_at"
        "  RETURNING 1)"
        " SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM gone)"
    ).format(values=values, score=score, table=sql.Identifier(SIGNAL_TABLE), column=column)
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(cursor.connection),
            [
                *params,
                project.dataset_id,
                project.pk,
                question.pk,
                source,
                project.pk,
                question.pk,
                origin,
                source,
            ],
        )
        written, removed = cursor.fetchone()
    seconds = time.perf_counter() - started
    logger.info(
        "project %s: %d suggestions from %r for %s (%d removed) in %.2fs",
        project.pk,
        written,
        source,
        question.key,
        removed,
        seconds,
    )
    return SuggestionsMade(source=source, written=written, removed=removed, seconds=seconds)


@transaction.atomic
def suggestions_from_rule(
    *,
    project: AnnotationProject,
    question: Question,
    signal: Signal,
    op: str,
    value: Any,
    label_true: str,
    label_false: str,
) -> SuggestionsMade:
    """Suggest ``label_true`` where ``signal op value`` holds, ``label_false`` where not.

    For a single-label question. Items whose document has no value get no suggestion;
    the score is the signal's value when it is a number.
    """
    _check(project, question, (Question.Kind.SINGLE_LABEL,))
    if op not in RULE_OPS:
        raise ProjectError(f"op: {op!r} is not one of {', '.join(RULE_OPS)}")
    if signal.dtype not in _RULE_DTYPES:
        raise ProjectError(
            f"signal {signal.name!r} holds {signal.dtype} values; rules need "
            "numbers, booleans or text"
        )
    if signal.dtype in (Signal.Dtype.BOOL, Signal.Dtype.TEXT) and op not in ("==", "!="):
        raise ProjectError(f"op: {signal.dtype} signals compare with == or != only")
    threshold, cast = _rule_value(signal, value)
    labels = [
        _label(question, label_true, "label_true"),
        _label(question, label_false, "label_false"),
    ]
    shown = threshold if not isinstance(threshold, bool) else str(threshold).lower()
    return _write(
        project=project,
        question=question,
        origin=Suggestion.Origin.SIGNAL_RULE,
        source=f"{signal.name} {op} {shown}",
        signal=signal,
        values=sql.SQL(
            "jsonb_build_object('label', CASE WHEN {column} {op} %s::{cast} "
            "THEN %s::text ELSE %s::text END)"
        ).format(column=_column(signal), op=sql.SQL(_SQL_OPS[op]), cast=sql.SQL(cast)),
        score=sql.SQL("{}::float8").format(_column(signal))
        if signal.dtype in _NUMERIC
        else sql.SQL("NULL::float8"),
        params=[threshold, *labels],
    )


@transaction.atomic
def suggestions_from_score(
    *,
    project: AnnotationProject,
    question: Question,
    signal: Signal,
    origin: str = Suggestion.Origin.CLASSIFIER,
    threshold: float | None = None,
    label_above: str = "",
    label_below: str = "",
    attribute: str = "",
    score_low: float = 0.0,
    score_high: float = 1.0,
) -> SuggestionsMade:
    """Suggest answers from a model's score signal (a classifier's or a judge's).

    Single-label question: ``label_above`` where score >= ``threshold``, else
    ``label_below``. Rating question: the score mapped linearly from
    [``score_low``, ``score_high``] onto the question's scale for ``attribute``,
    rounded half up and clamped to the scale (score_low -> the lowest point).
    """
    if origin not in Suggestion.Origin.values:
        raise ProjectError(
            f"origin: {origin!r} is not one of {', '.join(Suggestion.Origin.values)}"
        )
    _check(project, question, (Question.Kind.SINGLE_LABEL, Question.Kind.RATING))
    if signal.dtype not in _NUMERIC:
        raise ProjectError(f"signal {signal.name!r} holds {signal.dtype} values, not scores")
    column = _column(signal)
    score = sql.SQL("{}::float8").format(column)
    if question.kind == Question.Kind.SINGLE_LABEL:
        if threshold is None:
            raise ProjectError("threshold: a single-label question needs the score threshold")
        labels = [
            _label(question, label_above, "label_above"),
            _label(question, label_below, "label_below"),
        ]
        return _write(
            project=project,
            question=question,
            origin=origin,
            source=f"{signal.name} >= {threshold:g}",
            signal=signal,
            values=sql.SQL(
                "jsonb_build_object('label', CASE WHEN {}::float8 >= %s::float8 "
                "THEN %s::text ELSE %s::text END)"
            ).format(column),
            score=score,
            params=[float(threshold), *labels],
        )
    if attribute not in question.config["attributes"]:
        raise ProjectError(
            f"attribute: {attribute!r} is not an attribute of {question.key!r} "
            f"(attributes: {', '.join(question.config['attributes'])})"
        )
    if not score_high > score_low:
        raise ProjectError(f"score range: high {score_high} must be above low {score_low}")
    low, high = question.config["scale"]
    return _write(
        project=project,
        question=question,
        origin=origin,
        source=f"{signal.name} [{score_low:g}, {score_high:g}] -> {attribute}",
        signal=signal,
        values=sql.SQL(
            "jsonb_build_object('ratings', jsonb_build_object(%s::text, least(%s::int, "
            "greatest(%s::int, floor(%s::float8 + ({column}::float8 - %s::float8) "
            "/ (%s::float8 - %s::float8) * (%s::float8 - %s::float8) + 0.5)::int))))"
        ).format(column=column),
        score=score,
        params=[attribute, high, low, low, score_low, score_high, score_low, high, low],
    )


@transaction.atomic
def suggestions_clear(*, project: AnnotationProject, question: Question, source: str) -> int:
    """Remove one source's suggestions for the question; returns how many."""
    deleted, _ = Suggestion.objects.filter(
        project=project, question=question, source=source
    ).delete()
    return deleted


def suggestions_create(
    *, project: AnnotationProject, mode: str, question: Question, signal: Signal, **options: Any
) -> SuggestionsMade:
    """Make suggestions as the curator's form asks: ``rule`` or ``score`` (see each)."""
    if mode == "rule":
        return suggestions_from_rule(project=project, question=question, signal=signal, **options)
    if mode == "score":
        return suggestions_from_score(project=project, question=question, signal=signal, **options)
    raise ProjectError(f"mode: {mode!r} is not rule or score")
