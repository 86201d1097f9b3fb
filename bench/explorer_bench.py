"""Explorer latency at 10k and 1M documents: filter + count + first page, histograms, search.

    python bench/explorer_bench.py [--sizes 10000,1000000] [--queries 32] [--keep] [--reuse]

A scratch database (``winnow_bench_explorer``, migrated by manage.py) gets one
dataset per size: documents COPYed straight into ``curation_document`` (the
sample texts of bench/_common.py, copies beyond 3,000 with a suffix, a
``source`` meta field) and 20 signals (``signal_define``, as the steps make them)
written with one binary COPY into the dataset's partition of the signal table:
14 numeric quality-like signals (uniform, normal, beta, lognormal word counts as
int; ~5 % NULLs in every third), ``lang`` (text: en 70 %, then de, fr, es, zh,
ru, ja), ``lang_score`` and the exact/MinHash ``*_dedup_keep``/``_size`` pairs.
Then VACUUM ANALYZE, the search index (``search_index_build``, timed),
ANALYZE again (statistics of the index expression) and, on datasets of
INDEX_MIN_DOCUMENTS or more, the B-tree indexes the explorer asks for on the
filtered signals (``services/signal_indexes.py``; timed; ``--no-signal-indexes``
measures without them).

Timed through the explorer's selectors on Django's connection, ``--queries``
queries of each kind per size, the sizes interleaved query by query so that
load from other processes hits both alike:

* ``ranges+lang``: two signal ranges (bounds at quantiles of the values, each
  keeping ~2 %, ~30 % or ~90 %) and a language; first page sorted by id.
* ``ranges+lang sorted``: the same with the page sorted by a third signal
  (descending, NULLs last).
* ``ranges+lang sorted asc``: the same sorted ascending (NULLs still last), which
  walks the signal's index backward.
* ``ranges+text``: two ranges and a full-text search word (words that occur in
  ~30 %, 10 %, 3 %, 1 %, 0.3 % and 0.1 % of the documents).

Per query: ``page`` (explorer_page: the first 25 with previews), ``estimate``
(explorer_count_estimate: a block-sample count, with its error against the exact
count reported), ``count`` (explorer_count, exact) and ``first
response``: explorer_results as the htmx page calls it, page + exact count up to
COUNT_INLINE_MAX documents and page + estimate above (the exact count follows in
its own request); ``exact count shown``: the first response, plus that count
request when the response held an estimate (a text page read another way than a
window holds the exact count already). A text query is read the way
``curation/explorer/text_plan.py`` chooses (every hit, signals first, or a window of
ids with an estimated count); its baseline, timed beside it, is ``every hit``: page
and exact count from every hit of the search index in one statement
(``results_sql``), as the explorer did before.
The words are chosen by their share as the search sees them (its lexemes). The
cache of text hits
(``curation/explorer/text_hits.py``) starts with the common words' bits alone,
built ahead as the search index task builds them (timed; ``--no-common-words``
leaves them out): a word among them reads its bits from its first count on.
Another word's first exact count keeps its hits as bits when it has many, and its
later queries read them. The 6 words take turns, so each word's first query is
cold and the next ones warm; the count is also timed with the cache off (``no
bits``, the count as before the cache) for the same queries.

The signal columns in memory (``curation/explorer/columns.py``) start empty in each
run: the warm-up's exact count is PostgreSQL's and starts reading its columns, then
the dataset's other signals, in a background thread, and the measures start once it
ends (timed; with ``--cold-columns`` they start at once, and the first kind measured
pays for the reads). A column first sorted by is sorted in the background too, its
first page PostgreSQL's. Each signal query's exact count is also timed with the
columns off (``PostgreSQL``, the count as before them), in the same run.

Also: histograms (a signal's summary with 7 quantiles + 40 bins + the counts on
each side of two bounds) cold (summary cache cleared) and warm, the text query
without the index (``enable_bitmapscan = off``: GIN has no other scan), and
COPY throughput of ``--copy-docs`` documents into a dataset without and with its
search index. Progress goes to stderr, results to stdout. The scratch database
is dropped at the end unless ``--keep``; ``--reuse`` measures a kept one again.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    create_database,
    db_url,
    drop_database,
    load,
    migrate_database,
)
from bench.signal_storage_bench import copy_binary, encode_copy_rows, plan_summary  # noqa: E402

BENCH_DB = "winnow_bench_explorer"
LANGS = ("en", "de", "fr", "es", "zh", "ru", "ja")
LANG_P = (0.70, 0.08, 0.07, 0.05, 0.04, 0.03, 0.03)
KINDS = ("uniform", "normal", "lognormal", "beta")
SELECTIVITIES = (0.02, 0.3, 0.9)
WORD_SHARES = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
NUMERIC_SIGNALS = 14
SOURCES = ("web", "books", "news", "code")
QUERY_KINDS = ("ranges+lang", "ranges+lang sorted", "ranges+text", "ranges+lang sorted asc")
GOAL_MS = 300.0
GOAL_RATIO = 1.5
COPY_ROWS = 200_000
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def define_signals() -> list[Any]:
    """The 20 signals, in column order: 14 numeric, lang, lang_score, 2 dedup pairs."""
    from curation.services.signals import signal_define

    specs = [
        (f"q_{KINDS[j % 4]}_{j:02d}", "int" if KINDS[j % 4] == "lognormal" else "float")
        for j in range(NUMERIC_SIGNALS)
    ]
    specs += [
        ("lang", "text"),
        ("lang_score", "float"),
        ("exact_dedup_keep", "bool"),
        ("exact_dedup_size", "int"),
        ("minhash_dedup_keep", "bool"),
        ("minhash_dedup_size", "int"),
    ]
    return [signal_define(name=n, step="bench", step_version="1", dtype=d) for n, d in specs]


def signal_columns(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Values of the 20 signals for ``n`` documents (NaN = NULL in the float columns)."""
    cols: list[np.ndarray] = []
    for j in range(NUMERIC_SIGNALS):
        kind = KINDS[j % 4]
        if kind == "lognormal":
            cols.append(np.round(rng.lognormal(5.0, 1.0, n)).astype(np.int64))
            continue
        if kind == "uniform":
            col = rng.random(n)
        elif kind == "normal":
            col = rng.normal(0.0, 1.0, n)
        else:
            col = rng.beta(2.0, 5.0, n)
        if j % 3 == 2:
            col[rng.random(n) < 0.05] = np.nan
        cols.append(col)
    cols.append(np.array(LANGS, dtype="S2")[rng.choice(len(LANGS), size=n, p=LANG_P)])
    cols.append(rng.uniform(0.3, 1.0, n))
    for share in (0.03, 0.08):  # exact, MinHash: share of documents in groups
        size = np.ones(n, dtype=np.int64)
        grouped = rng.random(n) < share
        size[grouped] = rng.integers(2, 6, int(grouped.sum()))
        cols += [~grouped | (rng.random(n) < 0.35), size]
    return cols


def copy_documents(dataset_id: int, docs: int, texts: list[str], *, prefix: str) -> None:
    """COPY ``docs`` documents (text, a ``source`` meta field, counts) into curation_document."""
    import orjson
    from django.db import connection

    distinct = len(texts)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY curation_document (dataset_id, external_id, text, meta, content_hash, "
            "char_count, word_count, line_count) FROM STDIN"
        ) as copy:
            for i in range(docs):
                base = texts[i % distinct]
                text = base if i < distinct else f"{base} (copy {i // distinct})"
                copy.write_row(
                    (
                        dataset_id,
                        f"{prefix}-{i:07d}",
                        text,
                        orjson.dumps({"source": SOURCES[i % len(SOURCES)]}).decode(),
                        i,
                        len(text),
                        len(text.split()),
                        text.count("\n") + 1,
                    )
                )


def load_dataset(name: str, docs: int, texts: list[str], signals: list[Any]) -> Any:
    """A dataset of ``docs`` documents and its 20 signals; returns the Dataset."""
    from django.db import connection
    from psycopg import sql

    from curation.services.datasets import dataset_create, dataset_recount
    from curation.services.signals import partition_name

    dataset = dataset_create(name=name)
    started = time.perf_counter()
    copy_documents(dataset.pk, docs, texts, prefix=name)
    log(f"  {name}: {docs:,} documents COPYed in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM curation_document WHERE dataset_id = %s ORDER BY id", [dataset.pk]
        )
        ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        cols = signal_columns(len(ids), np.random.default_rng(docs))
        names = [sql.Identifier("dataset_id"), sql.Identifier("document_id")]
        names += [sql.Identifier(s.column_name) for s in signals]
        dataset_ids = np.full(len(ids), dataset.pk, dtype=np.int64)

        def chunks() -> Iterator[bytes]:
            for s in range(0, len(ids), COPY_ROWS):
                e = s + COPY_ROWS
                yield encode_copy_rows([dataset_ids[s:e], ids[s:e]] + [c[s:e] for c in cols])

        copy_binary(
            cursor.cursor,  # type: ignore[attr-defined]
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)")
            .format(sql.Identifier(partition_name(dataset.pk)), sql.SQL(", ").join(names))
            .as_string(cursor.connection),
            chunks,
        )
    return dataset_recount(dataset=dataset)


def search_words(texts: list[str]) -> list[str]:
    """One word per share in WORD_SHARES: the one whose document frequency is nearest, as
    the explorer's search sees it (the lexeme of its tsquery in each text's searched
    start)."""
    from django.db import connection

    from curation.explorer import SEARCH_CHARS, TS_CONFIG

    words = sorted({w for text in texts for w in re.findall(r"[a-z]{4,}", text.lower())})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.lexeme, count(*) FROM unnest(%s::text[]) t, "
            "unnest(to_tsvector(%s, left(t, %s))) u GROUP BY u.lexeme",
            [texts, TS_CONFIG, SEARCH_CHARS],
        )
        lexeme_df = dict(cursor.fetchall())
        cursor.execute(
            "SELECT w, websearch_to_tsquery(%s, w)::text FROM unnest(%s::text[]) w",
            [TS_CONFIG, words],
        )
        keys = dict(cursor.fetchall())
    df = {
        w: lexeme_df[key[1:-1]]
        for w, key in keys.items()
        if re.fullmatch(r"'[a-z]+'", key) and key[1:-1] in lexeme_df
    }
    n = len(texts)
    candidates = sorted(df)
    return [min(candidates, key=partial(_distance, df=df, n=n, share=s)) for s in WORD_SHARES]


def _distance(word: str, *, df: dict[str, int], n: int, share: float) -> float:
    return abs(df[word] / n - share)


def make_specs(kind: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` query specs: two ranges (as quantile intervals) + a language or a word, a sort."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        picked = rng.choice(NUMERIC_SIGNALS, size=3, replace=False)
        ranges = []
        for j in picked[:2]:
            sel = float(rng.choice(SELECTIVITIES))
            start = float(rng.uniform(0.0, 1.0 - sel))
            ranges.append((int(j), start, start + sel))
        specs.append(
            {
                "kind": kind,
                "ranges": ranges,
                "lang": str(rng.choice(LANGS, p=LANG_P)),
                "word": i % len(WORD_SHARES),
                "sort": int(picked[2]) if kind.startswith("ranges+lang sorted") else None,
                "descending": kind == "ranges+lang sorted",
            }
        )
    return specs


def build_query(dataset: Any, signals: list[Any], spec: dict[str, Any], data: Any) -> Any:
    from curation.explorer import Equals, ExplorerQuery, Range, SignalColumn, Sort

    columns = [SignalColumn.of(s) for s in signals]
    ranges = []
    for j, lo_q, hi_q in spec["ranges"]:
        lo, hi = np.nanquantile(data["values"][j], [lo_q, hi_q])
        ranges.append(Range(signal=columns[j], lo=float(lo), hi=float(hi)))
    text = ""
    equals: tuple[Equals, ...] = ()
    if spec["kind"] == "ranges+text":
        text = data["words"][spec["word"]]
    else:
        equals = (Equals(signal=columns[NUMERIC_SIGNALS], value=spec["lang"]),)
    sort = (
        Sort()
        if spec["sort"] is None
        else Sort(signal=columns[spec["sort"]], descending=spec["descending"])
    )
    return ExplorerQuery(
        dataset_id=dataset.pk, ranges=tuple(ranges), equals=equals, text=text, sort=sort
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def count_without_bits(query: Any) -> tuple[int, str]:
    """``text_count`` with the cache of text hits off: neither read nor built."""
    from curation.explorer import text_hits, text_plan

    may_use_bits = text_hits.may_use_bits
    text_hits.may_use_bits = lambda query: False  # type: ignore[assignment]
    try:
        return text_plan.text_count(query=query)
    finally:
        text_hits.may_use_bits = may_use_bits  # type: ignore[assignment]


def count_without_columns(query: Any) -> int:
    """``explorer_count`` as before the columns in memory (``explorer/columns.py``):
    PostgreSQL counts."""
    from curation import explorer
    from curation.explorer import columns

    least = columns.COLUMNS_MIN_ROWS
    columns.COLUMNS_MIN_ROWS = 1 << 62
    try:
        return int(explorer.explorer_count(query=query))
    finally:
        columns.COLUMNS_MIN_ROWS = least


def spy_column_reads() -> list[tuple[int, float]]:
    """Each read of signal columns from PostgreSQL: (dataset id, ms)."""
    from curation.explorer import column_store

    reads: list[tuple[int, float]] = []
    read = column_store._read

    def timed_read(dataset_id: int, signals: list[Any]) -> Any:
        ms, out = timed(partial(read, dataset_id, signals))
        reads.append((dataset_id, ms))
        return out

    column_store._read = timed_read  # type: ignore[assignment]
    return reads


def run_sql(statement: Any, params: list[Any], *settings: str) -> list[tuple[Any, ...]]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for setting in settings:
            cursor.execute(setting)
        cursor.execute(statement.as_string(cursor.connection), params)
        return cursor.fetchall()


def explain(statement: Any, params: list[Any]) -> str:
    from psycopg import sql

    rows = run_sql(
        sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(statement),
        params,
        "SET LOCAL work_mem = '64MB'",
    )
    return "\n".join(r[0] for r in rows)


def copy_rate(texts: list[str], docs: int, *, with_index: bool) -> float:
    """Documents/s of a plain COPY of ``docs`` documents into a new dataset (then deleted)."""
    from django.db import connection

    from curation.services.datasets import dataset_create, dataset_delete
    from curation.services.search import search_index_drop, search_index_sql

    dataset = dataset_create(name=f"copy-{'index' if with_index else 'plain'}-{time.time_ns()}")
    with connection.cursor() as cursor:
        if with_index:
            cursor.execute(search_index_sql(dataset_id=dataset.pk).as_string(cursor.connection))
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    copy_documents(dataset.pk, docs, texts, prefix=f"c{dataset.pk}")
    rate = docs / (time.perf_counter() - started)
    search_index_drop(dataset_id=dataset.pk)
    dataset_delete(dataset=dataset)
    return rate


def signal_indexes(args: argparse.Namespace, dataset: Any, signals: list[Any]) -> float | None:
    """Build the B-tree indexes the explorer asks for once the bench's signals are filtered.

    Only on datasets of INDEX_MIN_DOCUMENTS or more (as the explorer does), and not with
    --no-signal-indexes. Returns the seconds spent, or None when none were built.
    """
    from curation.services.signal_indexes import INDEX_MIN_DOCUMENTS, signal_index_build

    if args.no_signal_indexes or dataset.document_count < INDEX_MIN_DOCUMENTS:
        return None
    started = time.perf_counter()
    for signal in signals[: NUMERIC_SIGNALS + 1]:  # the numeric ones and lang
        signal_index_build(dataset_id=dataset.pk, signal_id=signal.pk)
    seconds = time.perf_counter() - started
    log(f"  signal indexes built in {seconds:.1f}s")
    return seconds


def prepare(
    args: argparse.Namespace, sizes: list[int]
) -> tuple[Any, dict[int, Any], dict[int, Any], list[str]]:
    """Load (or, with --reuse, find) the datasets; returns signals, datasets, data, texts."""
    from django.db import connection

    from bench._common import write_source
    from curation.models import Dataset, Signal
    from curation.services.search import search_index_build

    with tempfile.TemporaryDirectory() as tmp:
        texts = write_source(Path(tmp) / "src.jsonl", 3000)
    signals = list(Signal.objects.order_by("pk")) if args.reuse else define_signals()
    datasets, data = {}, {}
    for size in sizes:
        name = f"bench-{size}"
        if args.reuse:
            datasets[size] = Dataset.objects.get(name=name)
            index_s = None
        else:
            log(f"loading {size:,} documents")
            datasets[size] = load_dataset(name, size, texts, signals)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE curation_document")
                cursor.execute(f"VACUUM ANALYZE curation_signal_row_d{datasets[size].pk}")
            started = time.perf_counter()
            search_index_build(dataset_id=datasets[size].pk)
            index_s = time.perf_counter() - started
            log(f"  search index built in {index_s:.1f}s")
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE curation_document")
        common = keep_common_words(args, datasets[size])
        data_index_s = signal_indexes(args, datasets[size], signals)
        with connection.cursor() as cursor:
            columns = ", ".join(s.column_name for s in signals[:NUMERIC_SIGNALS])
            cursor.execute(f"SELECT {columns} FROM curation_signal_row_d{datasets[size].pk}")
            values = np.array(cursor.fetchall(), dtype=np.float64)
        data[size] = {
            "signal_index_s": data_index_s,
            "values": [values[:, j] for j in range(NUMERIC_SIGNALS)],
            "words": search_words(texts),
            "index_s": index_s,
            "common": common,
        }
    return signals, datasets, data, texts


def keep_common_words(args: argparse.Namespace, dataset: Any) -> tuple[float, int, int] | None:
    """Empty the dataset's kept bits, then (unless --no-common-words) build its common
    words' bits as the search index task does, timed: (seconds, words, bytes kept)."""
    from django.db import connection

    from curation.explorer.text_hits import common_words_build
    from curation.models import TextHits

    TextHits.objects.filter(dataset=dataset).delete()
    if args.no_common_words:
        return None
    log(f"  common words of {dataset.name}")
    started = time.perf_counter()
    built = common_words_build(dataset_id=dataset.pk)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_column_size(bits)), 0) FROM curation_texthits "
            "WHERE dataset_id = %s",
            [dataset.pk],
        )
        kept = int(cursor.fetchone()[0])
    log(f"  {len(built)} common words' bits built in {seconds:.1f}s ({kept / 1e6:.1f} MB)")
    return seconds, len(built), kept


def measure(
    args: argparse.Namespace,
    sizes: list[int],
    signals: list[Any],
    datasets: dict[int, Any],
    data: dict[int, Any],
    texts: list[str],
) -> dict[str, Any]:
    from django.core.cache import cache
    from django.db import connection

    from curation import explorer

    out: dict[str, Any] = {
        "times": {},
        "matches": {},
        "slowest": {},
        "hist": {},
        "no_index": {},
        "errors": {},
        "reads": {},
        "count reads": {},
        "no columns": {},
        "datasets": {size: datasets[size].pk for size in sizes},
    }
    from curation.explorer import columns

    columns.clear()
    out["column reads"] = spy_column_reads()
    specs = {
        kind: make_specs(kind, args.queries, seed=11 + k) for k, kind in enumerate(QUERY_KINDS)
    }
    from curation.explorer import text_plan
    from curation.models import TextHits

    # Every word starts cold, also with --reuse: only the common words' bits, built ahead
    # (prepare), are kept.
    TextHits.objects.filter(common=False).delete()
    log("warm-up")
    for size in sizes:
        q = build_query(datasets[size], signals, specs[QUERY_KINDS[0]][-1], data[size])
        explorer.explorer_page(query=q)
        explorer.explorer_count(query=q)
    if not args.cold_columns:  # the count started reading the signal columns: let it end
        started = time.perf_counter()
        columns.wait()
        log(f"  signal columns read in {time.perf_counter() - started:.1f}s")
    for kind in QUERY_KINDS:
        log(f"queries: {kind}")
        for spec in specs[kind]:
            for size in sizes:
                q = build_query(datasets[size], signals, spec, data[size])
                page_ms, _ = timed(partial(explorer.explorer_page, query=q))
                estimate_ms, guess = timed(partial(explorer.explorer_count_estimate, query=q))
                if q.text:  # explorer_count reads a text query this way; this also says how
                    count_ms, (n, count_read) = timed(partial(text_plan.text_count, query=q))
                else:
                    count_ms, n = timed(partial(explorer.explorer_count, query=q))
                if not q.reads_documents:
                    out["errors"].setdefault((kind, size), []).append(abs(guess - n) / max(n, 1))
                    # The baseline: PostgreSQL's exact count, as before the columns.
                    sql_ms, sql_n = timed(partial(count_without_columns, q))
                    assert sql_n == n, (q, sql_n, n)
                    out["no columns"].setdefault((kind, size), []).append((count_ms, sql_ms))
                # The first response comes first in the page's flow: no sample kept yet
                # (estimate._sample keeps one for the exact count that follows).
                cache.clear()
                results_ms, results = timed(
                    partial(
                        explorer.explorer_results,
                        query=q,
                        after=None,
                        exact_count=size <= explorer.COUNT_INLINE_MAX,
                    )
                )
                times = out["times"].setdefault(
                    (kind, size),
                    {
                        "page": [],
                        "estimate": [],
                        "count": [],
                        "results": [],
                        "shown": [],
                        "every hit": [],
                    },
                )
                if q.text:  # the baseline: page and count from every hit, as before text_plan
                    every_ms, _ = timed(
                        partial(
                            run_sql,
                            *explorer.results_sql(q, limit=explorer.PAGE_SIZE + 1),
                            "SET LOCAL work_mem = '64MB'",
                        )
                    )
                    times["every hit"].append(every_ms)
                    out["reads"].setdefault(size, []).append(results.read)
                    plain_ms, (plain_n, _) = timed(partial(count_without_bits, q))
                    assert plain_n == n, (q, plain_n, n)
                    out["count reads"].setdefault(size, []).append((count_read, count_ms, plain_ms))
                    if results.estimate is not None:
                        out["errors"].setdefault((f"{kind} window", size), []).append(
                            abs(results.estimate - n) / max(n, 1)
                        )
                times["page"].append(page_ms)
                times["estimate"].append(estimate_ms)
                times["count"].append(count_ms)
                times["results"].append(results_ms)
                # What the htmx page waits for its exact count: the first response, plus
                # the count request when that response held an estimate.
                times["shown"].append(results_ms + (count_ms if results.count is None else 0.0))
                out["matches"].setdefault((kind, size), []).append(n)
                if page_ms + count_ms > out["slowest"].get((kind, size), (0.0, None))[0]:
                    out["slowest"][(kind, size)] = (page_ms + count_ms, q)

    log("histograms")
    rng = np.random.default_rng(5)
    for _ in range(args.histograms):
        j = int(rng.integers(0, NUMERIC_SIGNALS))
        column = explorer.SignalColumn.of(signals[j])
        for size in sizes:
            lo, hi = np.nanquantile(data[size]["values"][j], [0.1, 0.9])
            for state in ("cold", "warm"):
                if state == "cold":
                    cache.clear()
                ms, _ = timed(
                    partial(
                        explorer.signal_histogram,
                        dataset=datasets[size],
                        signal=column,
                        lo=float(lo),
                        hi=float(hi),
                    )
                )
                out["hist"].setdefault((size, state), []).append(ms)

    log("text search without the index")
    for size in sizes:
        runs = args.queries if size <= 100_000 else 1
        for spec in specs["ranges+text"][:runs]:
            q = build_query(datasets[size], signals, spec, data[size])
            ms, _ = timed(
                partial(
                    run_sql,
                    *explorer.count_sql(q),
                    "SET LOCAL enable_bitmapscan = off",
                    "SET LOCAL statement_timeout = '300s'",
                )
            )
            out["no_index"].setdefault(size, []).append(ms)
    out["plans"] = {key: explain(*explorer.count_sql(q)) for key, (_, q) in out["slowest"].items()}
    out["page_plans"] = {
        key: explain(*explorer.page_sql(q)) for key, (_, q) in out["slowest"].items()
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relname LIKE 'curation_document_fts_d%%' "
            "OR c.relname LIKE 'curation_signal_row_d%%' OR c.relname = 'curation_document' "
            "ORDER BY c.relname"
        )
        out["relations"] = cursor.fetchall()

    log(f"COPY of {args.copy_docs:,} documents without and with the search index")
    out["rates"] = {False: [], True: []}
    for with_index in (False, True, False, True):
        out["rates"][with_index].append(copy_rate(texts, args.copy_docs, with_index=with_index))
    # The copies were deleted: free their rows, or each --reuse run measures a bigger
    # table (curation_document grew from 915 MB to 1,446 MB over four runs).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM curation_document")
    return out


def report(
    args: argparse.Namespace,
    sizes: list[int],
    data: dict[int, Any],
    out: dict[str, Any],
    load_start: str,
) -> None:
    from curation.explorer import COUNT_INLINE_MAX

    times = out["times"]
    print()
    print(
        f"Explorer benchmark: {', '.join(f'{s:,}' for s in sizes)} documents, 20 signals, "
        f"{args.queries} queries per kind and size, {os.cpu_count()} cores, "
        f"load avg start {load_start} / end {load()}"
    )
    print("relations: " + ", ".join(f"{name} {size}" for name, size in out["relations"]))
    print()
    print("QUERY ms: page = explorer_page (first 25, previews); estimate = sampled count;")
    print("count = exact count; first response = explorer_results as the htmx page calls it:")
    print(f"page + exact count up to {COUNT_INLINE_MAX:,} documents, page + estimate above (the")
    print("exact count follows in its own request); text queries: read as text_plan.py chooses")
    head = (
        f"{'kind':<22} {'size':>9} | {'page p50':>8} {'p95':>6} | {'est p50':>7} {'p95':>5} | "
        f"{'count p50':>9} {'p95':>6} | {'page+count p95':>14} | {'first resp p95':>14} | matches"
    )
    print(head)
    print("-" * len(head))

    def first(kind: str, size: int) -> list[float]:
        return times[(kind, size)]["results"]

    def both(kind: str, size: int) -> list[float]:
        t = times[(kind, size)]
        return [a + b for a, b in zip(t["page"], t["count"], strict=True)]

    for kind in QUERY_KINDS:
        for size in sizes:
            t = times[(kind, size)]
            print(
                f"{kind:<22} {size:>9,} | {pct(t['page'], 50):>8.1f} {pct(t['page'], 95):>6.1f} | "
                f"{pct(t['estimate'], 50):>7.1f} {pct(t['estimate'], 95):>5.1f} | "
                f"{pct(t['count'], 50):>9.1f} {pct(t['count'], 95):>6.1f} | "
                f"{pct(both(kind, size), 95):>14.1f} | {pct(first(kind, size), 95):>14.1f} | "
                f"median {int(statistics.median(out['matches'][(kind, size)])):,}"
            )
    if len(sizes) > 1:
        small, big = sizes[0], sizes[-1]
        print()
        print(
            f"GOALS at {big:,} (p95 < {GOAL_MS:.0f} ms) and p95({big:,}) / p95({small:,}) "
            f"<= {GOAL_RATIO}:"
        )
        for kind in QUERY_KINDS:
            for label, series in (
                ("page", lambda k, s: times[(k, s)]["page"]),
                ("exact count", lambda k, s: times[(k, s)]["count"]),
                ("page + exact count", both),
                ("first response", first),
                ("exact count shown", lambda k, s: times[(k, s)]["shown"]),
            ):
                a, b = pct(series(kind, small), 95), pct(series(kind, big), 95)
                p95_ok = "meets" if b < GOAL_MS else "MISSES"
                ratio_ok = "meets" if b / a <= GOAL_RATIO else "MISSES"
                print(
                    f"  {kind:<22} {label:<19} p95 {b:8.1f} ms {p95_ok}, "
                    f"ratio {b / a:7.2f} {ratio_ok}"
                )
    print()
    print("estimate error |estimate - exact| / exact, p50 / p95 (signal queries: block sample;")
    print("text queries read through a window: the window's matches scaled to the dataset):")
    for key in sorted(out["errors"]):
        errors = out["errors"][key]
        print(f"  {key[0]:<22} {key[1]:>9,}: {pct(errors, 50):.1%} / {pct(errors, 95):.1%}")
    for size in sizes:
        built = data[size]["signal_index_s"]
        if built is not None:
            print(f"  signal indexes at {size:,}: 15 built in {built:.1f}s")
    print()
    print("ranges+text count by word (document share in the sample: p50 ms per size):")
    for w, share in enumerate(WORD_SHARES):
        cells = []
        for size in sizes:
            t = times[("ranges+text", size)]["count"][w :: len(WORD_SHARES)]
            cells.append(f"{size:,}: {pct(t, 50):.0f}")
        print(f"  {data[sizes[0]]['words'][w]:<16} {share:>6.1%}  " + ", ".join(cells))
    print()
    print("ranges+text first response by how its hits were read (curation/explorer/text_plan.py),")
    print("against reading every hit (results_sql alone, as before), same queries, same run:")
    for size in sizes:
        t = times[("ranges+text", size)]
        reads = out["reads"][size]
        tally = ", ".join(f"{r} {reads.count(r)}" for r in sorted(set(reads)))
        ours, every = pct(t["results"], 95), pct(t["every hit"], 95)
        print(
            f"  {size:>9,}: {tally}; first response p50 {pct(t['results'], 50):.1f} p95 "
            f"{ours:.1f} ms, every hit p50 {pct(t['every hit'], 50):.1f} p95 {every:.1f} ms: "
            f"p95 ratio every hit / ours {every / ours:.1f}"
        )
    print()
    print("ranges+text exact count by how it was read (built: every hit read and kept as bits;")
    print("bits: the kept bits of an earlier query of the word), against the same queries with")
    print("the cache off (no bits), same run:")
    for size in sizes:
        for read in sorted({r for r, _, _ in out["count reads"][size]}):
            kept = [ms for r, ms, _ in out["count reads"][size] if r == read]
            off = [ms for r, _, ms in out["count reads"][size] if r == read]
            print(
                f"  {size:>9,} {read:<7} n={len(kept):<3} p50 {pct(kept, 50):7.1f} p95 "
                f"{pct(kept, 95):7.1f} ms; no bits p50 {pct(off, 50):7.1f} p95 "
                f"{pct(off, 95):7.1f} ms: p95 ratio no bits / ours "
                f"{pct(off, 95) / pct(kept, 95):.1f}"
            )
    print()
    print("signal exact counts (explorer_count: the columns in memory, curation/explorer/")
    print("columns.py, when kept) against PostgreSQL's count of the same query (no columns),")
    print("same run; a count that read its columns from PostgreSQL first is in the first:")
    for key in sorted(out["no columns"]):
        pairs = out["no columns"][key]
        kept_ms, sql_ms = [a for a, _ in pairs], [b for _, b in pairs]
        print(
            f"  {key[0]:<22} {key[1]:>9,}: ours p50 {pct(kept_ms, 50):6.1f} p95 "
            f"{pct(kept_ms, 95):6.1f} ms; PostgreSQL p50 {pct(sql_ms, 50):6.1f} p95 "
            f"{pct(sql_ms, 95):6.1f} ms: p95 ratio PostgreSQL / ours "
            f"{pct(sql_ms, 95) / pct(kept_ms, 95):.1f}"
        )
    from curation.explorer import columns

    for size in sizes:
        read_ms = [m for d, m in out["column reads"] if d == out["datasets"][size]]
        print(
            f"  {size:>9,}: {len(read_ms)} reads of columns from PostgreSQL, ms p50 "
            f"{pct(read_ms, 50):.0f} max {max(read_ms, default=float('nan')):.0f}"
        )
    print(f"  columns kept at the end: {columns.kept_bytes() / 2**20:.0f} MiB")
    print()
    print("HISTOGRAM ms (summary + 40 bins + bound counts; cold = summary not cached):")
    for size in sizes:
        cold, warm = out["hist"][(size, "cold")], out["hist"][(size, "warm")]
        print(
            f"  {size:>9,}: cold p50 {pct(cold, 50):.0f} p95 {pct(cold, 95):.0f}; "
            f"warm p50 {pct(warm, 50):.0f} p95 {pct(warm, 95):.0f}"
        )
    print()
    print("FULL-TEXT SEARCH:")
    for size in sizes:
        ni = out["no_index"][size]
        built = data[size]["index_s"]
        print(
            f"  {size:>9,}: index build {'(reused)' if built is None else f'{built:.1f}s'}; "
            f"ranges+text count without the index p50 {pct(ni, 50):.0f} ms (n={len(ni)}), "
            f"with it p50 {pct(times[('ranges+text', size)]['count'], 50):.0f} ms"
        )
        common = data[size]["common"]
        if common is None:
            print(f"  {size:>9,}: common words' bits not built (--no-common-words)")
        else:
            seconds, words, kept = common
            print(
                f"  {size:>9,}: common words' bits: {words} words built in {seconds:.1f}s, "
                f"{kept / 1e6:.1f} MB kept"
            )
    plain, indexed = statistics.median(out["rates"][False]), statistics.median(out["rates"][True])
    print(
        f"  COPY of {args.copy_docs:,} documents: {plain:,.0f} docs/s without the dataset's "
        f"search index, {indexed:,.0f} docs/s with it ({indexed / plain:.2f}x)"
    )
    print()
    print("plans of the slowest query per kind and size (count; page):")
    print("  (ranges+text: the plans of count_sql and page_sql, which read every hit: the")
    print("  baseline above, not the read text_plan.py chose, tallied by read above)")
    for key in sorted(out["plans"]):
        print(f"  {key[0]} {key[1]:,}: {plan_summary(out['plans'][key])}")
        indent = " " * (len(key[0]) + len(f"{key[1]:,}") + 4)
        print(f"{indent}{plan_summary(out['page_plans'][key])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--queries", type=int, default=32, help="queries of each kind per size")
    ap.add_argument("--histograms", type=int, default=8)
    ap.add_argument("--copy-docs", type=int, default=50_000)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help=f"keep database {BENCH_DB}")
    ap.add_argument(
        "--no-signal-indexes",
        action="store_true",
        help="measure without the signal indexes the explorer asks for",
    )
    ap.add_argument("--reuse", action="store_true", help=f"measure a kept {BENCH_DB} again")
    ap.add_argument(
        "--cold-columns",
        action="store_true",
        help="start measuring while the warm-up's count still reads the signal columns",
    )
    ap.add_argument(
        "--no-common-words",
        action="store_true",
        help="measure without the common words' bits built ahead (text_hits.common_words_build)",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load()

    if args.reuse:
        url = db_url(args.dsn, BENCH_DB)
        migrate_database(url)  # the kept database may predate a migration
    else:
        log(f"scratch database {BENCH_DB}")
        url = create_database(args.dsn, BENCH_DB)
    os.environ["DATABASE_URL"] = url
    os.environ["WINNOW_SKIP_EMBEDDED"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    import django

    django.setup()
    from django.db import connection

    try:
        signals, datasets, data, texts = prepare(args, sizes)
        out = measure(args, sizes, signals, datasets, data, texts)
    finally:
        connection.close()
        if not args.keep:
            drop_database(args.dsn, BENCH_DB)
    log("done")
    report(args, sizes, data, out, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
