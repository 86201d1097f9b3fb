"""How a text query over a big dataset is read: every hit, signals first, or a window of ids.

A text predicate costs in two very different ways (``bench/explorer_bench.py``, 1M
documents). Through the dataset's search index each hit costs a visit of its
document plus the lookup of its signal row, about ``C_HIT_US``: a word in 30 % of
the documents costs ~700 ms, whatever else the filter says. Computed on one
document read by id (``to_tsvector``), it costs about ``C_COMPUTE_US``. PostgreSQL's
planner sees neither: the index is partial, so it keeps no statistics of the words
(every word is 0.5 % to it), and it prices ``to_tsvector`` as a cheap function.

So the explorer chooses, from one probe: the query run on a window of about
``PROBE_DOCUMENTS`` documents at the start of the order (the search index and the id
index ANDed as bitmaps, so only the window's hits are visited) counts the window's
text hits and matches, which estimate the word's share and the filter's. Of

* ``all``: every hit of the search index (``results_sql`` as it is): hits x C_HIT;
* ``signals``: the documents matching the signal predicates first, through their
  indexes, the text computed on each: those documents x C_COMPUTE (the number from
  the block-sample estimate of ``estimate.py``);
* ``window``: for a page sorted by id whose count may be an estimate, a window of ids
  that should hold ``FILL_MARGIN`` pages of matches: the window's hits x C_HIT;

the cheapest runs. A window that does not fill its page after all is followed by the
cheaper of the other two, so a page is never wrong, only slower. The window's count
is an estimate (its matches scaled to the dataset), and the exact count follows in
its own request, as for signal filters (``explorer_count`` chooses between ``all``
and ``signals`` the same way). Datasets under ``PLAN_MIN_DOCUMENTS`` always read
``all``: every way costs a few milliseconds there.

An exact count that reads every hit of a common word keeps them as bits
(``text_hits.py``), as the search index task does for the dataset's most common
words; from then on the word's exact counts test a bit per signal row instead of
running any of the reads above, and its pages may too: ``bits``, the signal matches
first, each testing a bit (``C_BITS_US`` each), with an exact count. With bits, the
probe and the window test them on the window's signal rows as well: through the
index, even a window of 2,000 documents reads the word's whole list of hits (~75 ms
for a word in 30 % of 1M documents, where the window through bits takes a few).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from curation.explorer.filters import Cursor, ExplorerQuery, HitBits
from curation.models import Dataset

# Measured at 1M documents on a 2-core machine (bench/explorer_bench.py, README).
C_HIT_US = 2.3
C_COMPUTE_US = 90.0
# A signal match tested against the text's kept bits (``text_hits.py``): the ``bits`` read.
C_BITS_US = 1.0
PLAN_MIN_DOCUMENTS = 100_000
PROBE_DOCUMENTS = 2_000
# From this many estimated hits, the exact count of a text query with signal predicates
# joins every hit to its signal row by a (parallel) hash join instead of one index
# lookup a hit: a word in 30 % of 1M documents counted in ~430 ms instead of ~720 ms,
# where a word in 0.3 % took 76 ms instead of 13 (bench/explorer_bench.py).
HASH_JOIN_MIN_HITS = 50_000
# Below this many estimated hits, every hit looks its signal row up (a nested loop):
# at 1M, 1,000 hits took 18 ms so against 49 ms merge-joined with the signal rows of
# the ranges, and 10,000 hits 161 against 120 ms (bench/explorer_bench.py).
NESTED_LOOP_MAX_HITS = 5_000
# A window is sized for this many pages of expected matches, and never spans more
# than this share of the dataset (past it, reading every hit costs about the same).
FILL_MARGIN = 2.0
WINDOW_MAX_SHARE = 0.25

READS = ("all", "signals", "window")


@dataclass(frozen=True)
class TextRead:
    """The rows of ``results_sql`` and how they were read; ``count`` is None for a window
    (``estimate`` holds its scaled count) unless the window held every remaining document."""

    rows: list[tuple[Any, ...]]
    count: int | None
    estimate: int | None
    read: str


@dataclass(frozen=True)
class DatasetIds:
    """The dataset's documents and the id range they span."""

    documents: int
    first: int
    last: int

    @property
    def span(self) -> int:
        """The ids from the first to the last: one bit each in the text's kept bits."""
        return self.last - self.first + 1

    @property
    def density(self) -> float:
        return self.documents / max(1, self.span)


def dataset_ids(dataset_id: int) -> DatasetIds | None:
    documents = (
        Dataset.objects.filter(pk=dataset_id).values_list("document_count", flat=True).first()
    )
    if not documents or documents < PLAN_MIN_DOCUMENTS:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id) FROM curation_document WHERE dataset_id = %s", [dataset_id]
        )
        first, last = cursor.fetchone()
    if first is None:
        return None
    return DatasetIds(documents=int(documents), first=int(first), last=int(last))


def _span(query: ExplorerQuery, after: Cursor | None, ids: DatasetIds) -> tuple[int, int]:
    """The ids ``[lo, hi)`` still to page through: all of them unless sorted by id past a cursor."""
    lo, hi = ids.first, ids.last + 1
    if after is not None and query.sort.signal is None:
        if query.sort.descending:
            hi = min(hi, after.id)
        else:
            lo = max(lo, after.id + 1)
    return lo, max(lo, hi)


def _window(query: ExplorerQuery, span: tuple[int, int], width: int) -> tuple[int, int]:
    """The first ``width`` ids of ``span`` in the query's order."""
    lo, hi = span
    width = max(1, int(width))
    if query.sort.signal is None and query.sort.descending:
        return max(lo, hi - width), hi
    return lo, min(hi, lo + width)


def _run(
    query: ExplorerQuery,
    *,
    after: Cursor | None,
    limit: int,
    window: tuple[int, int] | None = None,
    signals_first: bool = False,
    settings: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    from curation.explorer.query import _execute, results_sql

    statement, params = results_sql(
        query, after=after, limit=limit, window=window, signals_first=signals_first
    )
    return _execute(statement, params, query=query, settings=settings)


def _join_settings(read: str, hits: float, signal_matches: int | None) -> tuple[str, ...]:
    """Settings for reading every hit (``all``) of a text with about ``hits`` hits.

    PostgreSQL guesses 0.5 % of the documents for any word (the index is partial: no
    statistics of its words), so for a rare word it may sort the signal rows matching
    the ranges and merge-join them with the hits: ~50 ms at 1M for a word with 1,000
    hits, where looking up each hit's signal row takes ~18 (bench/explorer_bench.py).
    Each hit looks its signal row up when the hits are few, and fewer than the
    signal matches (with fewer of those, joining them costs less).
    """
    if read != "all" or signal_matches is None:
        return ()
    if hits < NESTED_LOOP_MAX_HITS and hits < signal_matches:
        return ("enable_hashjoin = off", "enable_mergejoin = off")
    return ()


def _signal_matches(query: ExplorerQuery) -> int | None:
    """The block-sample estimate of the documents matching the signal predicates alone."""
    if not query.reads_signals:
        return None
    from curation.explorer.estimate import sampled_count

    sampled = sampled_count(query=dataclasses.replace(query, text="", meta=None))
    return None if sampled is None else sampled.estimate


@dataclass(frozen=True)
class _Probe:
    rows: list[tuple[Any, ...]]
    window: tuple[int, int]
    documents: float
    hits: int
    matches: int
    complete: bool  # the window holds every document still to page through: the page is right
    whole: bool  # the window holds the whole dataset: the count is exact too

    @property
    def hit_share(self) -> float:
        return self.hits / self.documents if self.documents else 0.0

    @property
    def match_share(self) -> float:
        return self.matches / self.documents if self.documents else 0.0

    def filled(self, limit: int) -> bool:
        return sum(1 for row in self.rows if row[2] is not None) >= limit


def _bits_in(bits: HitBits, window: tuple[int, int]) -> int:
    """How many of ``bits``' hits have ids in ``[lo, hi)``."""
    return int(np.count_nonzero(bits.flags(*window)))


def _probe(
    query: ExplorerQuery, after: Cursor | None, limit: int, ids: DatasetIds, documents: float
) -> _Probe:
    """The query on the window of about ``documents`` documents at the start of the order.

    With the text's kept bits (``query.text_hits``) the window's signal rows test them,
    and the bits count the window's hits: the search index is not read. Through the
    index, even a small window reads the word's whole list of hits (the window's ids
    are ANDed with it): ~75 ms for a word in 30 % of 1M documents.
    """
    span = _span(query, after, ids)
    window = _window(query, span, math.ceil(documents / ids.density))
    rows = _run(query, after=after, limit=limit, window=window)
    bits = query.text_hits
    return _Probe(
        rows=rows,
        window=window,
        documents=(window[1] - window[0]) * ids.density,
        hits=int(rows[0][1]) if bits is None else _bits_in(bits, window),
        matches=int(rows[0][0]),
        complete=window == span,
        whole=window == (ids.first, ids.last + 1),
    )


def _cheapest(costs: dict[str, float]) -> str:
    order = (*READS, "bits")
    return min(costs, key=lambda read: (costs[read], order.index(read)))


def _exact_costs(
    hits: float, signal_matches: int | None, bits: HitBits | None = None
) -> dict[str, float]:
    """The exact reads' costs of a text with about ``hits`` hits, beside signal predicates
    matching about ``signal_matches`` documents (None: no signal predicate); with the
    text's kept ``bits``, also ``bits``: the signal matches first, each testing a bit
    (a signal query's cost, the count exact)."""
    costs = {"all": hits * C_HIT_US}
    if signal_matches is not None:
        costs["signals"] = signal_matches * C_COMPUTE_US
        if bits is not None:
            costs["bits"] = signal_matches * C_BITS_US
    return costs


def _window_result(probe: _Probe, ids: DatasetIds) -> TextRead:
    if probe.whole:
        return TextRead(rows=probe.rows, count=probe.matches, estimate=None, read="window")
    estimate = round(probe.match_share * ids.documents)
    return TextRead(rows=probe.rows, count=None, estimate=estimate, read="window")


def text_results(
    *, query: ExplorerQuery, after: Cursor | None, exact_count: bool, limit: int
) -> TextRead:
    """``results_sql`` rows of ``query`` (``limit`` of them at most), read the cheapest way.

    With ``exact_count`` the count is exact; without it, a page sorted by id may come
    from a window, with an estimated count.
    """
    ids = dataset_ids(query.dataset_id) if query.text else None
    if ids is None:
        rows = _run(query, after=after, limit=limit)
        return TextRead(rows=rows, count=int(rows[0][0]), estimate=None, read="all")
    from curation.explorer.text_hits import cached_hits

    bits = cached_hits(query, ids) if query.reads_signals else None
    # With the bits, windows test them on signal rows instead of reading the index.
    windowed = query if bits is None else dataclasses.replace(query, text_hits=bits)
    probe = _probe(windowed, after, limit, ids, PROBE_DOCUMENTS)
    may_window = query.sort.signal is None and not exact_count
    if (probe.complete and (probe.whole or not exact_count)) or (
        may_window and probe.filled(limit)
    ):
        return _window_result(probe, ids)
    hits = probe.hit_share * ids.documents if bits is None else bits.hits
    signal_matches = _signal_matches(query)
    costs = _exact_costs(hits, signal_matches, bits)
    wanted = FILL_MARGIN * limit / probe.match_share if probe.match_share > 0 else math.inf
    if may_window and wanted <= WINDOW_MAX_SHARE * ids.documents:
        # Through the index the window's hits are visited; through bits, its signal rows.
        per_document = probe.hit_share * C_HIT_US if bits is None else C_BITS_US
        costs["window"] = wanted * per_document
    read = _cheapest(costs)
    if read == "window":
        grown = _probe(windowed, after, limit, ids, wanted)
        if grown.complete or grown.filled(limit):
            return _window_result(grown, ids)
        del costs["window"]
        read = _cheapest(costs)
    if read == "bits":
        query = windowed
    rows = _run(
        query,
        after=after,
        limit=limit,
        signals_first=read == "signals",
        settings=_join_settings(read, hits, signal_matches),
    )
    return TextRead(rows=rows, count=int(rows[0][0]), estimate=None, read=read)


def text_count(*, query: ExplorerQuery) -> tuple[int, str]:
    """The exact count of ``query`` and how it was read: ``all``, ``signals``, ``hash``
    (every hit, joined to the signal rows by a hash join), ``bits`` (the text's hits
    cached as bits: their number, or the signal rows each testing a bit) or ``built``
    (every hit read and cached as bits first: ``text_hits.py``)."""
    from curation.explorer import text_hits
    from curation.explorer.estimate import count_settings
    from curation.explorer.query import _execute
    from curation.explorer.sources import count_sql

    ids = dataset_ids(query.dataset_id) if query.text else None
    read, hits, signal_matches = "all", math.inf, None  # small: the planner's choice
    if ids is not None:
        bits = text_hits.cached_hits(query, ids)
        read = "bits"
        if bits is None:
            probe = _probe(query, None, 1, ids, PROBE_DOCUMENTS)
            if probe.whole:
                return probe.matches, "window"
            hits = probe.hit_share * ids.documents
            signal_matches = _signal_matches(query)
            read = _cheapest(_exact_costs(hits, signal_matches))
            if read == "all" and hits >= text_hits.BITS_MIN_HITS and text_hits.may_use_bits(query):
                bits = text_hits.text_hits_build(query=query, ids=ids)
                read = "all" if bits is None else "built"
            if read == "all" and hits >= HASH_JOIN_MIN_HITS and query.reads_signals:
                read = "hash"
        if bits is not None:
            if not query.reads_signals:  # the text alone: its hits are the count
                return bits.hits, read
            query = dataclasses.replace(query, text_hits=bits)
            from curation.explorer.columns import columns_count

            counted = columns_count(query=query)
            if counted is not None:  # the signal columns in memory, ANDed with the bits
                return counted, read
    statement, params = count_sql(query, signals_first=read == "signals", flat=read == "hash")
    if read == "hash":
        settings: tuple[str, ...] = ("enable_nestloop = off",)
    elif query.text_hits is not None:  # the signal rows, each testing a bit
        settings = count_settings(query)
    else:
        settings = _join_settings(read, hits, signal_matches)
    counted = int(_execute(statement, params, query=query, settings=settings)[0][0])
    if query.text_hits is not None:  # the word's next counts and pages read the columns
        from curation.explorer.columns import columns_read_ahead

        columns_read_ahead(query=query)
    return counted, read
