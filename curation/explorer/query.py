"""Explorer pages and counts: keyset pages in any sort, and the selectors that run them.

A page picks ids and sort values first (``_page_ctes``), in an order a signal's
index yields either way, then reads only those documents for their previews.
The statements are built from the rows and predicates of ``sources.py``; like
those, every value a user typed is a ``%s`` parameter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from psycopg import sql

from curation.explorer.filters import Cursor, ExplorerQuery, Sort
from curation.explorer.sources import (
    DOCUMENT_TABLE,
    _and,
    _From,
    _from,
    _s,
    _with,
    count_sql,
    estimate_sql,
)
from curation.models import Signal

PAGE_SIZE = 25
PREVIEW_CHARS = 300


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
    from curation.explorer.column_pages import columns_results

    kept = columns_results(query=query, after=after, size=size)
    if kept is not None:
        return kept.page
    return sql_page(query=query, after=after, size=size)


def sql_page(*, query: ExplorerQuery, after: Cursor | None, size: int) -> ExplorerPage:
    """``explorer_page`` read by PostgreSQL (``page_sql``), never from the columns."""
    statement, params = page_sql(query, after=after, limit=size + 1)
    return _paged([ExplorerRow(*row) for row in _execute(statement, params, query=query)], size)


def explorer_count(*, query: ExplorerQuery, settings: tuple[str, ...] | None = None) -> int:
    """How many documents of the dataset match ``query`` (exact).

    A big dataset's signal query is counted from its columns in memory
    (``columns.py``) when they are kept; a text query with signal predicates is read
    the cheaper way of ``text_plan.py``; any other query in PostgreSQL with
    ``settings``, by default as ``count_settings`` says, and then the columns it needs
    are read for the next ones, in the background.
    """
    if query.text and query.text_hits is None:
        from curation.explorer.text_plan import text_count

        return text_count(query=query)[0]
    from curation.explorer.columns import columns_count, columns_read_ahead

    counted = columns_count(query=query)
    if counted is not None:
        return counted
    statement, params = count_sql(query)
    if settings is None:
        from curation.explorer.estimate import count_settings

        settings = count_settings(query)
    counted = int(_execute(statement, params, query=query, settings=settings)[0][0])
    columns_read_ahead(query=query)
    return counted


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


def _with_kept_bits(query: ExplorerQuery) -> ExplorerQuery:
    """``query`` with its text's kept bits (``text_hits.py``) when it has signal predicates
    beside the text and the bits exist, so the columns in memory can answer it."""
    from curation.explorer.columns import any_kept
    from curation.explorer.text_hits import cached_hits, may_use_bits
    from curation.explorer.text_plan import dataset_ids

    if query.text_hits is not None or not query.reads_signals or not may_use_bits(query):
        return query
    if not any_kept(query.dataset_id):  # the bits would serve nothing: skip their lookup
        return query
    ids = dataset_ids(query.dataset_id)
    bits = cached_hits(query, ids) if ids is not None else None
    return query if bits is None else dataclasses.replace(query, text_hits=bits)


def explorer_results(
    *, query: ExplorerQuery, after: Cursor | None, exact_count: bool, size: int = PAGE_SIZE
) -> ExplorerResults:
    """A page and the exact count, or the estimate when ``exact_count`` is False.

    A query that reads documents (text, meta) finds its hits once for the page and
    the count (``results_sql``); on a big dataset a text query's hits are read the
    cheapest way of ``text_plan.py``, and without ``exact_count`` a page sorted by id
    may come from a window of ids with an estimated count. A query whose columns are
    kept in memory (``columns.py``) is answered from them, the count exact
    (``column_pages.py``).
    """
    from curation.explorer.column_pages import columns_results

    kept = columns_results(query=_with_kept_bits(query), after=after, size=size)
    if kept is not None:  # the columns in memory: the page and the exact count in a few ms
        return kept
    if query.reads_documents:
        from curation.explorer.text_plan import text_results

        text = text_results(query=query, after=after, exact_count=exact_count, limit=size + 1)
        found = [ExplorerRow(*row[2:]) for row in text.rows if row[2] is not None]
        return ExplorerResults(
            page=_paged(found, size), count=text.count, estimate=text.estimate, read=text.read
        )
    page = sql_page(query=query, after=after, size=size)  # the columns could not answer
    if exact_count:
        return ExplorerResults(page=page, count=explorer_count(query=query), estimate=None)
    from curation.explorer.columns import columns_count

    counted = columns_count(query=query, read=False)
    if counted is not None:  # the columns are in memory but the sort's: the count is exact
        return ExplorerResults(page=page, count=counted, estimate=None)
    return ExplorerResults(page=page, count=None, estimate=explorer_count_estimate(query=query))


def explorer_signals() -> list[Signal]:
    """Every defined signal, by name (a dataset without values shows them empty)."""
    return list(Signal.objects.order_by("name"))
