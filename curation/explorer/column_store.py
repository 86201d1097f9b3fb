"""Where the explorer's signal columns live: read from PostgreSQL, kept per process.

A ``Column`` is one signal's values for a dataset's ids, read at a count of the
dataset's signal writes (``SignalWrite``) by one scan of the partition (``_read``), and
kept in this process's cache (least recently used dropped past
``WINNOW_EXPLORER_COLUMNS_MB``) only when that count did not move during the read and
the reading transaction wrote nothing. ``columns.py`` answers queries from them and
reads them ahead; ``column_pages.py`` pages them. Why and what for: ``columns.py``.
"""

from __future__ import annotations

import logging
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

from curation.explorer.filters import SignalColumn
from curation.models import Signal
from curation.services.signals import signal_writes_seen

logger = logging.getLogger(__name__)

# No columns for a dataset whose ids span more than this (9 bytes an id a column).
MAX_SPAN = 64_000_000
# A text signal with more distinct values than this is not kept (its codes would be big).
TEXT_CODES_MAX = 1_000
DTYPES = (Signal.Dtype.FLOAT, Signal.Dtype.INT, Signal.Dtype.BOOL, Signal.Dtype.TEXT)


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
        if not self.ordered and not self._order_lock.locked():
            start_thread(self.order, name="winnow-columns-sort")

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
_reading: set[int] = set()  # datasets whose columns a thread reads
_readers: list[threading.Thread] = []  # the threads that read or sort columns


def start_thread(target: Any, *args: Any, name: str, dataset_id: int | None = None) -> bool:
    """Run ``target(*args)`` in a daemon thread that ``wait`` joins. With ``dataset_id``,
    not while another such thread runs for the dataset (False then); ``reading_done``
    ends its turn."""
    with _lock:
        if dataset_id is not None:
            if dataset_id in _reading:
                return False
            _reading.add(dataset_id)
        _readers[:] = [t for t in _readers if t.is_alive()]
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        _readers.append(thread)
    thread.start()
    return True


def reading_done(dataset_id: int) -> None:
    with _lock:
        _reading.discard(dataset_id)


def kept_of(dataset_id: int) -> set[str]:
    """The columns kept for the dataset, any write count."""
    with _lock:
        return {column for (dataset, column) in _cache if dataset == dataset_id}


def clear() -> None:
    """Forget every kept column of this process."""
    with _lock:
        _cache.clear()


def kept_bytes() -> int:
    with _lock:
        return sum(c.nbytes for c in _cache.values())


def budget() -> int:
    return int(float(getattr(settings, "WINNOW_EXPLORER_COLUMNS_MB", 512)) * 1024 * 1024)


def wait(timeout: float | None = None) -> None:
    """Wait for this process's column reads in progress (tests and the bench)."""
    with _lock:
        readers = list(_readers)
    for reader in readers:
        reader.join(timeout)


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


def columns_of(
    dataset_id: int, signals: list[SignalColumn], *, read: bool
) -> dict[str, Column] | None:
    """The signals' columns as of this snapshot's writes: kept ones, the rest read when
    ``read`` (None without it, or when the read could not be trusted or kept)."""
    writes, clean = signal_writes_seen(dataset_id)
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
    after, _ = signal_writes_seen(dataset_id)
    if after != writes:
        return None  # a write committed during the read: it may or may not be in it
    found.update(loaded)
    if clean:
        with _lock:
            for column in loaded.values():
                _cache[(dataset_id, column.column)] = column
            room, total = budget(), sum(c.nbytes for c in _cache.values())
            while _cache and total > room:
                _, dropped = _cache.popitem(last=False)
                total -= dropped.nbytes
    return found
