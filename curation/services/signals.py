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


def partition_name(dataset_id: int) -> str:
    return f"{TABLE}_d{int(dataset_id)}"


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
    value per document. Steps call this once per batch; a whole dataset at once is
    fine too (the pairs stream through COPY, memory stays flat).
    """
    started = time.perf_counter()
    signal_partition_ensure(dataset_id=dataset_id)
    column = sql.Identifier(signal.column_name)
    with connection.cursor() as cursor:
        pg = cursor.connection
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS winnow_signal_stage "
                "(document_id bigint, value_text text) ON COMMIT DELETE ROWS"
            ).as_string(pg)
        )
        cursor.execute("TRUNCATE winnow_signal_stage")
        count = 0
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY winnow_signal_stage (document_id, value_text) FROM STDIN"
        ) as copy:
            for document_id, value in values:
                copy.write_row((document_id, _copy_value(signal, value)))
                count += 1
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} (dataset_id, document_id, {column}) "
                "SELECT {dataset}, document_id, value_text::{type} FROM winnow_signal_stage "
                "ON CONFLICT (dataset_id, document_id) DO UPDATE SET {column} = EXCLUDED.{column}"
            )
            .format(
                table=sql.Identifier(TABLE),
                column=column,
                dataset=sql.Literal(int(dataset_id)),
                type=sql.SQL(SQL_TYPES[Signal.Dtype(signal.dtype)]),
            )
            .as_string(pg)
        )
    logger.info(
        "wrote %d values of %s for dataset %s in %.2fs",
        count,
        signal.name,
        dataset_id,
        time.perf_counter() - started,
    )
    return count


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


def signal_table_compact(*, dataset_id: int) -> None:
    """Rewrite the dataset's signal partition without the dead row versions.

    Every signal write leaves the old version of each row behind; after a write
    for a whole dataset the partition is twice its size and filters scan twice the
    pages (bench/signal_storage_bench.py: p95 311 -> 436 ms at 1M rows). A pipeline
    run calls this once at its end. It takes an exclusive lock on the partition for
    the rewrite (about 2 s per million documents) and must run outside a
    transaction.
    """
    if connection.in_atomic_block:
        raise PermanentError("signal_table_compact cannot run inside a transaction")
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("VACUUM (FULL, ANALYZE) {}")
            .format(sql.Identifier(partition_name(dataset_id)))
            .as_string(cursor.connection)
        )
