"""Import throughput: Winnow's streaming import vs a bare psycopg COPY of the same rows.

    python bench/import_bench.py [--rows 1000000] [--keep-db]

Both sides read the same JSONL file from disk and parse every line with orjson.
The baseline COPYs (dataset_id, external_id, text, meta) into a table shaped and
indexed like ``curation_document`` and does nothing else. Winnow's side is the
real import (``import_from_path``: validation, hashing, counts, batches, job
progress, rejection handling). Each side runs in its own process so that its
peak RSS is its own. Prints docs/s for both, the ratio (goal >= 0.7) and peak RSS.
The scratch database ``winnow_bench_import`` is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "winnow_bench_import"
WORDS = (
    "the data model training language corpus quality filter document token web page "
    "which would their about there people into after first also new because any these "
    "give day most us time year work back use way even want well only"
).split()


def make_source(path: Path, rows: int) -> None:
    """~1M lines of ~600 bytes: text of 60-140 words plus url and timestamp meta."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if sum(1 for _ in f) == rows:
                return
    import orjson

    rng = random.Random(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for i in range(rows):
            text = " ".join(rng.choices(WORDS, k=rng.randint(60, 140)))
            record = {
                "id": f"doc-{i}",
                "text": text,
                "url": f"https://example.org/{i}",
                "ts": "2024-05-01T00:00:00Z",
            }
            out.write(orjson.dumps(record) + b"\n")


def db_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_conn(base: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(db_url(base, "postgres"), autocommit=True)


def phase_baseline(url: str, source: Path) -> dict[str, float]:
    import orjson
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_document")
        conn.execute("CREATE TABLE bench_document (LIKE curation_document INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        rows = 0
        with conn.cursor() as cur:
            with cur.copy(
                "COPY bench_document (dataset_id, external_id, text, meta, content_hash, "
                "char_count, word_count, line_count) FROM STDIN"
            ) as copy:
                with open(source, "rb") as f:
                    for line in f:
                        obj = orjson.loads(line)
                        text = obj.pop("text")
                        ext = obj.pop("id")
                        copy.write_row((1, ext, text, orjson.dumps(obj).decode(), 0, 0, 0, 0))
                        rows += 1
        conn.commit()
        elapsed = time.perf_counter() - started
    return {"rows": rows, "seconds": elapsed}


def phase_winnow(source: Path) -> dict[str, float]:
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    django.setup()
    from curation.services.datasets import dataset_create
    from curation.services.imports import import_from_path

    dataset = dataset_create(name=f"bench-{time.time_ns()}")
    started = time.perf_counter()
    job = import_from_path(dataset=dataset, path=source, id_field="id")
    elapsed = time.perf_counter() - started
    assert job.status == "succeeded", job.error
    return {"rows": job.rows_imported, "seconds": elapsed}


def run_phase(name: str, args: argparse.Namespace, url: str) -> dict[str, float]:
    env = dict(os.environ, DATABASE_URL=url, WINNOW_LOG_LEVEL="WARNING")
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--source", str(args.source)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"phase {name} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--phase", choices=["baseline", "winnow"], default=None)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    args.source = args.source or ROOT / "var" / "bench" / f"import_{args.rows}.jsonl"

    if args.phase:
        if args.phase == "baseline":
            result = phase_baseline(os.environ["DATABASE_URL"], args.source)
        else:
            result = phase_winnow(args.source)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    print(f"writing {args.rows:,} rows to {args.source} ...", file=sys.stderr)
    make_source(args.source, args.rows)
    size_mb = args.source.stat().st_size / 1e6
    url = db_url(base, BENCH_DB)
    with admin_conn(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            env=dict(os.environ, DATABASE_URL=url),
            cwd=ROOT,
            check=True,
        )
        baseline = run_phase("baseline", args, url)
        ours = run_phase("winnow", args, url)
    finally:
        if not args.keep_db:
            with admin_conn(base) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    b_rate = baseline["rows"] / baseline["seconds"]
    o_rate = ours["rows"] / ours["seconds"]
    print(f"source: {args.rows:,} JSONL lines, {size_mb:,.0f} MB")
    print(f"{'':22}{'docs/s':>10}{'seconds':>10}{'peak RSS MB':>14}")
    print(
        f"{'psycopg COPY (base)':22}{b_rate:>10,.0f}{baseline['seconds']:>10.1f}"
        f"{baseline['peak_rss_mb']:>14.0f}"
    )
    print(
        f"{'winnow import':22}{o_rate:>10,.0f}{ours['seconds']:>10.1f}{ours['peak_rss_mb']:>14.0f}"
    )
    print(f"ratio winnow/baseline: {o_rate / b_rate:.2f} (goal >= 0.70)")


if __name__ == "__main__":
    main()
