"""A page and its exact count from the signal columns in memory (``columns.py``).

Once a big dataset's columns for a query are kept, the documents it matches are one
mask of ids; the page is the first ``limit`` of them in the query's order after the
cursor, and only those documents are read from PostgreSQL (by primary key) for their
previews. The page and its count then cost what they cost at 10k plus the mask's few
ms, whatever the filter's selectivity: PostgreSQL's own page ANDs index bitmaps of the
ranges, which at 1M takes up to ~20 ms for two 2 % ranges (``bench/explorer_bench.py``).

The order is PostgreSQL's (``query._order``): the sort value with NULLs last, then the
id, both ascending or both descending; NaN above every number; -0.0 equal to 0.0; a
text signal in its collation's order (``columns._text_codes`` reads the values in it).
A cursor whose value the columns cannot place (a text value no longer among them)
leaves the page to PostgreSQL.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
from django.db import connection

from curation.explorer.columns import Column, Matches, columns_matches
from curation.explorer.filters import Cursor, ExplorerQuery, Sort
from curation.explorer.query import (
    PREVIEW_CHARS,
    ExplorerResults,
    ExplorerRow,
    _paged,
    sql_page,
)
from curation.models import Signal


def _ids_page(mask: np.ndarray, after: int | None, limit: int, desc: bool) -> np.ndarray:
    """The first ``limit`` matching positions in id order past ``after``, read from the
    mask a chunk (``WALK_CHUNK`` x 16) at a time: a broad filter fills a page at once."""
    n, size = len(mask), WALK_CHUNK * 16
    found: list[np.ndarray] = []
    wanted = limit
    if desc:
        end = n if after is None else min(max(after, 0), n)
        while wanted > 0 and end > 0:
            begin = max(0, end - size)
            hits = (np.flatnonzero(mask[begin:end]) + begin)[::-1][:wanted]
            found.append(hits)
            wanted -= len(hits)
            end = begin
    else:
        begin = 0 if after is None else min(max(after + 1, 0), n)
        while wanted > 0 and begin < n:
            hits = (np.flatnonzero(mask[begin : begin + size]) + begin)[:wanted]
            found.append(hits)
            wanted -= len(hits)
            begin += size
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


# A walk of a sort order tests this many of its documents against the mask at a time.
WALK_CHUNK = 4_096


def _walk(
    order: np.ndarray, start: int, step: int, shift: int, mask: np.ndarray, limit: int
) -> np.ndarray:
    """The first ``limit`` of ``order[start], order[start + step], ..`` (column positions)
    whose document matches (``mask[position + shift]``), in that order."""
    found: list[np.ndarray] = []
    wanted, n = limit, len(order)
    i = start
    while wanted > 0 and 0 <= i < n:
        if step > 0:
            chunk = order[i : i + WALK_CHUNK]
        else:
            chunk = order[max(0, i - WALK_CHUNK + 1) : i + 1][::-1]
        at = chunk + shift
        inside = (at >= 0) & (at < len(mask))
        hits = chunk[inside][mask[at[inside]]][:wanted]
        found.append(hits)
        wanted -= len(hits)
        i += step * len(chunk)
    return np.concatenate(found) if found else order[:0]


def _cursor_value(column: Column, value: Any) -> Any:
    """The cursor's sort value in the column's terms; None when it has no place there."""
    if column.dtype == Signal.Dtype.FLOAT:
        return float(value)
    if column.dtype == Signal.Dtype.INT:
        return int(value)
    if column.dtype == Signal.Dtype.BOOL:
        return int(bool(value))
    return (column.codes or {}).get(str(value))


def _sort_value(column: Column, raw: Any) -> Any:
    if column.dtype == Signal.Dtype.FLOAT:
        return float(raw)
    if column.dtype == Signal.Dtype.INT:
        return int(raw)
    if column.dtype == Signal.Dtype.BOOL:
        return bool(raw)
    return column.labels[int(raw) - 1]


def _rank(value: Any) -> tuple[bool, Any]:
    """numpy's sort key, which is PostgreSQL's order: NaN above every number."""
    return (True, 0.0) if isinstance(value, float) and math.isnan(value) else (False, value)


class _Ranks:
    """A column's values in its order, as ranks (``_rank``) for ``bisect``, one at a time."""

    def __init__(self, column: Column, order: np.ndarray) -> None:
        self.values, self.order = column.values, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[bool, Any]:
        return _rank(self.values[self.order[i]].item())


def _signal_page(
    matched: Matches, sort: Sort, after: Cursor | None, limit: int
) -> list[tuple[int, Any]] | None:
    """(position, sort value) of the page's rows in a signal's order; None when the
    cursor's value has no place in the column.

    The column's order (``Column.order``) is walked from the cursor, a chunk at a time,
    until the page is full: a few thousand documents for a filter matching a few
    percent, where sorting every match took ~3 ms at 1M. NULLs come last, by id."""
    assert sort.signal is not None
    column = matched.columns[sort.signal.column]
    order = column.order()
    desc = sort.descending
    shift = column.first_id - matched.first_id  # column position + shift = mask position
    past_valued = after is not None and after.value is None
    if after is None:
        start = len(order) - 1 if desc else 0
    elif past_valued:
        start = -1
    else:
        value = _cursor_value(column, after.value)
        if value is None:
            return None
        ranks, key = _Ranks(column, order), _rank(value)
        lo, hi = bisect.bisect_left(ranks, key), bisect.bisect_right(ranks, key)
        at = after.id - column.first_id  # ties are in position order
        tie = int(np.searchsorted(order[lo:hi], at, "left" if desc else "right"))
        start = lo + tie - 1 if desc else lo + tie
    chosen = _walk(order, start, -1 if desc else 1, shift, matched.mask, limit)
    page = [(int(p) + shift, _sort_value(column, column.values[p])) for p in chosen]
    if len(page) < limit:  # the NULLs (or no value in the column's range), by id
        nulls = matched.mask.copy()
        inside = slice(max(0, shift), max(0, min(len(nulls), shift + len(column.valid))))
        nulls[inside] &= ~column.valid[inside.start - shift : inside.stop - shift]
        positions = np.flatnonzero(nulls)
        if past_valued:
            past = after.id - matched.first_id  # type: ignore[union-attr]
            positions = positions[positions < past] if desc else positions[positions > past]
        rest = positions[::-1] if desc else positions
        page += [(int(p), None) for p in rest[: limit - len(page)]]
    return page


def _documents(dataset_id: int, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """The page's documents by id: (external_id, preview, chars, words, lines)."""
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, external_id, left(text, %s), char_count, word_count, line_count "
            "FROM curation_document WHERE dataset_id = %s AND id = ANY(%s)",
            [PREVIEW_CHARS, int(dataset_id), ids],
        )
        return {int(row[0]): tuple(row[1:]) for row in cursor.fetchall()}


def columns_results(
    *, query: ExplorerQuery, after: Cursor | None, size: int, read: bool = False
) -> ExplorerResults | None:
    """A page of ``size`` and the exact count from the kept columns (``read``: read any
    that are not kept), or None when they cannot answer (``columns.columns_matches``).
    While the sort's column is not yet in order, the page is PostgreSQL's (the count
    still the columns')."""
    sort = query.sort
    extra = () if sort.signal is None else (sort.signal,)
    matched = columns_matches(query=query, read=read, extra=extra)
    if matched is None:
        return None
    limit = size + 1
    if sort.signal is not None and not read and not matched.columns[sort.signal.column].ordered:
        matched.columns[sort.signal.column].sort_ahead()  # this page is PostgreSQL's
        page_read = sql_page(query=query, after=after, size=size)
        return ExplorerResults(page=page_read, count=matched.count, estimate=None)
    if sort.signal is None:
        past = None if after is None else after.id - matched.first_id
        chosen = _ids_page(matched.mask, past, limit, sort.descending)
        page: list[tuple[int, Any]] | None = [(int(p), None) for p in chosen]
    else:
        page = _signal_page(matched, sort, after, limit)
    if page is None:
        return None
    ids = [matched.first_id + p for p, _ in page]
    documents = _documents(query.dataset_id, ids)
    rows = [ExplorerRow(i, value, *documents[i]) for i, (_, value) in zip(ids, page, strict=True)]
    return ExplorerResults(
        page=_paged(rows, size), count=matched.count, estimate=None, read="columns"
    )
