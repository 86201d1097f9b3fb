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

from typing import Any

import numpy as np
from django.db import connection

from curation.explorer.columns import Column, Matches, columns_matches
from curation.explorer.filters import Cursor, ExplorerQuery, Sort
from curation.explorer.query import PREVIEW_CHARS, ExplorerResults, ExplorerRow, _paged
from curation.models import Signal


def _ids_page(positions: np.ndarray, after: int | None, limit: int, desc: bool) -> np.ndarray:
    """The first ``limit`` of ascending ``positions`` in id order, past ``after``."""
    if desc:
        end = len(positions) if after is None else int(np.searchsorted(positions, after, "left"))
        return positions[max(0, end - limit) : end][::-1]
    start = 0 if after is None else int(np.searchsorted(positions, after, "right"))
    return positions[start : start + limit]


def _equal(values: np.ndarray, value: Any, has_nan: bool) -> np.ndarray:
    if isinstance(value, float) and np.isnan(value):
        return np.isnan(values) if has_nan else np.zeros(len(values), dtype=bool)
    return values == value


def _above(values: np.ndarray, value: Any, has_nan: bool) -> np.ndarray:
    """``values > value`` in PostgreSQL's order (NaN above every number)."""
    if isinstance(value, float) and np.isnan(value):
        return np.zeros(len(values), dtype=bool)
    found = values > value
    return found | np.isnan(values) if has_nan else found


def _below(values: np.ndarray, value: Any, has_nan: bool) -> np.ndarray:
    if isinstance(value, float) and np.isnan(value):
        return ~np.isnan(values) if has_nan else np.ones(len(values), dtype=bool)
    return values < value  # NaN is not below anything: False, as numpy says


def _first(values: np.ndarray, positions: np.ndarray, limit: int, desc: bool) -> np.ndarray:
    """The first ``limit`` positions in the order (value, position), ascending or both
    descending: a partition finds the limit-th value, and only the values up to it sort."""
    n = len(values)
    floats = values.dtype.kind == "f"
    if n > limit:
        k = n - limit if desc else limit - 1
        kth = np.partition(values, k)[k]
        if floats and np.isnan(kth):  # numpy places NaN last, as PostgreSQL orders it
            keep = np.isnan(values) if desc else np.ones(n, dtype=bool)
        elif desc:
            keep = (values >= kth) | np.isnan(values) if floats else values >= kth
        else:
            keep = values <= kth
        values, positions = values[keep], positions[keep]
    order = np.lexsort((positions, values))
    if desc:
        order = order[::-1]
    return positions[order[:limit]]


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


def _signal_page(
    matched: Matches, sort: Sort, after: Cursor | None, limit: int
) -> list[tuple[int, Any]] | None:
    """(position, sort value) of the page's rows in a signal's order; None when the
    cursor's value has no place in the column."""
    assert sort.signal is not None
    column = matched.columns[sort.signal.column]
    desc = sort.descending
    positions = np.flatnonzero(matched.mask)
    at = positions + (matched.first_id - column.first_id)
    inside = (at >= 0) & (at < len(column.values))
    valued = np.zeros(len(positions), dtype=bool)
    valued[inside] = column.valid[at[inside]]
    nulls = positions[~valued]
    positions, at = positions[valued], at[valued]
    values = column.values[at]
    if after is not None:
        past = after.id - matched.first_id
        if after.value is None:  # past every value: the NULLs after its id
            positions, values = positions[:0], values[:0]
            nulls = nulls[nulls < past] if desc else nulls[nulls > past]
        else:
            value = _cursor_value(column, after.value)
            if value is None:
                return None
            beyond = (_below if desc else _above)(values, value, column.has_nan)
            tied = _equal(values, value, column.has_nan)
            beyond |= tied & ((positions < past) if desc else (positions > past))
            positions, values = positions[beyond], values[beyond]
    first = _first(values, positions, limit, desc)
    chosen = values[np.searchsorted(positions, first)]  # positions ascend
    page = [(int(p), _sort_value(column, v)) for p, v in zip(first, chosen, strict=True)]
    if len(page) < limit:
        rest = nulls[::-1] if desc else nulls
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
    that are not kept), or None when they cannot answer (``columns.columns_matches``)."""
    sort = query.sort
    extra = () if sort.signal is None else (sort.signal,)
    matched = columns_matches(query=query, read=read, extra=extra)
    if matched is None:
        return None
    limit = size + 1
    if sort.signal is None:
        past = None if after is None else after.id - matched.first_id
        chosen = _ids_page(np.flatnonzero(matched.mask), past, limit, sort.descending)
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
