"""Export throughput: Winnow's Parquet export vs a bare COPY of the same rows.

    python bench/export_bench.py [--docs 1000000] [--rounds 1] [--signals 4]

A scratch database gets ``--docs`` documents (60-140 words of ~600 bytes, a
``url`` in meta) and ``--signals`` signals (float, int, bool, text; ~5 % NULLs),
loaded with COPY and VACUUM ANALYZEd. Then, each in its own process so that its
peak RSS (VmHWM) is its own:

* ``copy``: the baseline. ``COPY (SELECT external_id, text, meta, signals ... ORDER BY
  id) TO STDOUT``, the same columns joined the same way, read and thrown away:
  what the database itself costs to hand over the rows.
* ``winnow``: the real export (``export_create`` + ``export_run`` inline): ids
  chosen once, keyset chunks, Parquet shards (zstd) of at most 100k rows, the
  card with a histogram per signal, the temp folder renamed into place.

Prints wall time, rows/s, peak RSS and the ratio winnow/baseline of rows/s.
The scratch database and the written files are dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import create_database, drop_database, load  # noqa: E402

BENCH_DB = "winnow_bench_export"
PHASES = ("copy", "winnow")
DTYPES = (("float", "double precision"), ("int", "bigint"), ("bool", "boolean"), ("text", "text"))
WORDS = (
    "the data model training language corpus quality filter document token web page "
    "which would their about there people into after first also new because any these "
    "give day most us time year work back use way even want well only"
).split()
POOL = 5000


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(url: str, docs: int, n_signals: int) -> dict[str, Any]:
    """Dataset 1 with ``docs`` documents and ``n_signals`` signals, loaded with COPY."""
    import numpy as np
    import psycopg
    from psycopg import sql

    rng = np.random.default_rng(0)
    words = np.array(WORDS)
    pool = [
        " ".join(words[rng.integers(0, len(words), rng.integers(60, 141))]) for _ in range(POOL)
    ]
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        (dataset_id,) = conn.execute(
            "INSERT INTO curation_dataset (name, slug, description, source, created_at, "
            "document_count, char_count) VALUES ('bench', 'bench', '', 'bench/export_bench.py', "
            "now(), %s, 0) RETURNING id",
            [docs],
        ).fetchone() or (0,)
        partition = f"curation_signal_row_d{dataset_id}"
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF curation_signal_row FOR VALUES IN ({})").format(
                sql.Identifier(partition), sql.Literal(dataset_id)
            )
        )
        columns = []
        for j in range(n_signals):
            dtype, pg_type = DTYPES[j % len(DTYPES)]
            (signal_id,) = conn.execute(
                "INSERT INTO curation_signal (name, step, step_version, dtype, description, "
                "created_at, updated_at) VALUES (%s, 'bench', '1', %s, '', now(), now()) "
                "RETURNING id",
                [f"bench_{dtype}_{j}", dtype],
            ).fetchone() or (0,)
            column = f"s_{signal_id}"
            conn.execute(
                sql.SQL("ALTER TABLE curation_signal_row ADD COLUMN {} {}").format(
                    sql.Identifier(column), sql.SQL(pg_type)
                )
            )
            columns.append((column, dtype))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY curation_document (dataset_id, external_id, text, meta, content_hash, "
                "char_count, word_count, line_count) FROM STDIN"
            ) as copy,
        ):
            for i in range(docs):
                text = f"{pool[i % POOL]} {i}"
                meta = f'{{"url": "https://example.org/{i}"}}'
                copy.write_row((dataset_id, f"doc-{i:07d}", text, meta, i, len(text), 0, 1))
        conn.commit()
        found = conn.execute(
            "SELECT id FROM curation_document WHERE dataset_id = %s ORDER BY id", [dataset_id]
        )
        ids = np.array([r[0] for r in found], dtype=np.int64)
        names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
        with (
            conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY {} (dataset_id, document_id, {}) FROM STDIN").format(
                    sql.Identifier(partition), names
                )
            ) as copy,
        ):
            values = rng.random((len(ids), n_signals))
            missing = rng.random((len(ids), n_signals)) < 0.05
            for k, doc_id in enumerate(ids.tolist()):
                row: list[Any] = [dataset_id, doc_id]
                for j, (_, dtype) in enumerate(columns):
                    v = float(values[k, j])
                    if missing[k, j]:
                        row.append(None)
                    elif dtype == "float":
                        row.append(v)
                    elif dtype == "int":
                        row.append(int(v * 1000))
                    elif dtype == "bool":
                        row.append(v < 0.5)
                    else:
                        row.append("en" if v < 0.8 else "fr")
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE curation_document")
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(partition)))
        conn.execute("CHECKPOINT")
    return {
        "dataset": dataset_id,
        "columns": [c for c, _ in columns],
        "seconds": time.perf_counter() - started,
    }


def phase_copy(url: str, dataset_id: int, columns: list[str]) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT d.external_id, d.text, d.meta::text, {} FROM curation_document d "
        "LEFT JOIN curation_signal_row s ON s.dataset_id = {} AND s.document_id = d.id "
        "WHERE d.dataset_id = {} ORDER BY d.id) TO STDOUT"
    ).format(
        sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns),
        sql.Literal(dataset_id),
        sql.Literal(dataset_id),
    )
    rows = size = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in copy:
                size += len(chunk)
                rows += bytes(chunk).count(b"\n")
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "bytes": size}


def phase_winnow(dataset_id: int, out: Path) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    os.environ["WINNOW_DATA_DIR"] = str(out)
    django.setup()
    from curation.models import Dataset, Signal
    from curation.services.exports import ExportOptions, export_create, export_run

    dataset = Dataset.objects.get(pk=dataset_id)
    signals = tuple(
        Signal.objects.filter(step="bench").order_by("pk").values_list("name", flat=True)
    )
    started = time.perf_counter()
    snapshot = export_create(dataset=dataset, options=ExportOptions(signals=signals))
    snapshot = export_run(snapshot_id=snapshot.pk)
    seconds = time.perf_counter() - started
    assert snapshot.status == "succeeded", snapshot.error
    return {
        "rows": snapshot.rows_done,
        "seconds": seconds,
        "bytes": snapshot.bytes_written,
        "files": len(snapshot.files) - 1,
    }


def run_phase(name: str, url: str, populated: dict[str, Any], out: Path) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=url, WINNOW_LOG_LEVEL="WARNING", WINNOW_SKIP_EMBEDDED="1")
    command = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--dataset",
        str(populated["dataset"]),
        "--columns",
        ",".join(populated["columns"]),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"phase {name} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--signals", type=int, default=4)
    parser.add_argument("--phase", choices=PHASES, default=None)
    parser.add_argument("--dataset", type=int, default=0)
    parser.add_argument("--columns", default="")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    if args.phase:
        url = os.environ["DATABASE_URL"]
        if args.phase == "copy":
            result = phase_copy(url, args.dataset, args.columns.split(","))
        else:
            result = phase_winnow(args.dataset, args.out)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    start_load = load()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PHASES}
    try:
        url = create_database(base, BENCH_DB)
        print(f"loading {args.docs:,} documents, {args.signals} signals ...", file=sys.stderr)
        populated = populate(url, args.docs, args.signals)
        print(f"loaded in {populated['seconds']:.0f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="winnow-export-bench-") as tmp:
            for round_ in range(1, args.rounds + 1):
                for name in PHASES:
                    out = Path(tmp) / f"{name}-{round_}"
                    result = run_phase(name, url, populated, out)
                    runs[name].append(result)
                    print(
                        f"round {round_} {name}: {result['rows'] / result['seconds']:,.0f} rows/s"
                        f" (load {load()})",
                        file=sys.stderr,
                    )
    finally:
        drop_database(base, BENCH_DB)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    def peak(name: str) -> float:
        return max(r["peak_rss_mb"] for r in runs[name])

    def rate(name: str) -> float:
        return statistics.median(r["rows"] / r["seconds"] for r in runs[name])

    winnow = runs["winnow"][-1]
    print(
        f"{args.docs:,} documents, {args.signals} signals; {args.rounds} round(s), medians; "
        f"load avg {start_load} -> {load()}"
    )
    print(f"{'':34}{'rows/s':>10}{'seconds':>10}{'MB out':>10}{'peak RSS MB':>14}")
    for label, name in (("COPY same rows TO STDOUT (base)", "copy"), ("winnow export", "winnow")):
        print(
            f"{label:34}{rate(name):>10,.0f}{median(name, 'seconds'):>10.1f}"
            f"{median(name, 'bytes') / 1e6:>10.0f}{peak(name):>14.0f}"
        )
    print(f"winnow wrote {winnow['files']} Parquet shard(s) + README.md (zstd)")
    print(f"ratio winnow/baseline rows/s: {rate('winnow') / rate('copy'):.2f}")


if __name__ == "__main__":
    main()
