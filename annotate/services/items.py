"""Items of a project: added set-based from a dataset, their status recomputed from facts."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from psycopg import sql

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Item
from curation.models import Signal
from curation.services.signals import TABLE as SIGNAL_TABLE

logger = logging.getLogger(__name__)

# Past this many new rows the planner's statistics are refreshed at once: the queue
# query must not be planned against an "empty" table.
ANALYZE_AFTER_ROWS = 10_000


class Sample(models.TextChoices):
    """How ``items_add_from_dataset`` picks documents."""

    ALL = "all", "Every document"
    RANDOM = "random", "A random sample of n"
    STRATIFIED = "stratified", "n stratified over equal-width bins of a signal"
    BAND = "band", "lo <= signal <= hi (n of them at random, if n is set)"


@dataclass(frozen=True)
class ItemsAdded:
    added: int
    seconds: float


def item_insert_sql(*, project: AnnotationProject, picked: sql.Composable) -> sql.Composable:
    """``INSERT INTO annotate_item ... SELECT`` of the rows of ``picked`` (columns a, b).

    ``a`` is the document (text A), ``b`` the second document or NULL; every other
    column gets its model default, read from ``Item``, so a field added to the model
    with a default needs no change here. Rows already in the project are skipped.
    """
    columns: list[sql.Composable] = []
    values: list[sql.Composable] = []
    for item_field in Item._meta.concrete_fields:
        if item_field.column in ("id", "project_id", "document_id", "second_document_id"):
            continue
        if item_field.has_default() and not callable(item_field.default):
            columns.append(sql.Identifier(str(item_field.column)))
            values.append(sql.Literal(item_field.get_default()))
    return sql.SQL(
        "INSERT INTO annotate_item (project_id, document_id, second_document_id, {columns}) "
        "SELECT {project}, a, b, {values} FROM ({picked}) p ON CONFLICT DO NOTHING"
    ).format(
        columns=sql.SQL(", ").join(columns),
        project=sql.Literal(int(project.pk)),
        values=sql.SQL(", ").join(values),
        picked=picked,
    )


def _after_add(project: AnnotationProject, rows: int) -> None:
    """Recount the project's items; refresh the planner's statistics after a large add."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotate_annotationproject SET item_count = "
            "(SELECT count(*) FROM annotate_item WHERE project_id = %s) WHERE id = %s "
            "RETURNING item_count",
            [project.pk, project.pk],
        )
        (project.item_count,) = cursor.fetchone()
        if rows >= ANALYZE_AFTER_ROWS:
            cursor.execute("ANALYZE annotate_item")


@transaction.atomic
def items_add_from_dataset(
    *,
    project: AnnotationProject,
    sample: str = Sample.ALL,
    n: int | None = None,
    seed: int = 0,
    signal: Signal | None = None,
    bins: int = 10,
    lo: float | None = None,
    hi: float | None = None,
) -> ItemsAdded:
    """Add documents of the project's dataset as items, in one INSERT ... SELECT.

    1. The pool is the dataset's documents; with ``signal``, only those with a value,
       and with ``lo``/``hi`` only those inside the band (bounds included).
    2. ``random`` takes ``n`` of the pool in an order fixed by ``seed`` (a hash of the
       document id), so the same seed gives the same sample; ``band`` does the same
       when ``n`` is set, else takes the whole band.
    3. ``stratified`` splits the signal's range in the pool into ``bins`` equal-width
       bins and takes documents round-robin over the bins (first of each bin, second of
       each bin, ...), so sparse bins are fully represented and the rest of ``n`` comes
       from the fuller ones.
    4. Documents already in the project are left alone; returns how many were added.
    """
    started = time.perf_counter()
    if sample not in Sample.values:
        raise ProjectError(f"sample {sample!r} is not one of all, random, stratified, band")
    if sample in (Sample.RANDOM, Sample.STRATIFIED) and (n is None or n < 1):
        raise ProjectError(f"a {sample} sample needs n >= 1 documents")
    if n is not None and n < 1:
        raise ProjectError("n must be at least 1 (or left out)")
    if sample in (Sample.STRATIFIED, Sample.BAND) and signal is None:
        raise ProjectError(f"a {sample} sample needs a numeric signal")
    if sample == Sample.STRATIFIED and not 1 <= bins <= 1000:
        raise ProjectError("bins must be from 1 to 1000")
    if sample == Sample.BAND and lo is None and hi is None:
        raise ProjectError("a band needs lo, hi or both")
    if lo is not None and hi is not None and lo > hi:
        raise ProjectError(f"the band is empty: lo {lo} > hi {hi}")
    if signal is not None and signal.dtype not in (Signal.Dtype.FLOAT, Signal.Dtype.INT):
        raise ProjectError(f"signal {signal.name!r} holds {signal.dtype} values, not numbers")

    params: dict[str, Any] = {
        "project": project.pk,
        "dataset": project.dataset_id,
        "seed": seed,
        "n": n,
        "bins": bins,
        "lo": lo,
        "hi": hi,
    }
    pool: sql.Composable
    picked: sql.Composable
    if signal is None:
        pool = sql.SQL(
            "SELECT d.id AS document_id FROM curation_document d WHERE d.dataset_id = %(dataset)s"
        )
    else:
        value = sql.SQL("v.{}::float8").format(sql.Identifier(signal.column_name))
        band: sql.Composable = sql.SQL("")
        if lo is not None:
            band += sql.SQL(" AND {} >= %(lo)s").format(value)
        if hi is not None:
            band += sql.SQL(" AND {} <= %(hi)s").format(value)
        pool = sql.SQL(
            "SELECT v.document_id, {value} AS value FROM {table} v "
            "JOIN curation_document d ON d.id = v.document_id AND d.dataset_id = %(dataset)s "
            "WHERE v.dataset_id = %(dataset)s AND {value} IS NOT NULL{band}"
        ).format(value=value, table=sql.Identifier(SIGNAL_TABLE), band=band)

    shuffled = sql.SQL("hashint8extended(document_id, %(seed)s)")
    if sample == Sample.ALL or (sample == Sample.BAND and n is None):
        picked = sql.SQL("SELECT document_id FROM pool ORDER BY document_id")
    elif sample in (Sample.RANDOM, Sample.BAND):
        picked = sql.SQL("SELECT document_id FROM pool ORDER BY {} LIMIT %(n)s").format(shuffled)
    else:
        picked = sql.SQL(
            "SELECT document_id FROM ("
            " SELECT document_id, {shuffled} AS h, row_number() OVER ("
            "  PARTITION BY least(width_bucket(value, r.lo, r.hi, %(bins)s), %(bins)s)"
            "  ORDER BY {shuffled}) AS rank"
            " FROM pool, (SELECT min(value) AS lo,"
            "  CASE WHEN max(value) > min(value) THEN max(value) ELSE min(value) + 1 END AS hi"
            "  FROM pool) r"
            ") ranked ORDER BY rank, h LIMIT %(n)s"
        ).format(shuffled=shuffled)
    statement = sql.SQL("WITH pool AS MATERIALIZED ({pool}) {insert}").format(
        pool=pool,
        insert=item_insert_sql(
            project=project,
            picked=sql.SQL("SELECT document_id AS a, NULL::bigint AS b FROM ({}) q").format(picked),
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection), params)
        added = cursor.rowcount
    _after_add(project, added)
    seconds = time.perf_counter() - started
    logger.info("project %s: added %d items (%s) in %.2fs", project.pk, added, sample, seconds)
    return ItemsAdded(added=added, seconds=seconds)


@transaction.atomic
def items_add_pairs(*, project: AnnotationProject, pairs: Sequence[tuple[int, int]]) -> ItemsAdded:
    """Add pairwise items (text A, text B) from document ids of the project's dataset.

    Pairs whose documents are not both in the dataset are refused, naming the first.
    """
    started = time.perf_counter()
    firsts = [int(a) for a, _ in pairs]
    seconds_ = [int(b) for _, b in pairs]
    if any(a == b for a, b in zip(firsts, seconds_, strict=True)):
        raise ProjectError("a pair needs two different documents")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.a, p.b FROM unnest(%s::bigint[], %s::bigint[]) AS p(a, b) "
            "WHERE NOT EXISTS (SELECT 1 FROM curation_document d "
            "  WHERE d.id = p.a AND d.dataset_id = %s) "
            "OR NOT EXISTS (SELECT 1 FROM curation_document d "
            "  WHERE d.id = p.b AND d.dataset_id = %s) LIMIT 1",
            [firsts, seconds_, project.dataset_id, project.dataset_id],
        )
        bad = cursor.fetchone()
        if bad is not None:
            raise ProjectError(
                f"pair ({bad[0]}, {bad[1]}): both documents must be in dataset {project.dataset_id}"
            )
        statement = item_insert_sql(
            project=project,
            picked=sql.SQL("SELECT a, b FROM unnest(%s::bigint[], %s::bigint[]) AS u(a, b)"),
        )
        cursor.execute(statement.as_string(cursor.connection), [firsts, seconds_])
        added = cursor.rowcount
    _after_add(project, added)
    return ItemsAdded(added=added, seconds=time.perf_counter() - started)


def item_lock(*, item_id: int) -> None:
    """Lock the item row: every change to an item's assignments happens under this lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM annotate_item WHERE id = %s FOR UPDATE", [item_id])


_RECOMPUTE = """
UPDATE annotate_item i SET submitted_count = c.n, status = c.status, disagreement = c.disagree,
       reviewed = i.reviewed AND NOT c.changed
FROM (
    SELECT x.id, x.n, x.disagree, x.changed,
           CASE WHEN x.n >= x.k THEN 'complete' WHEN x.n > 0 THEN 'partial' ELSE 'pending' END
           AS status
    FROM (
        SELECT i2.id, p.k,
               (SELECT count(DISTINCT a.user_id) FROM annotate_annotation a
                WHERE a.item_id = i2.id AND NOT a.draft) AS n,
               -- Answers are normalized when validated, so equal answers are equal JSON.
               EXISTS (SELECT 1 FROM annotate_annotation a
                       WHERE a.item_id = i2.id AND NOT a.draft
                       GROUP BY a.question_id HAVING count(DISTINCT a."values") > 1) AS disagree,
               -- An answer submitted after the last review decision: review it again.
               EXISTS (SELECT 1 FROM annotate_annotation a
                       WHERE a.item_id = i2.id AND NOT a.draft
                         AND a.updated_at > (SELECT max(f.decided_at) FROM annotate_finalanswer f
                                             WHERE f.item_id = i2.id)) AS changed
        FROM annotate_item i2 JOIN annotate_annotationproject p ON p.id = i2.project_id
        WHERE {where}
    ) x
) c
WHERE i.id = c.id
  AND ((i.submitted_count, i.status, i.disagreement) IS DISTINCT FROM (c.n, c.status, c.disagree)
       OR (i.reviewed AND c.changed))
"""


def item_status_recompute(*, item_id: int) -> None:
    """Set the item's submitted count, status and disagreement flag from its submitted
    annotations (the flag: some question has two different submitted answers), and send
    a reviewed item back to the review queue when an answer changed after its review
    (its final answers stay until a reviewer decides again)."""
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTE.format(where="i2.id = %s"), [item_id])


@transaction.atomic
def items_status_recompute(*, project: AnnotationProject) -> int:
    """Recompute every item of the project (after k changed, or a repair); returns rows fixed."""
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTE.format(where="i2.project_id = %s"), [project.pk])
        return cursor.rowcount
