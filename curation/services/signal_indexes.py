"""B-tree indexes on the signal columns a dataset is filtered by, built when first used.

A filter over signal ranges is a scan of the dataset's signal partition. That is
fast while matches are common (the first page fills after a few hundred rows),
but a selective filter (two ranges of 2 % each) scans the whole partition to fill
a page: ~100 ms at 1M documents against ~5 ms at 10k. An index on each filtered
column lets PostgreSQL combine bitmaps instead, so the work follows the number of
matches rather than the size of the dataset (bench/explorer_bench.py).

Each index is on ``(signal DESC NULLS LAST, document_id DESC)``: ranges use it as
any B-tree, and a page sorted by the signal can walk it in order and stop after a
page instead of sorting every match: forward for highest first, backward for lowest
first (the explorer reads the values, then the NULLs, so that both match the index:
``explorer/query.py``).

Indexes cost space (~30 MB per signal per million documents) and slow signal
writes a little, so they follow use: the explorer asks for the columns of each
query (``signal_indexes_request``) on datasets of ``INDEX_MIN_DOCUMENTS`` or more,
and a Celery task builds the missing ones with ``CREATE INDEX CONCURRENTLY``. The
catalog is the state (a valid index named ``signal_index_name``): nothing to keep
in sync, and a dropped dataset takes its partition's indexes with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from django.core.cache import cache
from django.db import connection
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Dataset, Signal
from curation.services.signals import partition_name

logger = logging.getLogger(__name__)

# Below this size a scan of the partition answers any filter in a few milliseconds.
INDEX_MIN_DOCUMENTS = 50_000
# Signals whose values can be range- or equality-filtered with a B-tree.
INDEXABLE = (Signal.Dtype.FLOAT, Signal.Dtype.INT, Signal.Dtype.BOOL, Signal.Dtype.TEXT)
# A request is queued at most once per (dataset, signal) in this many seconds.
REQUEST_DEBOUNCE_SECONDS = 600


def signal_index_name(*, dataset_id: int, signal_id: int) -> str:
    return f"{partition_name(dataset_id)}_s{int(signal_id)}_idx"


def signal_indexes_state(*, dataset_id: int) -> dict[int, bool]:
    """{signal id: valid} for the indexes that exist on the dataset's partition."""
    prefix = f"{partition_name(dataset_id)}_s"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_class c "
            "JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relkind = 'i' AND c.relname LIKE %s",
            [prefix.replace("_", r"\_") + "%\\_idx"],
        )
        rows = cursor.fetchall()
    state: dict[int, bool] = {}
    for name, valid in rows:
        digits = name[len(prefix) : -len("_idx")]
        if digits.isdigit():
            state[int(digits)] = bool(valid)
    return state


def signal_index_build(*, dataset_id: int, signal_id: int) -> bool:
    """Build the index on one signal column of the dataset's partition; True if built now.

    1. A valid index: nothing to do (the task may run twice).
    2. An invalid one (a killed ``CONCURRENTLY`` build): dropped, then rebuilt.
    3. ``CREATE INDEX CONCURRENTLY``: pages and pipeline writes go on meanwhile.

    Must run outside a transaction (CONCURRENTLY cannot run in one).
    """
    if connection.in_atomic_block:
        raise PermanentError("signal_index_build cannot run inside a transaction")
    signal = Signal.objects.filter(pk=signal_id).first()
    if signal is None or not Dataset.objects.filter(pk=dataset_id).exists():
        return False  # deleted since the build was queued
    if signal.dtype not in INDEXABLE:
        raise PermanentError(f"signal {signal.name!r} ({signal.dtype}) cannot have a B-tree index")
    valid = signal_indexes_state(dataset_id=dataset_id).get(signal_id)
    if valid:
        return False
    name = sql.Identifier(signal_index_name(dataset_id=dataset_id, signal_id=signal_id))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if valid is False:
            cursor.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}")
                .format(name)
                .as_string(cursor.connection)
            )
        cursor.execute(
            sql.SQL(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} "
                "({} DESC NULLS LAST, document_id DESC)"
            )
            .format(
                name,
                sql.Identifier(partition_name(dataset_id)),
                sql.Identifier(signal.column_name),
            )
            .as_string(cursor.connection)
        )
    logger.info(
        "index on %s of dataset %s built in %.1fs",
        signal.name,
        dataset_id,
        time.perf_counter() - started,
    )
    return True


def signal_indexes_request(*, dataset: Dataset, signals: Iterable[Signal]) -> list[int]:
    """Queue builds of the indexes the dataset lacks for ``signals``; returns their ids.

    Small datasets (below ``INDEX_MIN_DOCUMENTS``) and JSON signals get none. Each
    (dataset, signal) is queued at most once per ``REQUEST_DEBOUNCE_SECONDS``.
    """
    if dataset.document_count < INDEX_MIN_DOCUMENTS:
        return []
    wanted = {s.pk for s in signals if s.dtype in INDEXABLE}
    if not wanted:
        return []
    state = signal_indexes_state(dataset_id=dataset.pk)
    queued: list[int] = []
    from curation.tasks import signal_index_build as task

    for signal_id in sorted(wanted):
        if state.get(signal_id):
            continue
        key = f"winnow:signal-index:{dataset.pk}:{signal_id}"
        if cache.add(key, 1, timeout=REQUEST_DEBOUNCE_SECONDS):
            task.delay(dataset.pk, signal_id)
            queued.append(signal_id)
    return queued
