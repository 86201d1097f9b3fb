"""The explorer's first-response count on a big dataset: a block sample, not the planner.

The exact count of a signal filter scans the dataset's whole signal partition
(~110-160 ms at 1M documents), so on a big dataset the page shows an estimate
first and fetches the exact count in a second request. The planner's row
estimate is free but can be off by orders of magnitude for correlated or narrow
ranges. Counting the matches in a fixed-size ``TABLESAMPLE SYSTEM`` sample of the
partition costs the same at 1M documents as at 10k (about ``SAMPLE_ROWS`` rows
read) and is unbiased: matches in the sample / rows in the sample x rows in the
partition. ``REPEATABLE`` fixes the sample, so the same filter shows the same
estimate on every request.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.cache import cache
from django.db import connection, transaction
from psycopg import sql

from curation.explorer.filters import ExplorerQuery
from curation.services.signals import partition_name, partition_row_estimate

# Rows a sample reads; the relative error of the estimate is about
# sqrt((1 - f) / (SAMPLE_ROWS * f)) for a filter that keeps a fraction f.
SAMPLE_ROWS = 20_000
SAMPLE_SEED = 7
# A sample with fewer matches than this is not trusted (relative error above ~20 %): such a
# selective filter is counted exactly instead, which its signal indexes make cheap.
EXACT_BELOW_MATCHES = 20


@dataclass(frozen=True)
class SampledCount:
    """``estimate`` of the matching documents from ``matched`` of ``sampled`` rows read."""

    estimate: int
    matched: int
    sampled: int
    exact: bool


def sampled_count_sql(query: ExplorerQuery, *, percent: float) -> tuple[sql.Composed, list[Any]]:
    """(matches, rows) in a ``percent`` block sample of the partition; signal queries only."""
    from curation.explorer.sources import _and, _from

    if query.reads_documents or not query.reads_signals:
        raise ValueError("a sampled count is for queries over signals alone")
    src = _from(query, for_sort=False)
    statement = sql.SQL(
        "SELECT count(*) FILTER (WHERE {where}), count(*) "
        "FROM {partition} s TABLESAMPLE SYSTEM ({percent}) REPEATABLE ({seed})"
    ).format(
        where=_and(src.where),
        partition=sql.Identifier(partition_name(query.dataset_id)),
        percent=sql.Literal(float(percent)),
        seed=sql.Literal(SAMPLE_SEED),
    )
    return statement, src.params


# How long a sample's (matches, rows) are kept: the htmx page's first response samples,
# and its exact count, a moment later, asks the same sample whether to scan
# (``count_settings``). The key holds the partition's write counters.
SAMPLE_CACHE_SECONDS = 120


def partition_version(cursor: Any, dataset_id: int) -> str | None:
    """The signal partition's oid and write counters (``pg_stat_user_tables``), which move
    within about a second of a commit that changes it; None before it has any."""
    cursor.execute(
        "SELECT relid, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = %s",
        [partition_name(dataset_id)],
    )
    row = cursor.fetchone()
    return None if row is None else ".".join(map(str, row))


def _sample(query: ExplorerQuery, *, percent: float) -> tuple[int, int]:
    """(matches, rows) of ``sampled_count_sql``, cached while the partition is unchanged."""
    statement, params = sampled_count_sql(query, percent=percent)
    with transaction.atomic(), connection.cursor() as cursor:
        text = statement.as_string(cursor.connection)
        version = partition_version(cursor, query.dataset_id)
        key = None
        if version is not None:
            digest = hashlib.sha256(orjson.dumps([text, params, version], default=str))
            key = f"explorer-sample:{digest.hexdigest()}"
            kept = cache.get(key)
            if kept is not None:
                return int(kept[0]), int(kept[1])
        cursor.execute(text, params)
        matched, sampled = cursor.fetchone()
    counted = (int(matched), int(sampled))
    if key is not None:
        cache.set(key, counted, SAMPLE_CACHE_SECONDS)
    return counted


def sampled_count(*, query: ExplorerQuery, rows: int | None = None) -> SampledCount | None:
    """Estimate the matches of a signal query from a block sample of about ``rows`` rows
    (default ``SAMPLE_ROWS``).

    Returns None when the query does not qualify (it reads documents, or has no signal
    predicate) or the partition was never analyzed; an exact count when the partition
    holds no more than twice ``rows`` (the sample would not save anything) or the sample
    holds fewer than ``EXACT_BELOW_MATCHES`` matches.
    """
    if query.reads_documents or not query.reads_signals:
        return None
    rows = SAMPLE_ROWS if rows is None else rows
    total = partition_row_estimate(query.dataset_id)
    if total < 0:
        return None
    if total <= 2 * rows:
        from curation.explorer.query import explorer_count

        n = explorer_count(query=query)
        return SampledCount(estimate=n, matched=n, sampled=int(total), exact=True)
    matched, sampled = _sample(query, percent=min(100.0, 100.0 * rows / total))
    if not sampled:
        return None
    if matched < EXACT_BELOW_MATCHES:
        # Few matches: the relative error would be large, and a selective filter is what
        # the signal indexes count cheaply (a bitmap of its matches: no other setting).
        from curation.explorer.query import explorer_count

        n = explorer_count(query=query, settings=())
        return SampledCount(estimate=n, matched=int(matched), sampled=int(sampled), exact=True)
    estimate = round(matched / sampled * total)
    return SampledCount(
        estimate=int(estimate), matched=int(matched), sampled=int(sampled), exact=False
    )


def sampled_share(query: ExplorerQuery, *, total: float) -> float | None:
    """The share of a partition of ``total`` rows that matches ``query``'s signal predicates
    alone, in a block sample of about ``SAMPLE_ROWS`` rows (text and meta left out).

    Never counts exactly (unlike ``sampled_count``), so an exact count may ask for it.
    """
    signals = dataclasses.replace(query, text="", meta=None, text_hits=None)
    if not signals.reads_signals or total <= 0:
        return None
    matched, sampled = _sample(signals, percent=min(100.0, 100.0 * SAMPLE_ROWS / total))
    return matched / sampled if sampled else None


# From this share of a big dataset's signal rows matching the signal predicates, an exact
# count scans the partition instead of a bitmap of a signal's index. PostgreSQL chose the
# (parallel) bitmap up to ~25 %, and a cached word's bit test made it worse: at 1M, counts
# of 5-27 % matches took 170-320 ms so against 160-205 ms scanned; below 2 % the bitmap
# wins (10-60 against 110-190 ms; bench/explorer_bench.py and the README).
SEQ_SCAN_MIN_SHARE = 0.04


def count_settings(query: ExplorerQuery) -> tuple[str, ...]:
    """``enable_bitmapscan = off`` for the exact count of a query over signal rows (with a
    text's bits or none) on a big dataset whose signal predicates match at least
    ``SEQ_SCAN_MIN_SHARE`` of them, by a block sample (a few ms); else no setting."""
    from curation.explorer.text_plan import PLAN_MIN_DOCUMENTS
    from curation.services.signals import partition_row_estimate

    if query.reads_documents or not query.reads_signals:
        return ()
    total = partition_row_estimate(query.dataset_id)
    if total < PLAN_MIN_DOCUMENTS:
        return ()
    share = sampled_share(query, total=total)
    if share is None or share < SEQ_SCAN_MIN_SHARE:
        return ()
    return ("enable_bitmapscan = off",)
