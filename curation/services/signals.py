"""Signal definitions and values.

Values are stored in ``curation_signal_row``: one row per document, one typed
column per signal, LIST-partitioned by dataset. A filter over a few signal
ranges is then one (parallel) scan of one partition, whatever the selectivity,
and writing a whole signal is one COPY plus one set-based upsert.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson
from django.db import connection, transaction
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Dataset, Signal

logger = logging.getLogger(__name__)

SQL_TYPES = {
    Signal.Dtype.FLOAT: "double precision",
    Signal.Dtype.INT: "bigint",
    Signal.Dtype.BOOL: "boolean",
    Signal.Dtype.TEXT: "text",
    Signal.Dtype.JSON: "jsonb",
}
TABLE = "curation_signal_row"
# Signals named ann_* hold the final answers of annotation projects (the annotate app writes
# them); exports offer them together as "annotation columns".
ANNOTATION_SIGNAL_PREFIX = "ann_"


def partition_name(dataset_id: int) -> str:
    return f"{TABLE}_d{int(dataset_id)}"


def partition_row_estimate(dataset_id: int) -> float:
    """The planner's row count of the dataset's signal partition (free to read).

    -1 when the partition was never analyzed, 0 when there is none.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [partition_name(dataset_id)],
        )
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0


def signals_changed(cursor: Any, dataset_id: int) -> None:
    """Note a write of the dataset's signal values, in the writer's transaction.

    Every statement that writes ``curation_signal_row`` calls this on the same cursor
    (``SignalWrite``): the explorer's in-memory columns (``explorer/columns.py``) are
    used only while the dataset's write count (``signal_writes_seen``) is the one they
    were read at.
    """
    cursor.execute(
        "INSERT INTO curation_signalwrite (dataset_id, writes, created_at) VALUES (%s, 1, now())",
        [int(dataset_id)],
    )


def signal_writes_seen(dataset_id: int) -> tuple[int, bool]:
    """How many writes of the dataset's signal values this snapshot sees (``SignalWrite``),
    and whether this transaction has written nothing (so none of them may roll back)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(writes), 0), pg_current_xact_id_if_assigned() IS NULL "
            "FROM curation_signalwrite WHERE dataset_id = %s",
            [int(dataset_id)],
        )
        count, clean = cursor.fetchone()
    return int(count), bool(clean)


@transaction.atomic
def signal_writes_compact(*, dataset_id: int) -> None:
    """Replace the dataset's ``SignalWrite`` rows by one of the same sum (a run writes one a
    batch; the sum is read on every explorer count). A write that commits meanwhile keeps
    its own row, and a concurrent compaction finds nothing left to replace."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH gone AS (DELETE FROM curation_signalwrite WHERE dataset_id = %s "
            "RETURNING writes) "
            "INSERT INTO curation_signalwrite (dataset_id, writes, created_at) "
            "SELECT %s, sum(writes), now() FROM gone HAVING count(*) > 0",
            [int(dataset_id), int(dataset_id)],
        )


def signal_partition_ensure(*, dataset_id: int) -> None:
    """Create the dataset's partition of the signal table if it is missing (idempotent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES IN ({})")
            .format(
                sql.Identifier(partition_name(dataset_id)),
                sql.Identifier(TABLE),
                sql.Literal(int(dataset_id)),
            )
            .as_string(cursor.connection)
        )


def signal_partition_drop(*, dataset_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP TABLE IF EXISTS {}")
            .format(sql.Identifier(partition_name(dataset_id)))
            .as_string(cursor.connection)
        )


@transaction.atomic
def signal_define(
    *, name: str, step: str, step_version: str, dtype: str, description: str = ""
) -> Signal:
    """Get or create the signal ``name`` and its column; record the step version that writes it.

    A signal keeps its dtype for life: redefining it with another dtype is refused
    (pick a new name), because recipes and exports already read the column.
    """
    if dtype not in SQL_TYPES:
        raise PermanentError(f"signal {name!r}: dtype {dtype!r} is not one of {sorted(SQL_TYPES)}")
    signal = Signal.objects.select_for_update().filter(name=name).first()
    if signal is None:
        signal = Signal.objects.create(
            name=name, step=step, step_version=step_version, dtype=dtype, description=description
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}")
                .format(
                    sql.Identifier(TABLE),
                    sql.Identifier(signal.column_name),
                    sql.SQL(SQL_TYPES[Signal.Dtype(dtype)]),
                )
                .as_string(cursor.connection)
            )
        return signal
    if signal.dtype != dtype:
        raise PermanentError(
            f"signal {name!r} already stores {signal.dtype} values; it cannot become {dtype}. "
            "Give the new signal another name."
        )
    if (signal.step, signal.step_version, signal.description) != (step, step_version, description):
        signal.step, signal.step_version = step, step_version
        signal.description = description or signal.description
        signal.save(update_fields=["step", "step_version", "description", "updated_at"])
    return signal


def _copy_value(signal: Signal, value: Any) -> Any:
    if value is None:
        return None
    if signal.dtype == Signal.Dtype.JSON:
        return orjson.dumps(value).decode()
    return value


@transaction.atomic
def signal_values_write(
    *, signal: Signal, dataset_id: int, values: Iterable[tuple[int, Any]]
) -> int:
    """Write ``(document_id, value)`` pairs of one signal for one dataset; returns rows written.

    Upserts keyed by (dataset, document): writing the same values twice leaves one
    value per document. The pairs stream through COPY, so a whole dataset at once
    keeps memory flat.
    """
    return signal_rows_write(
        signals=[signal], dataset_id=dataset_id, rows=((d, v) for d, v in values)
    )


@transaction.atomic
def signal_rows_write(
    *, signals: list[Signal], dataset_id: int, rows: Iterable[tuple[Any, ...]]
) -> int:
    """Write several signals at once: rows are ``(document_id, value_1, ..., value_n)``.

    One upsert for all the columns, so each document gets one new row version per
    call rather than one per signal (a step writes all its signals per batch).
    """
    if not signals:
        return 0
    started = time.perf_counter()
    signal_partition_ensure(dataset_id=dataset_id)
    stage = f"winnow_signal_stage_{len(signals)}"
    values = [sql.Identifier(f"v{i}") for i in range(len(signals))]
    columns = [sql.Identifier(s.column_name) for s in signals]
    with connection.cursor() as cursor:
        pg = cursor.connection
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (document_id bigint, {}) ON COMMIT DELETE ROWS"
            )
            .format(
                sql.Identifier(stage),
                sql.SQL(", ").join(sql.SQL("{} text").format(v) for v in values),
            )
            .as_string(pg)
        )
        cursor.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)).as_string(pg))
        count = 0
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(stage)).as_string(pg)
        ) as copy:
            for row in rows:
                copy.write_row(
                    (row[0], *(_copy_value(s, v) for s, v in zip(signals, row[1:], strict=True)))
                )
                count += 1
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} (dataset_id, document_id, {columns}) "
                "SELECT {dataset}, document_id, {casts} FROM {stage} "
                "ON CONFLICT (dataset_id, document_id) DO UPDATE SET {updates}"
            )
            .format(
                table=sql.Identifier(TABLE),
                columns=sql.SQL(", ").join(columns),
                dataset=sql.Literal(int(dataset_id)),
                casts=sql.SQL(", ").join(
                    sql.SQL("{}::{}").format(v, sql.SQL(SQL_TYPES[Signal.Dtype(s.dtype)]))
                    for v, s in zip(values, signals, strict=True)
                ),
                stage=sql.Identifier(stage),
                updates=sql.SQL(", ").join(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in columns
                ),
            )
            .as_string(pg)
        )
        signals_changed(cursor, dataset_id)
    logger.info(
        "wrote %d rows of %d signals (%s) for dataset %s in %.2fs",
        count,
        len(signals),
        ", ".join(s.name for s in signals[:3]) + ("…" if len(signals) > 3 else ""),
        dataset_id,
        time.perf_counter() - started,
    )
    return count


@transaction.atomic
def signal_defaults_write(*, signals: list[Signal], dataset_id: int, values: list[Any]) -> None:
    """Set ``signals`` to ``values`` (literals, one per signal) on every document of the dataset.

    A corpus phase writes its defaults this way in one statement, then the documents
    that differ with ``signal_rows_write``.
    """
    signal_partition_ensure(dataset_id=dataset_id)
    columns = [sql.Identifier(s.column_name) for s in signals]
    literals = [sql.Literal(v) for v in values]
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} (dataset_id, document_id, {columns}) "
                "SELECT dataset_id, id, {values} FROM curation_document WHERE dataset_id = %s "
                "ON CONFLICT (dataset_id, document_id) DO UPDATE SET {updates}"
            )
            .format(
                table=sql.Identifier(TABLE),
                columns=sql.SQL(", ").join(columns),
                values=sql.SQL(", ").join(literals),
                updates=sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(c, v) for c, v in zip(columns, literals, strict=True)
                ),
            )
            .as_string(cursor.connection),
            [dataset_id],
        )
        signals_changed(cursor, dataset_id)


@transaction.atomic
def signal_values_clear(*, signal: Signal, dataset: Dataset) -> None:
    """Forget every value of ``signal`` in ``dataset`` (before a full recompute)."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("UPDATE {} SET {} = NULL WHERE dataset_id = %s AND {} IS NOT NULL")
            .format(
                sql.Identifier(TABLE),
                sql.Identifier(signal.column_name),
                sql.Identifier(signal.column_name),
            )
            .as_string(cursor.connection),
            [dataset.pk],
        )
        signals_changed(cursor, dataset.pk)


def signal_table_compact(*, dataset_id: int) -> None:
    """Rewrite the dataset's signal partition without the dead row versions (and compact
    its ``SignalWrite`` rows).

    Every signal write leaves the old version of each row behind; after a write
    for a whole dataset the partition is twice its size and filters scan twice the
    pages (bench/signal_storage_bench.py: p95 311 -> 436 ms at 1M rows). A pipeline
    run calls this once at its end. It takes an exclusive lock on the partition for
    the rewrite (about 2 s per million documents) and must run outside a
    transaction.
    """
    if connection.in_atomic_block:
        raise PermanentError("signal_table_compact cannot run inside a transaction")
    signal_writes_compact(dataset_id=dataset_id)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("VACUUM (FULL, ANALYZE) {}")
            .format(sql.Identifier(partition_name(dataset_id)))
            .as_string(cursor.connection)
        )
