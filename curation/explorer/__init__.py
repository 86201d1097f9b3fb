"""The dataset explorer's selectors (reads only): filters, pages, counts, histograms.

``filters``: the parsed filter (plain values); ``sources``: the rows a filter reads
and its count SQL; ``query``: pages and the page, count and estimate selectors;
``histogram``: a signal's distribution and its SVG layout; ``search``: the state
of a dataset's full-text search index. A big dataset's signal values kept in memory
answer pages and exact counts in a few ms: ``columns`` (the matches, counts, reading
ahead), ``column_store`` (reading and keeping them), ``column_pages`` (pages).
"""

from __future__ import annotations

from curation.explorer.filters import (
    DEDUP_KINDS,
    DEDUP_STATUSES,
    NUMERIC,
    SORTABLE,
    Cursor,
    CursorError,
    DedupStatus,
    Equals,
    ExplorerQuery,
    MetaEquals,
    Range,
    SignalColumn,
    Sort,
)
from curation.explorer.histogram import (
    HISTOGRAM_BINS,
    QUANTILES,
    Histogram,
    HistogramChart,
    histogram_chart,
    histogram_range,
    signal_histogram,
)
from curation.explorer.query import (
    COUNT_INLINE_MAX,
    PAGE_SIZE,
    PREVIEW_CHARS,
    ExplorerPage,
    ExplorerResults,
    ExplorerRow,
    explorer_count,
    explorer_count_estimate,
    explorer_page,
    explorer_results,
    explorer_signals,
    page_sql,
    results_sql,
)
from curation.explorer.search import (
    SEARCH_SCAN_MAX_DOCUMENTS,
    SearchIndexState,
    search_index_name,
    search_index_state,
    search_problem,
)
from curation.explorer.sources import (
    DOCUMENT_TABLE,
    SEARCH_CHARS,
    SIGNAL_TABLE,
    TS_CONFIG,
    count_sql,
    estimate_sql,
    search_predicate,
)

__all__ = [
    "COUNT_INLINE_MAX",
    "DEDUP_KINDS",
    "DEDUP_STATUSES",
    "DOCUMENT_TABLE",
    "HISTOGRAM_BINS",
    "NUMERIC",
    "PAGE_SIZE",
    "PREVIEW_CHARS",
    "QUANTILES",
    "SEARCH_CHARS",
    "SEARCH_SCAN_MAX_DOCUMENTS",
    "SIGNAL_TABLE",
    "SORTABLE",
    "TS_CONFIG",
    "Cursor",
    "CursorError",
    "DedupStatus",
    "Equals",
    "ExplorerPage",
    "ExplorerQuery",
    "ExplorerResults",
    "ExplorerRow",
    "Histogram",
    "HistogramChart",
    "MetaEquals",
    "Range",
    "SearchIndexState",
    "SignalColumn",
    "Sort",
    "count_sql",
    "estimate_sql",
    "explorer_count",
    "explorer_count_estimate",
    "explorer_page",
    "explorer_results",
    "explorer_signals",
    "histogram_chart",
    "histogram_range",
    "page_sql",
    "results_sql",
    "search_index_name",
    "search_index_state",
    "search_predicate",
    "search_problem",
    "signal_histogram",
]
