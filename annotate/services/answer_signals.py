"""Final answers become signals on the documents, so that recipes and classifiers can use them.

Each question of a project gives one or more signals named
``ann_<project slug>_<question key>[_<part>]`` (``-`` becomes ``_``):

=============  ===============================================================
single_label   ``..._<key>`` text: the label
multi_label    ``..._<key>`` json: the list of labels
spans          ``..._<key>`` json: the list of spans; ``..._<key>_count`` int
rating         ``..._<key>_<attribute>`` float, one per attribute
pairwise       ``..._<key>`` text: a, b or tie; ``..._<key>_strength`` int
rewrite        ``..._<key>`` text: the rewritten text
=============  ===============================================================

Values go on the item's document (the first document, text A, of a pair). The write is
set-based and idempotent: the answers are staged in SQL straight from the final answers,
one upsert changes only the rows whose values differ, and one update clears the values of
documents that no longer have an answer. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial

from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from psycopg import sql

from annotate import questions as kinds
from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Question
from curation.models import Signal
from curation.services.signals import (
    ANNOTATION_SIGNAL_PREFIX,
    SQL_TYPES,
    TABLE,
    signal_define,
    signal_partition_ensure,
)

logger = logging.getLogger(__name__)

STEP_NAME = "annotation_answers"
STEP_VERSION = "1"
MAX_NAME = 100  # Signal.name's length
# pg_advisory_xact_lock(namespace, project id): one write per project at a time.
LOCK_NAMESPACE = 0x616E6E  # "ann"
STAGE = "winnow_answer_stage"


@dataclass(frozen=True)
class AnswerSignalSpec:
    """One signal made from one question's answers: how to read it out of the answer JSON.

    ``extract`` is ``text`` (a string at ``path``), ``json`` (an array at ``path``),
    ``count`` (the length of the array at ``path``) or ``number`` (a number at ``path``).
    """

    name: str
    dtype: str
    question_id: int
    extract: str
    path: tuple[str, ...]
    description: str


@dataclass
class AnswerSignalsReport:
    """What one write did: answers per question, rows changed and cleared, signals written."""

    signals: list[str] = field(default_factory=list)
    final_answers: dict[str, int] = field(default_factory=dict)
    agreed_answers: dict[str, int] = field(default_factory=dict)
    rows_changed: int = 0
    rows_cleared: int = 0
    seconds: float = 0.0


def _part(text: str) -> str:
    return slugify(text).replace("-", "_")


def signal_name_for(project: AnnotationProject, *parts: str) -> str:
    """``ann_<slug>_<parts...>``; past 100 characters, cut and ended by a hash of the whole."""
    name = ANNOTATION_SIGNAL_PREFIX + "_".join([_part(project.slug), *parts])
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def _source_text(project: AnnotationProject, include_agreed: bool) -> str:
    text = "From reviewed final answers"
    if include_agreed:
        text += (
            f"; where an item has none, from answers that all of at least {max(project.k, 2)} "
            "annotators gave alike (unreviewed)"
        )
    return text + "."


def _spec(
    project: AnnotationProject,
    question: Question,
    source: str,
    parts: tuple[str, ...],
    dtype: str,
    extract: str,
    path: tuple[str, ...],
    what: str,
) -> AnswerSignalSpec:
    kind = question.get_kind_display().lower()
    return AnswerSignalSpec(
        name=signal_name_for(project, _part(question.key), *parts),
        dtype=dtype,
        question_id=question.pk,
        extract=extract,
        path=path,
        description=f"Annotation project {project.name!r}, question {question.key!r} ({kind}): "
        f"{what}. {source}",
    )


def answer_signal_specs(
    *, project: AnnotationProject, include_agreed: bool = False
) -> list[AnswerSignalSpec]:
    """The signals the project's questions make, in question order; names are checked unique."""
    specs: list[AnswerSignalSpec] = []
    source = _source_text(project, include_agreed)
    for question in project.questions.order_by("order", "id"):
        spec = partial(_spec, project, question, source)
        config = question.config
        if question.kind == kinds.SINGLE_LABEL:
            specs.append(spec((), Signal.Dtype.TEXT, "text", ("label",), "the label"))
        elif question.kind == kinds.MULTI_LABEL:
            specs.append(
                spec((), Signal.Dtype.JSON, "json", ("labels",), "the labels, a JSON list")
            )
        elif question.kind == kinds.SPANS:
            specs.append(
                spec(
                    (),
                    Signal.Dtype.JSON,
                    "json",
                    ("spans",),
                    "the spans, a JSON list of {start, end, label} (character offsets)",
                )
            )
            specs.append(
                spec(("count",), Signal.Dtype.INT, "count", ("spans",), "the number of spans")
            )
        elif question.kind == kinds.RATING:
            low, high = config.get("scale", [0, 4])
            for n, attribute in enumerate(config.get("attributes", []), start=1):
                specs.append(
                    spec(
                        (_part(attribute) or f"attribute{n}",),
                        Signal.Dtype.FLOAT,
                        "number",
                        ("ratings", attribute),
                        f"the rating of {attribute!r} ({low} to {high})",
                    )
                )
        elif question.kind == kinds.PAIRWISE:
            where = (
                "on the item's first document (text A); where several pairs share that "
                "document, the answer decided last"
            )
            specs.append(
                spec(
                    (),
                    Signal.Dtype.TEXT,
                    "text",
                    ("choice",),
                    f"the preferred text, a (text A), b (text B) or tie, {where}",
                )
            )
            strengths = ", ".join(
                f"{n} {s}" for n, s in enumerate(config.get("strengths", []), start=1)
            )
            specs.append(
                spec(
                    ("strength",),
                    Signal.Dtype.INT,
                    "number",
                    ("strength",),
                    f"the strength of the preference (0 tie, {strengths}), {where}",
                )
            )
        elif question.kind == kinds.REWRITE:
            specs.append(spec((), Signal.Dtype.TEXT, "text", ("text",), "the rewritten text"))
    seen: dict[str, int] = {}
    for s in specs:
        if s.name in seen and seen[s.name] != s.question_id:
            raise ProjectError(
                f"two questions of {project.slug} would both write the signal {s.name}: "
                "their keys (or rating attributes) clash once '-' becomes '_'"
            )
        if s.name in seen:
            raise ProjectError(f"signal {s.name}: two rating attributes give the same name")
        seen[s.name] = s.question_id
    return specs


def answer_signals_check(
    *, project: AnnotationProject, include_agreed: bool = False
) -> list[AnswerSignalSpec]:
    """The project's signal specs, refused if a signal of one of those names (made by
    something else) already holds another type of value."""
    specs = answer_signal_specs(project=project, include_agreed=include_agreed)
    taken = dict(
        Signal.objects.filter(name__in=[s.name for s in specs]).values_list("name", "dtype")
    )
    for spec in specs:
        if taken.get(spec.name, spec.dtype) != spec.dtype:
            raise ProjectError(
                f"the signal {spec.name} already exists with {taken[spec.name]} values, but the "
                f"answers need {spec.dtype}: it was made by something else; remove it, or "
                "make a project with another name for these questions"
            )
    return specs


def _extract(spec: AnswerSignalSpec, answer: sql.Composable) -> sql.Composable:
    """SQL reading the spec's value out of an answer; NULL where it has another JSON type."""
    path = sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(map(sql.Literal, spec.path)))
    node = sql.SQL("({} #> {})").format(answer, path)
    kind = sql.SQL("jsonb_typeof{}").format(node)
    if spec.extract == "text":
        return sql.SQL("CASE WHEN {} = 'string' THEN {} #>> {} END").format(kind, answer, path)
    if spec.extract == "json":
        return sql.SQL("CASE WHEN {} = 'array' THEN {} END").format(kind, node)
    if spec.extract == "count":
        return sql.SQL("CASE WHEN {} = 'array' THEN jsonb_array_length{} END").format(kind, node)
    return sql.SQL("CASE WHEN {} = 'number' THEN ({} #>> {})::numeric::{} END").format(
        kind, answer, path, sql.SQL(SQL_TYPES[Signal.Dtype(spec.dtype)])
    )


_STAGE_FINAL = """
SELECT f.question_id, i.document_id, f."values", 0, f.decided_at, f.item_id
FROM annotate_finalanswer f JOIN annotate_item i ON i.id = f.item_id
WHERE f.project_id = %(project)s
"""
# Items without a final answer whose submitted answers are all alike (at least `needed`).
_STAGE_AGREED = """
SELECT a.question_id, i.document_id, (array_agg(a."values"))[1], 1, max(a.updated_at), a.item_id
FROM annotate_annotation a JOIN annotate_item i ON i.id = a.item_id
WHERE i.project_id = %(project)s AND NOT a.draft
  AND NOT EXISTS (SELECT 1 FROM annotate_finalanswer f
                  WHERE f.item_id = a.item_id AND f.question_id = a.question_id)
GROUP BY a.item_id, a.question_id, i.document_id
HAVING count(*) >= %(needed)s AND count(DISTINCT a."values") = 1
"""


def _stage(project: AnnotationProject, include_agreed: bool) -> None:
    """Fill the stage with one answer per (question, document) of the project's dataset."""
    parts = [_STAGE_FINAL] + ([_STAGE_AGREED] if include_agreed else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (question_id bigint, document_id bigint, "
            "answer jsonb, agreed boolean, PRIMARY KEY (question_id, document_id)) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {STAGE}")
        cursor.execute(
            f"INSERT INTO {STAGE} (question_id, document_id, answer, agreed) "
            "SELECT DISTINCT ON (x.question_id, x.document_id) "
            "x.question_id, x.document_id, x.answer, x.rank = 1 "
            f"FROM ({' UNION ALL '.join(parts)}) AS x(question_id, document_id, answer, rank, "
            "at, item_id) "
            "JOIN curation_document d ON d.id = x.document_id AND d.dataset_id = %(dataset)s "
            "ORDER BY x.question_id, x.document_id, x.rank, x.at DESC, x.item_id DESC",
            {"project": project.pk, "dataset": project.dataset_id, "needed": max(project.k, 2)},
        )
        cursor.execute(f"ANALYZE {STAGE}")


def _write(specs: list[AnswerSignalSpec], signals: dict[str, Signal], dataset_id: int) -> int:
    """Upsert every signal column from the stage, pivoted to one row per document."""
    questions = list(dict.fromkeys(s.question_id for s in specs))
    answer = {q: sql.Identifier(f"q{n}") for n, q in enumerate(questions)}
    columns = [sql.Identifier(signals[s.name].column_name) for s in specs]
    query = sql.SQL(
        "INSERT INTO {table} AS r (dataset_id, document_id, {columns}) "
        "SELECT {dataset}, p.document_id, {values} FROM ("
        "  SELECT document_id, {pivot} FROM {stage} GROUP BY document_id"
        ") p "
        "ON CONFLICT (dataset_id, document_id) DO UPDATE SET {updates} "
        "WHERE ({current}) IS DISTINCT FROM ({excluded})"
    ).format(
        table=sql.Identifier(TABLE),
        columns=sql.SQL(", ").join(columns),
        dataset=sql.Literal(dataset_id),
        values=sql.SQL(", ").join(
            _extract(s, sql.SQL("p.{}").format(answer[s.question_id])) for s in specs
        ),
        pivot=sql.SQL(", ").join(
            sql.SQL("(array_agg(answer) FILTER (WHERE question_id = {}))[1] AS {}").format(
                sql.Literal(q), answer[q]
            )
            for q in questions
        ),
        stage=sql.Identifier(STAGE),
        updates=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in columns),
        current=sql.SQL(", ").join(sql.SQL("r.{}").format(c) for c in columns),
        excluded=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(c) for c in columns),
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection))
        return cursor.rowcount


def _clear(signals: list[Signal], dataset_id: int) -> int:
    """Null the signals on documents that have no answer any more (one scan of the partition)."""
    columns = [sql.Identifier(s.column_name) for s in signals]
    query = sql.SQL(
        "UPDATE {table} r SET {nulls} WHERE r.dataset_id = {dataset} AND ({any}) "
        "AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.document_id = r.document_id)"
    ).format(
        table=sql.Identifier(TABLE),
        nulls=sql.SQL(", ").join(sql.SQL("{} = NULL").format(c) for c in columns),
        dataset=sql.Literal(dataset_id),
        any=sql.SQL(" OR ").join(sql.SQL("r.{} IS NOT NULL").format(c) for c in columns),
        stage=sql.Identifier(STAGE),
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection))
        return cursor.rowcount


@transaction.atomic
def answer_signals_write(
    *, project: AnnotationProject, include_agreed: bool = False
) -> AnswerSignalsReport:
    """Write the project's final answers as signals on its dataset's documents.

    1. Take the project's advisory lock: one write per project at a time.
    2. Define the signals (a dtype clash with an older signal of that name is refused).
    3. Stage one answer per (question, document) in SQL: the final answer, else (with
       ``include_agreed``) the answer all of at least max(k, 2) annotators gave alike;
       where items share a document (pairs), the final answer decided last.
    4. Upsert the values, changing only rows that differ; clear the signals on documents
       of the dataset that no longer have any answer of the project.
    """
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, project.pk])
    specs = answer_signals_check(project=project, include_agreed=include_agreed)
    report = AnswerSignalsReport(signals=[s.name for s in specs])
    if not specs:
        return report
    signals = {
        s.name: signal_define(
            name=s.name,
            step=STEP_NAME,
            step_version=STEP_VERSION,
            dtype=s.dtype,
            description=s.description,
        )
        for s in specs
    }
    signal_partition_ensure(dataset_id=project.dataset_id)
    _stage(project, include_agreed)
    report.rows_changed = _write(specs, signals, project.dataset_id)
    report.rows_cleared = _clear(list(signals.values()), project.dataset_id)
    keys = dict(Question.objects.filter(project=project).values_list("pk", "key"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT question_id, count(*) FILTER (WHERE NOT agreed), count(*) FILTER "
            f"(WHERE agreed) FROM {STAGE} GROUP BY question_id"
        )
        counts = {q: (final, agreed) for q, final, agreed in cursor.fetchall()}
    for question_id, key in keys.items():
        final, agreed = counts.get(question_id, (0, 0))
        report.final_answers[key] = final
        if include_agreed:
            report.agreed_answers[key] = agreed
    # updated_at is when the signal's values were last written from the answers.
    Signal.objects.filter(pk__in=[s.pk for s in signals.values()]).update(updated_at=timezone.now())
    report.seconds = time.perf_counter() - started
    logger.info(
        "project %s: answers of %d questions as %d signals, %d rows changed, %d cleared, %.2fs",
        project.slug,
        len(keys),
        len(specs),
        report.rows_changed,
        report.rows_cleared,
        report.seconds,
    )
    return report


def answer_signals_queue(*, project: AnnotationProject, include_agreed: bool = False) -> None:
    """Check the signals can be written, then queue the write on a worker once the current
    transaction commits; raises ProjectError saying why not."""
    from annotate.tasks import answer_signals_write as task

    answer_signals_check(project=project, include_agreed=include_agreed)
    transaction.on_commit(lambda: task.delay(project.pk, include_agreed))
