"""A big dataset's signal values as columns in memory, so an exact count costs milliseconds.

The exact count of signal predicates over a big dataset scans its signal partition:
at 1M documents 195 MB for 20 signals, 50-300 ms on 2 cores, ~100x the rows it reads
at 10k (``bench/explorer_bench.py``). A curator moves one slider at a time over the
same few signals, so the explorer keeps those signals' values, once read, as numpy
columns in the web process: one value and one "has a value" flag per document id of
the dataset's range (9 bytes a document: 9 MB a signal at 1M). The documents a query
matches are then a few vectorised comparisons and ANDs (a cached text query's bits,
``text_hits.py``, are one more), ~5 ms at 1M: its count is a popcount, and its page
the first ids of the mask in the query's order (``column_pages.py``).

Always exact, or not used. A column is read at the dataset's count of signal writes
(``SignalWrite``: every writer of the signal table adds one in its transaction), and
is read again from PostgreSQL as soon as that count moves. It is kept only when the
count was the same before and after the read (no write committed in between, so the
read saw exactly the writes counted), and never by a transaction that has written
anything (it may still roll back). The comparisons are PostgreSQL's: NULL matches
nothing, NaN is above every number, an integer signal's bounds are rounded inwards as
``sources._range_sql`` does, a text signal compares its exact bytes.

What it serves: queries whose predicates are all on signals (ranges, values,
duplicate status), with or without a text query's cached bits. Meta predicates, text
without bits, JSON signals and text signals of more than ``TEXT_CODES_MAX`` distinct
values read PostgreSQL as before, as does every dataset of fewer than
``COLUMNS_MIN_ROWS`` signal rows (its scan takes a few ms). An exact count whose
columns are not kept is PostgreSQL's, and starts reading them in a background thread
(``columns_read_ahead``): the query's columns and sort in one scan of the partition
(~330 ms for one float signal at 1M, ~100 ms more for each other, ~100 ms more to list
a text signal's values), then the dataset's other valued signals, each sorted once.
From then on the first response carries the page and the exact count, and no second
request follows (``query.explorer_results``).

Memory: each process keeps up to ``WINNOW_EXPLORER_COLUMNS_MB`` of columns, the least
recently used dropped first. Each web process reads its own. Reading and keeping them
is ``column_store.py``; this module answers queries from them and reads them ahead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from django.db import connection

from curation.explorer.column_store import (
    DTYPES,
    Column,
    budget,
    clear,
    columns_of,
    kept_bytes,
    kept_of,
    reading_done,
    start_thread,
    wait,
)
from curation.explorer.filters import (
    DedupStatus,
    Equals,
    ExplorerQuery,
    Range,
    SignalColumn,
)
from curation.models import Signal

logger = logging.getLogger(__name__)

# Datasets with fewer signal rows count in PostgreSQL (a scan of a few ms at 10k).
COLUMNS_MIN_ROWS = 100_000
# After a query's own columns, the dataset's other signals are read ahead, up to this
# share of the memory budget, unless its signals were written this recently.
READ_AHEAD_SHARE = 0.5
READ_AHEAD_QUIET_SECONDS = 60
_INT64 = np.iinfo(np.int64)

__all__ = ["Column", "Matches", "clear", "columns_count", "columns_matches", "kept_bytes", "wait"]


def _signals(query: ExplorerQuery) -> list[SignalColumn] | None:
    """The signals ``query``'s predicates read, or None when it has a predicate that the
    columns cannot answer (meta, text without bits, a JSON signal, an odd value)."""
    if not query.reads_signals or query.meta is not None:
        return None
    if query.text and query.text_hits is None:
        return None
    wanted: list[SignalColumn] = [r.signal for r in query.ranges]
    for eq in query.equals:
        if eq.signal.dtype == Signal.Dtype.BOOL and not isinstance(eq.value, bool):
            return None
        if eq.signal.dtype == Signal.Dtype.TEXT and not isinstance(eq.value, str):
            return None
        if eq.signal.dtype not in (Signal.Dtype.BOOL, Signal.Dtype.TEXT):
            return None
        wanted.append(eq.signal)
    for dd in query.dedup:
        wanted += [dd.keep, dd.size]
    if any(r.signal.dtype not in (Signal.Dtype.FLOAT, Signal.Dtype.INT) for r in query.ranges):
        return None
    if any(s.dtype not in DTYPES for s in wanted):
        return None
    return list({s.column: s for s in wanted}.values())


def _bound(values: np.ndarray, bound: float | int, *, lower: bool, has_nan: bool) -> np.ndarray:
    """``values >= bound`` (``lower``) or ``values <= bound`` as PostgreSQL compares
    float8: NaN equals NaN and is above every number."""
    if isinstance(bound, float) and math.isnan(bound):
        if lower:
            return np.isnan(values) if has_nan else np.zeros(len(values), dtype=bool)
        return np.ones(len(values), dtype=bool)
    if lower:
        found = values >= bound
        return found | np.isnan(values) if has_nan else found
    return values <= bound  # NaN is above any bound: False, as numpy says


def _int_bound(bound: float | int, *, lower: bool) -> float | int:
    """An integer signal's bound as ``sources._range_sql`` sends it: rounded inwards when
    finite, then clamped to int64 (the same comparisons)."""
    if isinstance(bound, float) and not math.isfinite(bound):
        return bound
    rounded = math.ceil(bound) if lower else math.floor(bound)
    return min(max(rounded, int(_INT64.min)), int(_INT64.max))


def _range(column: Column, values: np.ndarray, valid: np.ndarray, pred: Range) -> np.ndarray:
    mask = valid.copy()
    for bound, lower in ((pred.lo, True), (pred.hi, False)):
        if bound is None:
            continue
        if column.dtype == Signal.Dtype.INT:
            bound = _int_bound(bound, lower=lower)
        mask &= _bound(values, bound, lower=lower, has_nan=column.has_nan)
    return mask


def _equals(column: Column, values: np.ndarray, valid: np.ndarray, eq: Equals) -> np.ndarray:
    if column.dtype == Signal.Dtype.BOOL:
        return valid & (values == int(bool(eq.value)))
    code = (column.codes or {}).get(str(eq.value))
    if code is None:
        return np.zeros(len(values), dtype=bool)
    return valid & (values == code)


def _dedup(
    keep: tuple[np.ndarray, np.ndarray], size: tuple[np.ndarray, np.ndarray], pred: DedupStatus
) -> np.ndarray:
    """``sources._dedup_sql`` on the columns: IS FALSE / IS TRUE are False for NULL."""
    (keep_values, keep_valid), (size_values, size_valid) = keep, size
    if pred.status == "removed":
        return keep_valid & (keep_values == 0)
    kept = keep_valid & (keep_values == 1)
    if pred.status == "kept":
        return kept & size_valid & (size_values > 1)
    if pred.status == "alone":
        return kept & (~size_valid | (size_values <= 1))
    raise ValueError(f"unknown duplicate status {pred.status!r}")


def _wanted(query: ExplorerQuery) -> list[SignalColumn] | None:
    """The columns a page and count of ``query`` read: its predicates' and its sort's."""
    signals = _signals(query)
    sort = query.sort.signal
    if signals is None:
        return None
    extra = [sort] if sort is not None and sort.dtype in DTYPES else []
    return list({s.column: s for s in (*signals, *extra)}.values())


def columns_read_ahead(*, query: ExplorerQuery) -> bool:
    """Start reading the columns ``query`` needs (its predicates' and its sort's) that are
    not kept, in a thread of this process with a connection of its own; True when a read
    started. The exact count that calls this has just been counted by PostgreSQL, and
    the page's next responses find the columns kept. The dataset's other signals follow
    (``_others``): a curator's next filter is often on another signal.

    Not from a transaction (the thread would not see what it sees), nor when the memory
    budget could not keep them, nor while another thread reads the same dataset's (the
    reads would compete for the same disk and cores; the next count tries again)."""
    if connection.in_atomic_block or budget() <= 0:
        return False
    wanted = _wanted(query)
    if wanted is None:
        return False
    from curation.services.signals import partition_row_estimate

    rows = partition_row_estimate(query.dataset_id)
    if rows < COLUMNS_MIN_ROWS or rows * 9 * len(wanted) > budget():
        return False  # small, or more than the memory could keep
    return start_thread(
        _read_ahead,
        query.dataset_id,
        wanted,
        query.sort.signal,
        name=f"winnow-columns-{query.dataset_id}",
        dataset_id=query.dataset_id,
    )


def _others(dataset_id: int, wanted: list[SignalColumn], span: int) -> list[SignalColumn]:
    """The dataset's other signals that have values, read ahead after ``wanted`` so that
    the curator's next filters find them kept: as many as fit in ``READ_AHEAD_SHARE`` of
    the memory budget (13 bytes a document each, with its sorted order), none while the
    dataset's signals were written in the last ``READ_AHEAD_QUIET_SECONDS`` (a run still
    writing would make them stale at once).

    "Has values" is the planner's statistics of the partition (``null_frac`` below 1);
    a partition never analyzed reads no others. ``span``: the ids a column covers."""
    from curation.services.signals import partition_name

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(created_at) > now() - make_interval(secs => %s), false) "
            "FROM curation_signalwrite WHERE dataset_id = %s",
            [READ_AHEAD_QUIET_SECONDS, int(dataset_id)],
        )
        if cursor.fetchone()[0]:
            return []
        cursor.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = %s AND null_frac < 1",
            [partition_name(dataset_id)],
        )
        valued = {str(row[0]) for row in cursor.fetchall()}
    taken = {s.column for s in wanted}
    taken |= kept_of(dataset_id)
    room = int(budget() * READ_AHEAD_SHARE) // max(1, span * 13) - len(wanted)
    others = [
        SignalColumn.of(signal)
        for signal in Signal.objects.filter(dtype__in=DTYPES).order_by("pk")
        if signal.column_name in valued and signal.column_name not in taken
    ]
    return others[: max(0, room)]


def _read_ahead(dataset_id: int, wanted: list[SignalColumn], sort: SignalColumn | None) -> None:
    from django.db import connections

    try:
        found = columns_of(dataset_id, wanted, read=True)
        if found is not None:
            if sort is not None and sort.column in found:  # the next pages walk its order
                found[sort.column].order()
            span = max(len(column.values) for column in found.values())  # ids read
            others = _others(dataset_id, wanted, span)
            read = columns_of(dataset_id, others, read=True) if others else None
            # Any of them may be sorted by next: sort them now rather than on a page.
            for column in [*found.values(), *(read or {}).values()]:
                column.order()
    except Exception:  # a thread has no caller to tell: the counts stay PostgreSQL's
        logger.exception("reading the signal columns of dataset %s failed", dataset_id)
    finally:
        reading_done(dataset_id)
        connections.close_all()  # this thread's own connection


def any_kept(dataset_id: int) -> bool:
    """Whether this process keeps any column of the dataset (of any write count): free."""
    return bool(kept_of(dataset_id))


@dataclass(frozen=True)
class Matches:
    """The documents a query matches: ``mask[n]`` is document ``first_id + n``; the
    columns it was computed from (and any asked for beside them)."""

    first_id: int
    mask: np.ndarray
    columns: dict[str, Column]

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.mask))


def columns_matches(
    *, query: ExplorerQuery, read: bool = False, extra: tuple[SignalColumn, ...] = ()
) -> Matches | None:
    """The documents ``query`` matches, from the dataset's columns; None when they cannot
    answer it (see the module docstring). Only columns already kept are used (a few ms,
    never a scan), unless ``read``. ``extra`` columns (a page's sort) are needed too."""
    signals = _signals(query)
    if signals is None or any(s.dtype not in DTYPES for s in extra):
        return None
    if not read and not any_kept(query.dataset_id):  # nothing to answer from: no query
        return None
    from curation.services.signals import partition_row_estimate

    if partition_row_estimate(query.dataset_id) < COLUMNS_MIN_ROWS:
        return None
    wanted = list({s.column: s for s in (*signals, *extra)}.values())
    columns = columns_of(query.dataset_id, wanted, read=read)
    if columns is None:
        return None
    # A document matches only where every predicate's column has a value.
    lo = max(columns[s.column].first_id for s in signals)
    hi = max(lo, min(columns[s.column].end_id for s in signals))

    def sliced(signal: SignalColumn) -> tuple[Column, np.ndarray, np.ndarray]:
        column = columns[signal.column]
        window = slice(lo - column.first_id, hi - column.first_id)
        return column, column.values[window], column.valid[window]

    mask: np.ndarray | None = None

    def both(found: np.ndarray) -> None:
        nonlocal mask
        mask = found if mask is None else np.logical_and(mask, found, out=mask)

    for pred in query.ranges:
        both(_range(*sliced(pred.signal), pred))
    for eq in query.equals:
        both(_equals(*sliced(eq.signal), eq))
    for dd in query.dedup:
        _, keep_values, keep_valid = sliced(dd.keep)
        _, size_values, size_valid = sliced(dd.size)
        both(_dedup((keep_values, keep_valid), (size_values, size_valid), dd))
    if query.text_hits is not None:
        both(query.text_hits.flags(lo, hi))
    assert mask is not None  # _signals: at least one signal predicate
    return Matches(first_id=lo, mask=mask, columns=columns)


def columns_count(*, query: ExplorerQuery, read: bool = False) -> int | None:
    """The exact count of ``query`` from the dataset's columns (``columns_matches``)."""
    matched = columns_matches(query=query, read=read)
    return None if matched is None else matched.count
