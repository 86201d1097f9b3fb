"""Integer signal bounds rounded to integers against bounds as typed, interleaved, one run.

Usage (needs the database ``bench/explorer_bench.py --keep`` leaves)::

    python bench/explorer_int_bounds_bench.py [--size 1000000] [--queries 32]

A fractional bound on an integer signal is a numeric literal, and PostgreSQL then
casts the bigint column to numeric, which no index on it serves. The explorer rounds
such bounds inwards (``curation/explorer/sources.py``, the same documents). For each
signal query kind of ``explorer_bench.py`` and each of its queries, this times page,
exact count and first response with the rounding (ours) and with the bounds as typed
(baseline), alternating twice, and prints p50 / p95 and the p95 ratio baseline / ours.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import db_url  # noqa: E402
from bench.explorer_bench import (  # noqa: E402
    BENCH_DB,
    QUERY_KINDS,
    build_query,
    make_specs,
    prepare,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args(argv)
    os.environ["DATABASE_URL"] = db_url(args.dsn, BENCH_DB)
    os.environ["WINNOW_SKIP_EMBEDDED"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    import django

    django.setup()
    from curation import explorer
    from curation.explorer import sources as explorer_sources

    prepared = argparse.Namespace(reuse=True, no_signal_indexes=False)
    signals, datasets, data, _ = prepare(prepared, [args.size])
    rounded = explorer_sources._int_bound

    def as_typed(value: float, rounding: Callable[[float], int]) -> float:
        return value

    times: dict[tuple[str, str, str], list[float]] = {}
    for k, kind in enumerate(QUERY_KINDS):
        if kind == "ranges+text":
            continue
        for spec in make_specs(kind, args.queries, seed=11 + k):
            q = build_query(datasets[args.size], signals, spec, data[args.size])
            for side in ("ours", "as typed", "ours", "as typed"):
                bound = rounded if side == "ours" else as_typed
                explorer_sources._int_bound = bound  # type: ignore[assignment]
                calls: dict[str, Callable[[], Any]] = {
                    "page": partial(explorer.explorer_page, query=q),
                    "count": partial(explorer.explorer_count, query=q),
                    "first response": partial(
                        explorer.explorer_results, query=q, after=None, exact_count=False
                    ),
                }
                for what, call in calls.items():
                    started = time.perf_counter()
                    call()
                    ms = (time.perf_counter() - started) * 1000
                    times.setdefault((kind, what, side), []).append(ms)
    explorer_sources._int_bound = rounded  # type: ignore[assignment]
    print(f"{args.size:,} documents, {args.queries} queries per kind, each run twice per side")
    for kind in QUERY_KINDS:
        if kind == "ranges+text":
            continue
        for what in ("page", "count", "first response"):
            ours, base = times[(kind, what, "ours")], times[(kind, what, "as typed")]
            o50, o95 = np.percentile(ours, [50, 95])
            b50, b95 = np.percentile(base, [50, 95])
            print(
                f"  {kind:<24} {what:<15} rounded p50 {o50:6.1f} p95 {o95:6.1f} ms | as typed "
                f"p50 {b50:6.1f} p95 {b95:6.1f} ms | p95 ratio as typed / rounded {b95 / o95:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
