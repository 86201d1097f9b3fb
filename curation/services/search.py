"""The per-dataset full-text search index (a partial expression GIN index on documents).

One index per dataset, ``curation_document_fts_d<id>``, over exactly the
expression the explorer matches (``explorer.search_predicate``) and only the
dataset's rows (``WHERE dataset_id = <id>``). The import never builds it: a
finished import queues ``search_index_build`` (a task, which then keeps the bits of
the dataset's common words: ``explorer/text_hits.py``), because a COPY into a
dataset with its index runs ~8x slower (bench/explorer_bench.py). A later small
import keeps the index and PostgreSQL updates it; a big one drops it first
(``search_index_before_import``) and its end rebuilds it. The catalog is the
index's state (``explorer.search_index_state``): no row to keep in sync.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction
from psycopg import sql

from curation.errors import PermanentError
from curation.explorer import (
    DOCUMENT_TABLE,
    SEARCH_CHARS,
    TS_CONFIG,
    search_index_name,
    search_index_state,
)
from curation.models import Dataset

logger = logging.getLogger(__name__)


def search_index_sql(*, dataset_id: int, concurrently: bool = True) -> sql.Composed:
    """The CREATE INDEX statement of the dataset's search index (IF NOT EXISTS)."""
    return sql.SQL(
        "CREATE INDEX {concurrently} IF NOT EXISTS {name} ON {table} "
        "USING gin (to_tsvector({cfg}, left(text, {chars}))) WHERE dataset_id = {dataset}"
    ).format(
        concurrently=sql.SQL("CONCURRENTLY" if concurrently else ""),
        name=sql.Identifier(search_index_name(dataset_id)),
        table=sql.Identifier(DOCUMENT_TABLE),
        cfg=sql.Literal(TS_CONFIG),
        chars=sql.Literal(SEARCH_CHARS),
        dataset=sql.Literal(int(dataset_id)),
    )


def search_index_build(*, dataset_id: int) -> bool:
    """Build the dataset's search index unless it is ready or being built; True if built now.

    1. A valid index: nothing to do (so the task can run twice).
    2. An invalid one that no session is building (a killed build): drop it.
    3. ``CREATE INDEX CONCURRENTLY``: imports and pages go on meanwhile.

    Must run outside a transaction (CONCURRENTLY cannot run in one).
    """
    if connection.in_atomic_block:
        raise PermanentError("search_index_build cannot run inside a transaction")
    if not Dataset.objects.filter(pk=dataset_id).exists():
        return False  # deleted since the build was queued
    state = search_index_state(dataset_id=dataset_id)
    if state.status in ("ready", "building"):
        return False
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if state.status == "failed":
            search_index_drop(dataset_id=dataset_id)
        # GIN builds much faster with room for its sorted entries.
        cursor.execute("SET maintenance_work_mem = '256MB'")
        try:
            cursor.execute(search_index_sql(dataset_id=dataset_id).as_string(cursor.connection))
        finally:
            cursor.execute("RESET maintenance_work_mem")
    logger.info(
        "search index of dataset %s built in %.1fs", dataset_id, time.perf_counter() - started
    )
    return True


def search_index_drop(*, dataset_id: int) -> None:
    """Drop the dataset's search index if there is one (with the dataset, or before a rebuild)."""
    concurrently = not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP INDEX {} IF EXISTS {}")
            .format(
                sql.SQL("CONCURRENTLY" if concurrently else ""),
                sql.Identifier(search_index_name(dataset_id)),
            )
            .as_string(cursor.connection)
        )


def search_index_dispatch(*, dataset_id: int) -> None:
    """Queue the build after the current transaction commits (the documents must be visible)."""
    from curation.tasks import search_index_build as task

    transaction.on_commit(lambda: task.delay(dataset_id))


# A COPY into a dataset with its search index runs ~7x slower (bench/explorer_bench.py):
# an import bigger than this drops the index and the finished import rebuilds it.
KEEP_INDEX_BELOW_BYTES = 16 * 1024 * 1024


def search_index_before_import(*, dataset_id: int, source_bytes: int) -> bool:
    """Drop the dataset's search index before a big import (see KEEP_INDEX_BELOW_BYTES).

    Returns True when it dropped one. ``import_job_run`` calls it; its ``_finish``
    queues the rebuild (``search_index_dispatch``), whatever the import's outcome.
    """
    if source_bytes < KEEP_INDEX_BELOW_BYTES:
        return False
    if search_index_state(dataset_id=dataset_id).status == "missing":
        return False
    search_index_drop(dataset_id=dataset_id)
    logger.info(
        "dataset %s: search index dropped for an import of %d bytes", dataset_id, source_bytes
    )
    return True
