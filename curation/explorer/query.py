"""Explorer queries: filter, sort, page and count a dataset's documents.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from psycopg import sql

from curation.explorer.filters import (
    Cursor,
    DedupStatus,
    ExplorerQuery,
    HitBits,
    Range,
    Sort,
)
from curation.models import Signal

SIGNAL_TABLE = "curation_signal_row"
DOCUMENT_TABLE = "curation_document"
PAGE_SIZE = 25
PREVIEW_CHARS = 300
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


def _keyset(
    sort: Sort, value: sql.Composable, id_column: sql.Composable, after: Cursor
) -> tuple[sql.Composable, list[Any]]:
    """Rows strictly after ``after`` in the order (value NULLS LAST, id), both ways."""
    op = sql.SQL("<" if sort.descending else ">")
    if sort.signal is None:
        return sql.SQL("{} {} %s").format(id_column, op), [after.id]
    if after.value is None:
        return sql.SQL("({} IS NULL AND {} {} %s)").format(value, id_column, op), [after.id]
    return (
        sql.SQL("(({}, {}) {} (%s, %s) OR {} IS NULL)").format(value, id_column, op, value),
        [after.value, after.id],
    )


def _order(sort: Sort, value: sql.Composable, id_column: sql.Composable) -> sql.Composable:
    direction = sql.SQL("DESC" if sort.descending else "ASC")
    if sort.signal is None:
        return sql.SQL("{} {}").format(id_column, direction)
    return sql.SQL("{} {} NULLS LAST, {} {}").format(value, direction, id_column, direction)


def _walk_order(sort: Sort, value: sql.Composable, id_column: sql.Composable) -> sql.Composable:
    """The sort's order with NULLs placed where a walk of the signal's index yields them.

    The index is on ``(value DESC NULLS LAST, id DESC)`` (``services/signal_indexes.py``):
    forward it yields the descending order, backward ``value ASC NULLS FIRST, id ASC``
    where the ascending order wants NULLS LAST, so the planner would sort every match.
    Rows whose values are all NULL, or none, read the same with NULLs first or last.
    """
    if sort.descending:
        return sql.SQL("{} DESC NULLS LAST, {} DESC").format(value, id_column)
    return sql.SQL("{} ASC NULLS FIRST, {} ASC").format(value, id_column)


def _pick(
    src: _From,
    value: sql.Composable,
    where: list[sql.Composable],
    order: sql.Composable,
    limit: int,
) -> sql.Composable:
    """``SELECT id, value AS sort_value`` of ``src``'s relation: ``where``, ``order``, ``limit``."""
    return sql.SQL(
        "SELECT {id} AS id, {value} AS sort_value FROM {relation}{where} "
        "ORDER BY {order} LIMIT {limit}"
    ).format(
        id=src.id_column,
        value=value,
        relation=src.relation,
        where=sql.SQL(" WHERE {}").format(_and(where)) if where else sql.SQL(""),
        order=order,
        limit=sql.Literal(int(limit)),
    )


def _page_ctes(
    query: ExplorerQuery, src: _From, after: Cursor | None, limit: int
) -> tuple[list[sql.Composable], list[Any]]:
    """The CTEs that end in ``page`` (ids and sort values of one page) and their params.

    A signal sort reads two parts, each in the order of ``_walk_order``: ``valued``,
    the rows with a value after the cursor, then ``unvalued``, the NULLs, read only
    when ``valued`` does not fill the page (a one-time gate). A cursor on a NULL value
    is past every value: only ``unvalued`` is read, after its id.
    """
    sort = query.sort
    params: list[Any] = []
    if sort.signal is None:
        where = list(src.where)
        params += src.where_params
        if after is not None:
            clause, values = _keyset(sort, sql.SQL("NULL"), src.id_column, after)
            where.append(clause)
            params += values
        order = _order(sort, sql.SQL("NULL"), src.id_column)
        page = _pick(src, sql.SQL("NULL"), where, order, limit)
        return [sql.SQL("page AS MATERIALIZED ({})").format(page)], params
    value = _s(sort.signal.column)
    op = sql.SQL("<" if sort.descending else ">")
    order = _walk_order(sort, value, src.id_column)
    ctes: list[sql.Composable] = []
    names: list[str] = []
    unvalued = [*src.where, sql.SQL("{} IS NULL").format(value)]
    unvalued_params = list(src.where_params)
    if after is not None and after.value is None:
        unvalued.append(sql.SQL("{} {} %s").format(src.id_column, op))
        unvalued_params.append(after.id)
    else:
        valued = [*src.where, sql.SQL("{} IS NOT NULL").format(value)]
        params += src.where_params
        if after is not None:
            valued.append(sql.SQL("({}, {}) {} (%s, %s)").format(value, src.id_column, op))
            params += [after.value, after.id]
        ctes.append(
            sql.SQL("valued AS MATERIALIZED ({})").format(_pick(src, value, valued, order, limit))
        )
        names.append("valued")
        unvalued.append(
            sql.SQL("(SELECT count(*) FROM valued) < {}").format(sql.Literal(int(limit)))
        )
    ctes.append(
        sql.SQL("unvalued AS MATERIALIZED ({})").format(_pick(src, value, unvalued, order, limit))
    )
    names.append("unvalued")
    params += unvalued_params
    parts = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT id, sort_value FROM {}").format(sql.Identifier(name)) for name in names
    )
    ctes.append(
        sql.SQL("page AS MATERIALIZED ({} ORDER BY {} LIMIT {})").format(
            parts,
            _order(sort, sql.SQL("sort_value"), sql.SQL("id")),
            sql.Literal(int(limit)),
        )
    )
    return ctes, params


def page_sql(
    query: ExplorerQuery, *, after: Cursor | None = None, limit: int = PAGE_SIZE
) -> tuple[sql.Composed, list[Any]]:
    """One keyset page: ``(id, sort_value, external_id, preview, chars, words, lines)`` rows.

    At most ``limit`` rows after ``after`` in the query's order. The ids and sort
    values are picked first (from the signal partition when a predicate allows), in
    an order a signal's index can yield either way (``_page_ctes``), then only those
    documents are read for their previews.
    """
    src = _from(query, for_sort=True)
    sort = query.sort
    ctes, params = _page_ctes(query, src, after, limit)
    statement = sql.SQL(
        "{with_}"
        "SELECT page.id, page.sort_value, d.external_id, left(d.text, {preview}), "
        "d.char_count, d.word_count, d.line_count "
        "FROM page JOIN {documents} d ON d.id = page.id AND d.dataset_id = {dataset} "
        "ORDER BY {outer_order}"
    ).format(
        with_=_with(src.hits, *ctes),
        preview=sql.Literal(PREVIEW_CHARS),
        documents=sql.Identifier(DOCUMENT_TABLE),
        dataset=sql.Literal(int(query.dataset_id)),
        outer_order=_order(sort, sql.SQL("page.sort_value"), sql.SQL("page.id")),
    )
    return statement, src.hits_params + params


def results_sql(
    query: ExplorerQuery,
    *,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
    window: tuple[int, int] | None = None,
    signals_first: bool = False,
) -> tuple[sql.Composed, list[Any]]:
    """The page and the count in one statement, for queries that read documents.

    Their cost is visiting every text or meta hit (GIN has no index-only scans),
    so the matches are found once, kept, then counted and paged. Rows are
    ``(count, hits, id, sort_value, external_id, preview, chars, words, lines)``,
    one row of NULLs but the counts when the page is empty. ``hits`` counts the
    text and meta hits before the signal predicates, with a ``window`` only (else
    NULL; NULL too for hits given as bits, which count their own); ``window`` and
    ``signals_first`` narrow the hits as ``_from`` says.
    """
    src = _from(query, for_sort=True, window=window, signals_first=signals_first)
    sort = query.sort
    value = _s(sort.signal.column) if sort.signal is not None else sql.SQL("NULL")
    matched = sql.SQL(
        "matched AS MATERIALIZED (SELECT {id} AS id, {value} AS sort_value FROM {relation}{where})"
    ).format(
        id=src.id_column,
        value=value,
        relation=src.relation,
        where=sql.SQL(" WHERE {}").format(_and(src.where)) if src.where else sql.SQL(""),
    )
    params = list(src.params)
    keyset: sql.Composable = sql.SQL("")
    if after is not None:
        clause, values = _keyset(sort, sql.SQL("sort_value"), sql.SQL("id"), after)
        keyset = sql.SQL(" WHERE {}").format(clause)
        params += values
    order = _order(sort, sql.SQL("sort_value"), sql.SQL("id"))
    statement = sql.SQL(
        "{with_}, page AS MATERIALIZED (SELECT id, sort_value FROM matched{keyset} "
        "ORDER BY {order} LIMIT {limit}) "
        "SELECT c.n, {hits}, p.* FROM (SELECT count(*) AS n FROM matched) c LEFT JOIN ("
        "SELECT page.id, page.sort_value, d.external_id, left(d.text, {preview}), "
        "d.char_count, d.word_count, d.line_count "
        "FROM page JOIN {documents} d ON d.id = page.id AND d.dataset_id = {dataset}"
        ") p ON true ORDER BY {outer_order}"
    ).format(
        with_=_with(src.hits, matched),
        hits=sql.SQL(
            "(SELECT count(*) FROM hits)"
            if window is not None and src.hits is not None
            else "NULL::bigint"
        ),
        keyset=keyset,
        order=order,
        limit=sql.Literal(int(limit)),
        preview=sql.Literal(PREVIEW_CHARS),
        documents=sql.Identifier(DOCUMENT_TABLE),
        dataset=sql.Literal(int(query.dataset_id)),
        outer_order=_order(sort, sql.SQL("p.sort_value"), sql.SQL("p.id")),
    )
    return statement, params


@dataclass(frozen=True)
class ExplorerRow:
    id: int
    sort_value: Any
    external_id: str
    preview: str
    char_count: int
    word_count: int
    line_count: int


@dataclass(frozen=True)
class ExplorerPage:
    rows: list[ExplorerRow]
    next_cursor: Cursor | None


def _execute(
    statement: sql.Composed,
    params: list[Any],
    *,
    query: ExplorerQuery,
    settings: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Run ``statement`` in a transaction of its own, after ``SET LOCAL`` of each setting."""
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compiles a plan whose estimated cost passes jit_above_cost (100k): the
        # hits CTE's row guesses push text queries there, and a page that ran in 60 ms
        # spent 370 ms compiling (bench/explorer_bench.py). Explorer queries are too
        # short to win it back.
        cursor.execute("SET LOCAL jit = off")
        if query.reads_documents:
            # A lossy bitmap (over work_mem) rechecks every row of its pages, which
            # means computing to_tsvector again: 2 s became 60 s for a common word at 1M.
            cursor.execute("SET LOCAL work_mem = '64MB'")
        for setting in settings:
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(statement.as_string(cursor.connection), params)
        return list(cursor.fetchall())


def _paged(rows: list[ExplorerRow], size: int) -> ExplorerPage:
    if len(rows) <= size:
        return ExplorerPage(rows=rows, next_cursor=None)
    last = rows[size - 1]
    return ExplorerPage(rows=rows[:size], next_cursor=Cursor(id=last.id, value=last.sort_value))


def explorer_page(
    *, query: ExplorerQuery, after: Cursor | None = None, size: int = PAGE_SIZE
) -> ExplorerPage:
    """The ``size`` documents after ``after`` and the cursor of the next page (None: last page).

    Keyset pagination on (sort value, id): every matching document appears on
    exactly one page, ties and NULLs included, whatever the depth.
    """
    if query.text and query.text_hits is None:
        return explorer_results(query=query, after=after, exact_count=False, size=size).page
    statement, params = page_sql(query, after=after, limit=size + 1)
    return _paged([ExplorerRow(*row) for row in _execute(statement, params, query=query)], size)


def explorer_count(*, query: ExplorerQuery) -> int:
    """How many documents of the dataset match ``query`` (exact).

    A text query with signal predicates is read the cheaper way of ``text_plan.py``.
    """
    if query.text and query.text_hits is None:
        from curation.explorer.text_plan import text_count

        return text_count(query=query)[0]
    statement, params = count_sql(query)
    return int(_execute(statement, params, query=query)[0][0])


def explorer_count_estimate(*, query: ExplorerQuery) -> int:
    """An estimate of ``explorer_count`` that costs the same at any size.

    Signal filters count a fixed-size block sample of the partition (``estimate.py``);
    other queries take the planner's estimate (a millisecond; can be far off).
    """
    from curation.explorer.estimate import sampled_count

    sampled = sampled_count(query=query)
    if sampled is not None:
        return sampled.estimate
    statement, params = estimate_sql(query)
    plan = _execute(statement, params, query=query)[0][0]
    if isinstance(plan, str):  # Django hands json to raw cursors as text
        plan = orjson.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# Up to this many documents the page counts exactly in the same request (a scan of
# the dataset's signal partition: ~3 ms at 10k, ~260 ms at 1M); above it an htmx
# page shows the estimate and fetches the exact count after (bench/explorer_bench.py).
COUNT_INLINE_MAX = 100_000


@dataclass(frozen=True)
class ExplorerResults:
    """A page and its count, or the count's ``estimate``; ``read``: how a text query's
    hits were read (``text_plan.READS``, or "bits": ``text_hits.py``), "" for other
    queries."""

    page: ExplorerPage
    count: int | None
    estimate: int | None
    read: str = ""


def explorer_results(
    *, query: ExplorerQuery, after: Cursor | None, exact_count: bool, size: int = PAGE_SIZE
) -> ExplorerResults:
    """A page and the exact count, or the estimate when ``exact_count`` is False.

    A query that reads documents (text, meta) finds its hits once for the page and
    the count (``results_sql``); on a big dataset a text query's hits are read the
    cheapest way of ``text_plan.py``, and without ``exact_count`` a page sorted by id
    may come from a window of ids with an estimated count.
    """
    if query.reads_documents:
        from curation.explorer.text_plan import text_results

        text = text_results(query=query, after=after, exact_count=exact_count, limit=size + 1)
        found = [ExplorerRow(*row[2:]) for row in text.rows if row[2] is not None]
        return ExplorerResults(
            page=_paged(found, size), count=text.count, estimate=text.estimate, read=text.read
        )
    page = explorer_page(query=query, after=after, size=size)
    if exact_count:
        return ExplorerResults(page=page, count=explorer_count(query=query), estimate=None)
    return ExplorerResults(page=page, count=None, estimate=explorer_count_estimate(query=query))


def explorer_signals() -> list[Signal]:
    """Every defined signal, by name (a dataset without values shows them empty)."""
    return list(Signal.objects.order_by("name"))
