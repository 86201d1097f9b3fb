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
``COLUMNS_MIN_ROWS`` signal rows (its scan takes a few ms). The first exact count that
needs a column reads it: one scan of the partition for all the columns it lacks
(~350 ms for one float signal at 1M, ~100 ms more for each other, ~100 ms more to
list a text signal's values), against 50-300 ms for PostgreSQL's count. From then on
the first response carries the page and the exact count, and no second request
follows (``query.explorer_results``).

Memory: each process keeps up to ``WINNOW_EXPLORER_COLUMNS_MB`` of columns, the least
recently used dropped first. Each web process reads its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection
from psycopg import sql

from curation.explorer.filters import (
    DedupStatus,
    Equals,
    ExplorerQuery,
    HitBits,
    Range,
    SignalColumn,
)
from curation.models import Signal

logger = logging.getLogger(__name__)

# Datasets with fewer signal rows count in PostgreSQL (a scan of a few ms at 10k).
COLUMNS_MIN_ROWS = 100_000
# No columns for a dataset whose ids span more than this (9 bytes an id a column).
MAX_SPAN = 64_000_000
# A text signal with more distinct values than this is not kept (its codes would be big).
TEXT_CODES_MAX = 1_000
# After a query's own columns, the dataset's other signals are read ahead, up to this
# share of the memory budget, unless its signals were written this recently.
READ_AHEAD_SHARE = 0.5
READ_AHEAD_QUIET_SECONDS = 60
DTYPES = (Signal.Dtype.FLOAT, Signal.Dtype.INT, Signal.Dtype.BOOL, Signal.Dtype.TEXT)
_INT64 = np.iinfo(np.int64)


@dataclass(frozen=True)
class Column:
    """One signal's values for the ids ``first_id ..`` of a dataset, read at ``writes``.

    ``values`` is float64 for a float signal, int64 otherwise (a bool as 0/1, a text
    as its 1-based code in ``codes``, in PostgreSQL's order of ``labels``); ``valid``
    is False where the document has no value (NULL, or no signal row). ``has_nan``:
    some value is NaN.
    """

    dataset_id: int
    column: str
    dtype: str
    writes: int
    first_id: int
    values: np.ndarray
    valid: np.ndarray
    has_nan: bool = False
    codes: dict[str, int] | None = None
    labels: tuple[str, ...] = ()
    _order: list[np.ndarray] = field(default_factory=list, repr=False)
    _order_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def order(self) -> np.ndarray:
        """The positions of the documents with a value, in the order (value, position):
        PostgreSQL's ascending order, NaN last (int32, 4 bytes a value). Sorted once
        (~100 ms at 1M), on first use; ``sort_ahead`` sorts it in the background."""
        with self._order_lock:
            if not self._order:
                positions = np.flatnonzero(self.valid)
                ranks = np.argsort(self.values[positions], kind="stable")  # ties by position
                self._order.append(positions[ranks].astype(np.int32))
            return self._order[0]

    @property
    def ordered(self) -> bool:
        return bool(self._order)

    def sort_ahead(self) -> None:
        """Sort ``order`` in a thread of this process, unless sorted or being sorted."""
        if self.ordered or self._order_lock.locked():
            return
        sorter = threading.Thread(target=self.order, name="winnow-columns-sort", daemon=True)
        with _lock:
            _readers[:] = [t for t in _readers if t.is_alive()]
            _readers.append(sorter)
        sorter.start()

    @property
    def end_id(self) -> int:
        return self.first_id + len(self.values)

    @property
    def nbytes(self) -> int:
        """Its memory: values and flags, and the order once sorted (4 bytes a value)."""
        extra = sum(o.nbytes for o in self._order)
        return int(self.values.nbytes + self.valid.nbytes + extra)


_lock = threading.Lock()
_cache: OrderedDict[tuple[int, str], Column] = OrderedDict()
_reading: set[int] = set()  # datasets whose columns a thread is reading
_readers: list[threading.Thread] = []  # the threads that read or sort columns


def clear() -> None:
    """Forget every kept column of this process."""
    with _lock:
        _cache.clear()


def kept_bytes() -> int:
    with _lock:
        return sum(c.nbytes for c in _cache.values())


def _budget() -> int:
    return int(float(getattr(settings, "WINNOW_EXPLORER_COLUMNS_MB", 512)) * 1024 * 1024)


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


def _writes(dataset_id: int) -> tuple[int, bool]:
    """The dataset's count of signal writes in this snapshot (``SignalWrite``), and
    whether this transaction has written nothing (a writing transaction keeps no column)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(writes), 0), pg_current_xact_id_if_assigned() IS NULL "
            "FROM curation_signalwrite WHERE dataset_id = %s",
            [int(dataset_id)],
        )
        count, clean = cursor.fetchone()
    return int(count), bool(clean)


def _text_codes(dataset_id: int, column: str) -> list[str] | None:
    """A text signal's distinct values in PostgreSQL's order (its collation's, which a
    page sorted by it follows), or None past ``TEXT_CODES_MAX``."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT v FROM (SELECT DISTINCT {c} AS v FROM curation_signal_row "
                "WHERE dataset_id = {d} AND {c} IS NOT NULL LIMIT {n}) t ORDER BY v"
            )
            .format(
                c=sql.Identifier(column),
                d=sql.Literal(int(dataset_id)),
                n=sql.Literal(TEXT_CODES_MAX + 1),
            )
            .as_string(cursor.connection)
        )
        values = [str(row[0]) for row in cursor.fetchall()]
    return None if len(values) > TEXT_CODES_MAX else values


def _value_sql(signal: SignalColumn, codes: list[str] | None) -> sql.Composable:
    column = sql.Identifier(signal.column)
    if signal.dtype == Signal.Dtype.FLOAT:
        return sql.SQL("coalesce({}, 0)::float8").format(column)
    if signal.dtype == Signal.Dtype.INT:
        return sql.SQL("coalesce({}, 0)::int8").format(column)
    if signal.dtype == Signal.Dtype.BOOL:
        return sql.SQL("coalesce({}::int, 0)::int8").format(column)
    return sql.SQL("coalesce(array_position({}::text[], {}), 0)::int8").format(
        sql.Literal(codes or []), column
    )


def _read(
    dataset_id: int, signals: list[SignalColumn]
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, dict[str, Any]]:
    """The signals' values in one scan of the partition: the rows' document ids, each
    signal's values (row order), each row's NULL flags (rows x signals) and each text
    signal's codes.

    Each part is one aggregate of the rows' binary values (``string_agg`` of
    ``float8send``..), read as one bytea in binary: all the aggregates of one scan see
    the rows in the same order. A binary COPY of the same rows took 2.5x as long at 1M
    (860 against 350 ms for a signal): its client reads a message per row.
    """
    codes: dict[str, Any] = {}
    for signal in signals:
        if signal.dtype == Signal.Dtype.TEXT:
            codes[signal.column] = _text_codes(dataset_id, signal.column)
            if codes[signal.column] is None:
                raise _Unsupported(f"{signal.name} has more than {TEXT_CODES_MAX} values")
    parts: list[sql.Composable] = [sql.SQL("string_agg(int8send(document_id), '')")]
    for signal in signals:
        send = "float8send" if signal.dtype == Signal.Dtype.FLOAT else "int8send"
        parts.append(
            sql.SQL("string_agg({}({}), '')").format(
                sql.SQL(send), _value_sql(signal, codes.get(signal.column))
            )
        )
    flags = sql.SQL(" || ").join(
        sql.SQL("CASE WHEN {} IS NULL THEN '\\x01'::bytea ELSE '\\x00'::bytea END").format(
            sql.Identifier(signal.column)
        )
        for signal in signals
    )
    parts.append(sql.SQL("string_agg({}, '')").format(flags))
    statement = sql.SQL("SELECT {} FROM curation_signal_row WHERE dataset_id = {}").format(
        sql.SQL(", ").join(parts), sql.Literal(int(dataset_id))
    )
    with connection.cursor() as cursor:
        pg = cursor.connection
        # A server-side-binding cursor: Django's client-side one cannot read binary results.
        with psycopg.Cursor(pg) as raw:
            raw.execute(statement.as_string(pg), binary=True)
            row = raw.fetchone()
    assert row is not None
    blobs = [b"" if blob is None else bytes(blob) for blob in row]
    ids = np.frombuffer(blobs[0], dtype=">i8").astype(np.int64)
    values = [
        np.frombuffer(blob, dtype=">f8" if signal.dtype == Signal.Dtype.FLOAT else ">i8")
        for signal, blob in zip(signals, blobs[1:-1], strict=True)
    ]
    nulls = np.frombuffer(blobs[-1], dtype=np.uint8).reshape(len(ids), len(signals)) != 0
    if any(len(v) != len(ids) for v in values):
        raise ValueError("the signal values and the document ids differ in number")
    return ids, values, nulls, codes


class _Unsupported(Exception):
    """A column that is not kept (say, a text signal of too many values)."""


def _load(dataset_id: int, signals: list[SignalColumn], writes: int) -> dict[str, Column]:
    started = time.perf_counter()
    ids, read_values, nulls, codes = _read(dataset_id, signals)
    first = int(ids.min()) if len(ids) else 0
    span = int(ids.max()) - first + 1 if len(ids) else 0
    if span > MAX_SPAN:
        raise _Unsupported(f"the dataset's ids span {span:,}")
    at = ids - first
    out: dict[str, Column] = {}
    for i, signal in enumerate(signals):
        is_float = signal.dtype == Signal.Dtype.FLOAT
        values = np.zeros(span, dtype=np.float64 if is_float else np.int64)
        valid = np.zeros(span, dtype=bool)
        values[at] = read_values[i]
        valid[at] = ~nulls[:, i]
        text = codes.get(signal.column)
        out[signal.column] = Column(
            dataset_id=dataset_id,
            column=signal.column,
            dtype=signal.dtype,
            writes=writes,
            first_id=first,
            values=values,
            valid=valid,
            has_nan=bool(is_float and np.isnan(values).any()),
            codes=None if text is None else {v: k + 1 for k, v in enumerate(text)},
            labels=tuple(text or ()),
        )
    logger.info(
        "read %d signal column(s) of dataset %s (%d rows) in %.0f ms",
        len(signals),
        dataset_id,
        len(ids),
        (time.perf_counter() - started) * 1000,
    )
    return out


def _columns(
    dataset_id: int, signals: list[SignalColumn], *, read: bool
) -> dict[str, Column] | None:
    """The signals' columns as of this snapshot's writes: kept ones, the rest read when
    ``read`` (None without it, or when the read could not be trusted or kept)."""
    writes, clean = _writes(dataset_id)
    found: dict[str, Column] = {}
    with _lock:
        for signal in signals:
            key = (dataset_id, signal.column)
            column = _cache.get(key)
            if column is None:
                continue
            if column.writes != writes or column.dtype != signal.dtype:
                del _cache[key]
                continue
            _cache.move_to_end(key)
            found[signal.column] = column
    missing = [s for s in signals if s.column not in found]
    if not missing:
        return found
    if not read:
        return None
    try:
        loaded = _load(dataset_id, missing, writes)
    except _Unsupported as exc:
        logger.info("no columns for dataset %s: %s", dataset_id, exc)
        return None
    except ValueError:  # values this module did not expect: count in PostgreSQL
        logger.exception("could not read the signal columns of dataset %s", dataset_id)
        return None
    after, _ = _writes(dataset_id)
    if after != writes:
        return None  # a write committed during the read: it may or may not be in it
    found.update(loaded)
    if clean:
        with _lock:
            for column in loaded.values():
                _cache[(dataset_id, column.column)] = column
            budget, total = _budget(), sum(c.nbytes for c in _cache.values())
            while _cache and total > budget:
                _, dropped = _cache.popitem(last=False)
                total -= dropped.nbytes
    return found


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


def _bits(hits: HitBits, lo: int, hi: int) -> np.ndarray:
    """The text's cached hits (``get_bit`` order) as flags of the ids ``[lo, hi)``."""
    flags = np.zeros(hi - lo, dtype=bool)
    a, b = max(lo, hits.first_id), min(hi, hits.last_id + 1)
    if b > a:
        start, n = a - hits.first_id, b - a
        packed = np.frombuffer(hits.bits, dtype=np.uint8)[start // 8 : (start + n + 7) // 8]
        unpacked = np.unpackbits(packed, bitorder="little")[start % 8 : start % 8 + n]
        flags[a - lo : b - lo] = unpacked.astype(bool)
    return flags


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
    if connection.in_atomic_block or _budget() <= 0:
        return False
    wanted = _wanted(query)
    if wanted is None:
        return False
    from curation.services.signals import partition_row_estimate

    rows = partition_row_estimate(query.dataset_id)
    if rows < COLUMNS_MIN_ROWS or rows * 9 * len(wanted) > _budget():
        return False  # small, or more than the memory could keep
    key = query.dataset_id
    with _lock:
        if key in _reading:
            return False
        _reading.add(key)
        _readers[:] = [t for t in _readers if t.is_alive()]
        reader = threading.Thread(
            target=_read_ahead,
            args=(query.dataset_id, wanted, key, query.sort.signal),
            name=f"winnow-columns-{query.dataset_id}",
            daemon=True,
        )
        _readers.append(reader)
    reader.start()
    return True


def _others(dataset_id: int, wanted: list[SignalColumn]) -> list[SignalColumn]:
    """The dataset's other signals that have values, read ahead after ``wanted`` so that
    the curator's next filters find them kept: as many as fit in ``READ_AHEAD_SHARE`` of
    the memory budget (13 bytes a document each, with its sorted order), none while the
    dataset's signals were written in the last ``READ_AHEAD_QUIET_SECONDS`` (a run still
    writing would make them stale at once).

    "Has values" is the planner's statistics of the partition (``null_frac`` below 1);
    a partition never analyzed reads no others."""
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
        cursor.execute(
            "SELECT max(document_id) - min(document_id) + 1 FROM curation_signal_row "
            "WHERE dataset_id = %s",
            [int(dataset_id)],
        )
        span = int(cursor.fetchone()[0] or 0)
    taken = {s.column for s in wanted}
    with _lock:
        taken |= {column for (dataset, column) in _cache if dataset == dataset_id}
    room = int(_budget() * READ_AHEAD_SHARE) // max(1, span * 13) - len(wanted)
    others = [
        SignalColumn.of(signal)
        for signal in Signal.objects.filter(dtype__in=DTYPES).order_by("pk")
        if signal.column_name in valued and signal.column_name not in taken
    ]
    return others[: max(0, room)]


def _read_ahead(
    dataset_id: int, wanted: list[SignalColumn], key: int, sort: SignalColumn | None
) -> None:
    from django.db import connections

    try:
        found = _columns(dataset_id, wanted, read=True)
        if found is not None:
            if sort is not None and sort.column in found:  # the next pages walk its order
                found[sort.column].order()
            others = _others(dataset_id, wanted)
            read = _columns(dataset_id, others, read=True) if others else None
            # Any of them may be sorted by next: sort them now rather than on a page.
            for column in [*found.values(), *(read or {}).values()]:
                column.order()
    except Exception:  # a thread has no caller to tell: the counts stay PostgreSQL's
        logger.exception("reading the signal columns of dataset %s failed", dataset_id)
    finally:
        with _lock:
            _reading.discard(key)
        connections.close_all()  # this thread's own connection


def wait(timeout: float | None = None) -> None:
    """Wait for this process's column reads in progress (tests and the bench)."""
    with _lock:
        readers = list(_readers)
    for reader in readers:
        reader.join(timeout)


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
    from curation.services.signals import partition_row_estimate

    if partition_row_estimate(query.dataset_id) < COLUMNS_MIN_ROWS:
        return None
    wanted = list({s.column: s for s in (*signals, *extra)}.values())
    columns = _columns(query.dataset_id, wanted, read=read)
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
        both(_bits(query.text_hits, lo, hi))
    assert mask is not None  # _signals: at least one signal predicate
    return Matches(first_id=lo, mask=mask, columns=columns)


def columns_count(*, query: ExplorerQuery, read: bool = False) -> int | None:
    """The exact count of ``query`` from the dataset's columns (``columns_matches``)."""
    matched = columns_matches(query=query, read=read)
    return None if matched is None else matched.count
