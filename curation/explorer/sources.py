"""Where explorer queries read their rows: tables, predicates and the count statements.

The builders are pure: a parsed :class:`ExplorerQuery` in, a
``psycopg.sql.Composed`` plus its parameter list out. Columns and tables are
``sql.Identifier`` values taken from :class:`~curation.models.Signal` rows, and
every value a user typed is a ``%s`` parameter, so nothing from a request is
ever formatted into SQL text.

Where the rows come from: every signal predicate needs a non-NULL value, so a
query with one reads only the dataset's partition of ``curation_signal_row``;
``curation_document`` is read for text search and meta (first, in a CTE of
hits) and for the page's 25 previews. Without any predicate it reads
``curation_document`` (LEFT JOIN to the signal row for a signal sort).

Full-text search matches ``to_tsvector('simple', left(text, SEARCH_CHARS))``:
the expression of the per-dataset GIN index that ``services/search.py`` builds
after each import, so the planner uses it when it exists and computes the
vectors while scanning when it does not (bench/explorer_bench.py).

Pages (keyset order, previews) and the selectors that run these statements are
in ``query.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from curation.explorer.filters import DedupStatus, ExplorerQuery, HitBits, Range
from curation.models import Signal

SIGNAL_TABLE = "curation_signal_row"
DOCUMENT_TABLE = "curation_document"
# Text search reads the first SEARCH_CHARS characters: it bounds the index and
# keeps to_tsvector under its 1 MB limit on megabyte-long documents.
SEARCH_CHARS = 20_000
TS_CONFIG = "simple"


def _s(column: str) -> sql.Composable:
    return sql.SQL("s.{}").format(sql.Identifier(column))


def _int_bound(value: float, rounding: Callable[[float], int]) -> float | int:
    return rounding(value) if math.isfinite(value) else value


def _range_sql(pred: Range) -> tuple[list[sql.Composable], list[Any]]:
    """``lo <= column <= hi``. An integer signal's bounds are rounded inwards to integers
    (the same documents): a fractional bound is a numeric literal, and PostgreSQL then
    casts the bigint column to numeric, which no index on it serves (a seq scan of the
    whole partition at 1M, ~230 ms, for a range its index reads in milliseconds)."""
    column = _s(pred.signal.column)
    lo, hi = pred.lo, pred.hi
    if pred.signal.dtype == Signal.Dtype.INT:
        lo = None if lo is None else _int_bound(lo, math.ceil)
        hi = None if hi is None else _int_bound(hi, math.floor)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if lo is None and hi is None:
        parts.append(sql.SQL("{} IS NOT NULL").format(column))
    if lo is not None:
        parts.append(sql.SQL("{} >= %s").format(column))
        params.append(lo)
    if hi is not None:
        parts.append(sql.SQL("{} <= %s").format(column))
        params.append(hi)
    return parts, params


def _dedup_sql(pred: DedupStatus) -> sql.Composable:
    keep, size = _s(pred.keep.column), _s(pred.size.column)
    if pred.status == "removed":
        return sql.SQL("{} IS FALSE").format(keep)
    if pred.status == "kept":
        return sql.SQL("{} IS TRUE AND {} > 1").format(keep, size)
    if pred.status == "alone":
        return sql.SQL("{} IS TRUE AND ({} IS NULL OR {} <= 1)").format(keep, size, size)
    raise ValueError(f"unknown duplicate status {pred.status!r}")


def search_vector(alias: str = "d") -> sql.Composable:
    """``to_tsvector(..)`` of a document's searched start: the search index's expression."""
    return sql.SQL("to_tsvector({cfg}, left({alias}.text, {chars}))").format(
        cfg=sql.Literal(TS_CONFIG), alias=sql.Identifier(alias), chars=sql.Literal(SEARCH_CHARS)
    )


def search_predicate(alias: str = "d", *, tsquery: bool = False) -> sql.Composable:
    """``to_tsvector(..) @@ websearch_to_tsquery(.., %s)``: the indexed expression, one param
    (the query as typed; with ``tsquery``, a tsquery's text: ``%s::tsquery``)."""
    parsed = "%s::tsquery" if tsquery else "websearch_to_tsquery({cfg}, %s)"
    return sql.SQL("{vector} @@ " + parsed).format(
        vector=search_vector(alias), cfg=sql.Literal(TS_CONFIG)
    )


def _hit_bit_sql(hits: HitBits) -> sql.Composable:
    """The text predicate as a bit of the cached hits (``text_hits.py``): one param, the bits."""
    return sql.SQL(
        "s.document_id BETWEEN {first} AND {last} "
        "AND get_bit(%s::bytea, s.document_id - {first}) = 1"
    ).format(first=sql.Literal(int(hits.first_id)), last=sql.Literal(int(hits.last_id)))


@dataclass(frozen=True)
class _From:
    """Where a query's rows come from: an optional CTE of text/meta hits, a relation, predicates.

    ``hits_params`` fill the CTE's placeholders, ``where_params`` the predicates'.
    """

    hits: sql.Composable | None
    relation: sql.Composable
    where: list[sql.Composable]
    hits_params: list[Any]
    where_params: list[Any]
    id_column: sql.Composable

    @property
    def params(self) -> list[Any]:
        """The parameters of a statement that reads the CTE, then the predicates once."""
        return self.hits_params + self.where_params


def _from(
    query: ExplorerQuery,
    *,
    for_sort: bool,
    window: tuple[int, int] | None = None,
    signals_first: bool = False,
    flat: bool = False,
) -> _From:
    """The rows ``query`` reads, by the rules in the module docstring.

    Text and meta predicates are evaluated first, alone, in a MATERIALIZED CTE of
    document ids: the planner otherwise likes to walk documents in id order and
    compute ``to_tsvector`` on each until a page is full, which takes minutes on a
    rare word at 1M documents (its cost model thinks that function cheap).

    Two ways to narrow that CTE (``text_plan.py`` chooses): ``window`` keeps the
    documents with ``lo <= id < hi``, which PostgreSQL ANDs with the search index as
    two bitmaps, so only the window's hits are visited; ``signals_first`` keeps the
    documents that match the signal predicates, found first through their indexes,
    and computes the text predicate on those alone. ``flat`` (for counts of a common
    word with signal predicates) has no CTE: the documents joined to their signal
    rows, which PostgreSQL may scan in parallel and hash-join.
    """
    dataset = sql.Literal(int(query.dataset_id))
    where: list[sql.Composable] = []
    params: list[Any] = []
    for pred in query.ranges:
        parts, values = _range_sql(pred)
        where += parts
        params += values
    for eq in query.equals:
        where.append(sql.SQL("{} = %s").format(_s(eq.signal.column)))
        params.append(eq.value)
    for dd in query.dedup:
        where.append(_dedup_sql(dd))
    if query.text_hits is not None:
        if not query.reads_signals:
            # The bits are tested on signal rows: without a signal predicate, documents
            # with no signal row would be lost.
            raise ValueError("cached text hits need a signal predicate beside them")
        where.append(_hit_bit_sql(query.text_hits))
        params.append(query.text_hits.bits)

    signal_table = sql.Identifier(SIGNAL_TABLE)
    document_table = sql.Identifier(DOCUMENT_TABLE)
    join_signals = query.reads_signals or (for_sort and query.sort.signal is not None)
    if query.reads_documents:
        doc_where: list[sql.Composable] = [sql.SQL("d.dataset_id = {}").format(dataset)]
        doc_params: list[Any] = []
        if signals_first and where:
            doc_where.append(
                sql.SQL(
                    "d.id = ANY((SELECT array_agg(s.document_id) FROM {} s WHERE {})::bigint[])"
                ).format(signal_table, _and([sql.SQL("s.dataset_id = {}").format(dataset), *where]))
            )
            doc_params += params
        if window is not None:
            doc_where.append(
                sql.SQL("d.id >= {} AND d.id < {}").format(
                    sql.Literal(int(window[0])), sql.Literal(int(window[1]))
                )
            )
        if query.meta is not None:
            doc_where.append(sql.SQL("d.meta ->> %s = %s"))
            doc_params += [query.meta.key, query.meta.value]
        if query.text and query.text_hits is None:
            doc_where.append(search_predicate())
            doc_params.append(query.text)
        if flat and query.reads_signals:
            relation: sql.Composable = sql.SQL(
                "{} d JOIN {} s ON s.dataset_id = {} AND s.document_id = d.id"
            ).format(document_table, signal_table, dataset)
            return _From(
                None, relation, doc_where + where, [], doc_params + params, sql.SQL("d.id")
            )
        hits = sql.SQL("hits AS MATERIALIZED (SELECT d.id FROM {} d WHERE {})").format(
            document_table, _and(doc_where)
        )
        relation = sql.SQL("hits")
        if join_signals:
            relation = sql.SQL(
                "hits {} JOIN {} s ON s.dataset_id = {} AND s.document_id = hits.id"
            ).format(sql.SQL("" if query.reads_signals else "LEFT"), signal_table, dataset)
        return _From(hits, relation, where, doc_params, params, sql.SQL("hits.id"))
    if query.reads_signals:
        head = [sql.SQL("s.dataset_id = {}").format(dataset)]
        if window is not None:  # a text query's window, its hits tested as bits
            head.append(
                sql.SQL("s.document_id >= {} AND s.document_id < {}").format(
                    sql.Literal(int(window[0])), sql.Literal(int(window[1]))
                )
            )
        return _From(
            None,
            sql.SQL("{} s").format(signal_table),
            head + where,
            [],
            params,
            sql.SQL("s.document_id"),
        )
    relation = sql.SQL("{} d").format(document_table)
    if join_signals:
        relation = sql.SQL(
            "{} d LEFT JOIN {} s ON s.dataset_id = {} AND s.document_id = d.id"
        ).format(document_table, signal_table, dataset)
    return _From(
        None, relation, [sql.SQL("d.dataset_id = {}").format(dataset)], [], [], sql.SQL("d.id")
    )


def _with(*ctes: sql.Composable | None) -> sql.Composable:
    present = [c for c in ctes if c is not None]
    return sql.SQL("WITH {} ").format(sql.SQL(", ").join(present)) if present else sql.SQL("")


def _and(parts: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(parts)


def count_sql(
    query: ExplorerQuery, *, signals_first: bool = False, flat: bool = False
) -> tuple[sql.Composed, list[Any]]:
    """``SELECT count(*)`` of the documents that match ``query``; returns (statement, params).

    ``signals_first`` and ``flat``: as ``_from`` reads them.
    """
    src = _from(query, for_sort=False, signals_first=signals_first, flat=flat)
    where = sql.SQL(" WHERE {}").format(_and(src.where)) if src.where else sql.SQL("")
    statement = sql.SQL("{}SELECT count(*) FROM {}{}").format(_with(src.hits), src.relation, where)
    return statement, src.params


def estimate_sql(query: ExplorerQuery) -> tuple[sql.Composed, list[Any]]:
    """``EXPLAIN (FORMAT JSON)`` of the matching rows: the planner's guess at the count."""
    src = _from(query, for_sort=False)
    where = sql.SQL(" WHERE {}").format(_and(src.where)) if src.where else sql.SQL("")
    statement = sql.SQL("EXPLAIN (FORMAT JSON) {}SELECT 1 FROM {}{}").format(
        _with(src.hits), src.relation, where
    )
    return statement, src.params
