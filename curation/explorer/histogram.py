"""Signal histograms: a numeric signal's distribution over a dataset, laid out as inline SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from psycopg import sql

from curation.explorer.estimate import partition_version
from curation.explorer.filters import SignalColumn
from curation.explorer.sources import SIGNAL_TABLE
from curation.models import Dataset, Signal

HISTOGRAM_BINS = 40
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def _s(column: str) -> sql.Composable:
    return sql.SQL("s.{}").format(sql.Identifier(column))


@dataclass(frozen=True)
class Histogram:
    """One numeric signal's distribution over the whole dataset, and a filter's split of it.

    ``edges`` has ``len(counts) + 1`` entries; bin i holds ``edges[i] <= v < edges[i+1]``,
    the last bin also ``v == edges[-1]``. The bins span p1..p99 (min..max when those
    are equal); ``below``/``above`` count the values outside them. ``under``,
    ``within`` and ``over`` split the values by the filter's bounds ``lo``/``hi``.
    NaN counts as no value.
    """

    signal: SignalColumn
    documents: int
    count: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    quantiles: dict[float, float]
    edges: list[float]
    counts: list[int]
    below: int
    above: int
    lo: float | None
    hi: float | None
    under: int
    within: int
    over: int

    @property
    def nulls(self) -> int:
        return max(self.documents - self.count, 0)


def _present(signal: SignalColumn) -> sql.Composable:
    column = _s(signal.column)
    if signal.dtype == Signal.Dtype.FLOAT:
        return sql.SQL("{} IS NOT NULL AND {} <> 'NaN'::float8").format(column, column)
    return sql.SQL("{} IS NOT NULL").format(column)


def histogram_stats_sql(*, dataset_id: int, signal: SignalColumn) -> sql.Composed:
    """count, min, max, mean and the QUANTILES (``percentile_cont``) of the signal's values."""
    column = _s(signal.column)
    return sql.SQL(
        "SELECT count(*), min({c})::float8, max({c})::float8, avg({c})::float8, "
        "percentile_cont({q}::float8[]) WITHIN GROUP (ORDER BY {c}) "
        "FROM {table} s WHERE s.dataset_id = {dataset} AND {present}"
    ).format(
        c=column,
        q=sql.Literal(list(QUANTILES)),
        table=sql.Identifier(SIGNAL_TABLE),
        dataset=sql.Literal(int(dataset_id)),
        present=_present(signal),
    )


def histogram_bins_sql(
    *,
    dataset_id: int,
    signal: SignalColumn,
    start: float,
    stop: float,
    bins: int,
    lo: float | None,
    hi: float | None,
) -> tuple[sql.Composed, list[Any]]:
    """``(bucket, count, under lo, over hi)`` rows: bucket 0 below ``start``, ``bins + 1`` above
    ``stop``, 1..bins between (``stop`` itself in bin ``bins``)."""
    column = _s(signal.column)
    statement = sql.SQL(
        "SELECT CASE WHEN {c} = %s THEN %s ELSE width_bucket({c}::float8, %s, %s, %s) END AS b, "
        "count(*), count(*) FILTER (WHERE {c} < %s), count(*) FILTER (WHERE {c} > %s) "
        "FROM {table} s WHERE s.dataset_id = {dataset} AND {present} GROUP BY b ORDER BY b"
    ).format(
        c=column,
        table=sql.Identifier(SIGNAL_TABLE),
        dataset=sql.Literal(int(dataset_id)),
        present=_present(signal),
    )
    return statement, [stop, bins, start, stop, bins, lo, hi]


def histogram_range(
    *, dtype: str, minimum: float, maximum: float, p1: float, p99: float, bins: int
) -> tuple[float, float, int]:
    """The bins' ``(start, stop, count)``: p1..p99 so outliers don't squash the rest.

    min..max when p1 == p99; an integer signal with a narrow range gets one bin per
    integer; a constant signal one bin.
    """
    start, stop = (p1, p99) if p1 < p99 else (minimum, maximum)
    if dtype == Signal.Dtype.INT:
        start, stop = math.floor(start), math.ceil(stop)
        if stop - start < bins:
            return float(start), float(stop + 1), int(stop - start + 1)
    if start == stop:
        return start - 0.5, stop + 0.5, 1
    return start, stop, bins


STATS_CACHE_SECONDS = 600


def _signal_stats(cursor: Any, dataset_id: int, signal: SignalColumn) -> tuple[Any, ...]:
    """The summary row of ``histogram_stats_sql``, cached while the partition is unchanged.

    Its sort is most of a histogram's cost (0.85 s at 1M values, against 0.1-0.3 s
    for the bins). The key holds the partition's oid and write counters from
    ``pg_stat_user_tables``, which move within about a second of a commit that
    changes it (at most a minute for a backend that is never idle).
    """
    version = partition_version(cursor, dataset_id)
    key = f"explorer-stats:{int(dataset_id)}:{signal.column}:{version}"
    stats = cache.get(key) if version is not None else None
    if stats is None:
        # percentile_cont sorts every value: in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            histogram_stats_sql(dataset_id=dataset_id, signal=signal).as_string(cursor.connection)
        )
        stats = tuple(cursor.fetchone())
        if version is not None:
            cache.set(key, stats, STATS_CACHE_SECONDS)
    return stats


def signal_histogram(
    *,
    dataset: Dataset,
    signal: SignalColumn,
    lo: float | None = None,
    hi: float | None = None,
    bins: int = HISTOGRAM_BINS,
) -> Histogram:
    """``signal``'s histogram and summary over all of ``dataset``, split by the bounds lo/hi.

    1. The summary (count, min, max, mean, quantiles): cached, see ``_signal_stats``.
    2. One parallel scan of the signal partition: the bins and the counts under
       ``lo`` and over ``hi``.

    Documents without a value count as nulls, against ``dataset.document_count``.
    """
    if not signal.is_numeric:
        raise ValueError(f"signal {signal.name!r} is {signal.dtype}: histograms are for numbers")
    edges: list[float] = []
    counts: list[int] = []
    below = above = under = over = 0
    with transaction.atomic(), connection.cursor() as cursor:
        count, minimum, maximum, mean, quantiles = _signal_stats(cursor, dataset.pk, signal)
        if count:
            start, stop, n = histogram_range(
                dtype=signal.dtype,
                minimum=minimum,
                maximum=maximum,
                p1=quantiles[0],
                p99=quantiles[-1],
                bins=bins,
            )
            statement, params = histogram_bins_sql(
                dataset_id=dataset.pk, signal=signal, start=start, stop=stop, bins=n, lo=lo, hi=hi
            )
            cursor.execute(statement.as_string(cursor.connection), params)
            by_bucket: dict[int, int] = {}
            for bucket, in_bucket, bucket_under, bucket_over in cursor.fetchall():
                by_bucket[bucket] = in_bucket
                under += bucket_under
                over += bucket_over
            counts = [int(by_bucket.get(b, 0)) for b in range(1, n + 1)]
            below, above = int(by_bucket.get(0, 0)), int(by_bucket.get(n + 1, 0))
            edges = [start + (stop - start) * i / n for i in range(n + 1)]
    return Histogram(
        signal=signal,
        documents=max(dataset.document_count, count),
        count=count,
        minimum=minimum,
        maximum=maximum,
        mean=mean,
        quantiles=dict(zip(QUANTILES, quantiles or [], strict=False)),
        edges=edges,
        counts=counts,
        below=below,
        above=above,
        lo=lo,
        hi=hi,
        under=under,
        within=count - under - over,
        over=over,
    )


def _fmt(value: float | None) -> str:
    """A number for a label: integers in full, others to 4 significant digits."""
    if value is None:
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    selected: bool


@dataclass(frozen=True)
class Marker:
    x: float
    label: str


@dataclass(frozen=True)
class HistogramChart:
    """A histogram laid out for an inline SVG: every coordinate and label computed here."""

    histogram: Histogram
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_bottom: float
    bars: list[Bar]
    markers: list[Marker]
    start_label: str
    stop_label: str
    description: str
    summary: list[tuple[str, str]]


def histogram_chart(histogram: Histogram, *, width: int = 520, height: int = 140) -> HistogramChart:
    """Lay out ``histogram``: bars scaled to the tallest bin, the filter's bounds as markers.

    A bar is ``selected`` when its bin's middle lies within the bounds. A bound
    outside the bins' range gets no marker; its counts are in the description.
    """
    left, right, top, bottom = 8.0, width - 8.0, 8.0, height - 22.0
    counts, edges = histogram.counts, histogram.edges
    tallest = max(counts, default=0) or 1
    bars: list[Bar] = []
    step = (right - left) / len(counts) if counts else 0.0
    for i, count in enumerate(counts):
        middle = (edges[i] + edges[i + 1]) / 2
        selected = (histogram.lo is None or middle >= histogram.lo) and (
            histogram.hi is None or middle <= histogram.hi
        )
        bar_height = (bottom - top) * count / tallest
        closing = "]" if i == len(counts) - 1 else ")"
        bars.append(
            Bar(
                x=round(left + i * step, 2),
                y=round(bottom - bar_height, 2),
                width=round(max(step - 1, 1), 2),
                height=round(bar_height, 2),
                count=count,
                label=f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{closing}: {count:,}",
                selected=selected,
            )
        )
    markers = []
    if edges:
        span = edges[-1] - edges[0]
        for name, bound in (("min", histogram.lo), ("max", histogram.hi)):
            if bound is not None and edges[0] <= bound <= edges[-1]:
                x = left + (right - left) * (bound - edges[0]) / span
                markers.append(Marker(x=round(x, 2), label=f"{name} {_fmt(bound)}"))
    q = histogram.quantiles
    summary = [
        ("count", f"{histogram.count:,}"),
        ("nulls", f"{histogram.nulls:,}"),
        ("min", _fmt(histogram.minimum)),
        *((f"p{round(f * 100)}", _fmt(q.get(f))) for f in QUANTILES),
        ("max", _fmt(histogram.maximum)),
        ("mean", _fmt(histogram.mean)),
    ]
    if counts:
        description = (
            f"{len(counts)} bins from {_fmt(edges[0])} to {_fmt(edges[-1])} over "
            f"{histogram.count:,} values ({histogram.below:,} below and {histogram.above:,} "
            f"above that range); median {_fmt(q.get(0.5))}. The filter keeps "
            f"{histogram.within:,}: {histogram.under:,} under its minimum, "
            f"{histogram.over:,} over its maximum."
        )
    else:
        description = "No values in this dataset."
    return HistogramChart(
        histogram=histogram,
        width=width,
        height=height,
        plot_left=left,
        plot_right=right,
        plot_bottom=bottom,
        bars=bars,
        markers=markers,
        start_label=_fmt(edges[0]) if edges else "",
        stop_label=_fmt(edges[-1]) if edges else "",
        description=description,
        summary=summary,
    )
