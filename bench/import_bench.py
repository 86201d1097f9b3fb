"""Import throughput: Winnow's streaming import vs a bare psycopg COPY of the same rows.

    python bench/import_bench.py [--rows 1000000] [--rounds 2]

Three runs over the same 1M-line JSONL file, into ``curation_document`` of a
fresh database each time:

* ``copy``: the baseline of the goal. The exact rows the import writes (same
  ids, text, meta, hash and counts), rendered in COPY format beforehand (not
  timed), streamed from disk by psycopg in one COPY: the database's own cost.
* ``json+copy``: a minimal Python loader for reference: orjson-parse each line
  and ``write_row`` text, id and meta (no validation, no hash, no counts).
* ``winnow``: the real import (``import_from_path``: validation, hashing,
  counts, batches with checkpoints, job progress, rejection handling).

Each run gets its own process (so that its peak
RSS is its own) and a fresh database cloned from a migrated template after a
CHECKPOINT, so that no run pays for the previous one's dirty pages; the sides
alternate (baseline, winnow, baseline, winnow, ...) and each side's median is
compared. Prints docs/s, the ratio (goal >= 0.7) and peak RSS (the import's
reader child process included). Scratch databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import db_url  # noqa: E402  (needs ROOT on sys.path when run as a script)

BENCH_DB = "winnow_bench_import"
TEMPLATE_DB = "winnow_bench_import_tpl"
PHASES = ("copy", "json+copy", "winnow")
WORDS = (
    "the data model training language corpus quality filter document token web page "
    "which would their about there people into after first also new because any these "
    "give day most us time year work back use way even want well only"
).split()


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def admin_conn(base: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(db_url(base, "postgres"), autocommit=True)


COLUMNS = (
    "dataset_id, external_id, text, meta, content_hash, char_count, word_count, line_count, "
    "import_job_id"
)


def render_rows(source: Path, target: Path) -> None:
    """The rows the import will write, in COPY text format (dataset 1, job 1)."""
    sys.path.insert(0, str(ROOT))
    from curation.services.batches import BatchSpec, prepare_batches

    spec = BatchSpec(root=str(source), dataset_id=1, job_id=1, id_field="id")
    with open(target, "wb") as out:
        for batch in prepare_batches(spec):
            out.write(batch.copy_data)


def phase_copy(url: str, rows_file: Path) -> dict[str, float]:
    import psycopg

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY curation_document ({COLUMNS}) FROM STDIN") as cp:
            with open(rows_file, "rb") as f:
                while chunk := f.read(1 << 20):
                    cp.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - started
        (rows,) = conn.execute("SELECT count(*) FROM curation_document").fetchone() or (0,)
    return {"rows": rows, "seconds": elapsed}


def phase_json_copy(url: str, source: Path) -> dict[str, float]:
    import orjson
    import psycopg

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        rows = 0
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY curation_document (dataset_id, external_id, text, meta, content_hash, "
                "char_count, word_count, line_count) FROM STDIN"
            ) as copy,
        ):
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
        [
            sys.executable,
            __file__,
            "--phase",
            name,
            "--source",
            str(args.source),
            "--rows-file",
            str(args.rows_file),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"phase {name} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_database(base: str) -> str:
    with admin_conn(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB} TEMPLATE {TEMPLATE_DB}")
        conn.execute("CHECKPOINT")
    return db_url(base, BENCH_DB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--phase", choices=list(PHASES), default=None)
    parser.add_argument("--rows-file", type=Path, default=None)
    args = parser.parse_args()
    args.source = args.source or ROOT / "var" / "bench" / f"import_{args.rows}.jsonl"
    args.rows_file = args.rows_file or args.source.with_suffix(".copy")

    if args.phase:
        url = os.environ["DATABASE_URL"]
        if args.phase == "copy":
            result = phase_copy(url, args.rows_file)
        elif args.phase == "json+copy":
            result = phase_json_copy(url, args.source)
        else:
            result = phase_winnow(args.source)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child
        # would report its parent's peak. The import's reader child has exited by now:
        # for it only RUSAGE_CHILDREN remains, an upper bound for the same reason.
        result["peak_rss_mb"] = peak_rss_mb()
        result["child_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(result))
        return

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    print(f"writing {args.rows:,} rows to {args.source} ...", file=sys.stderr)
    make_source(args.source, args.rows)
    render_rows(args.source, args.rows_file)
    size_mb = args.source.stat().st_size / 1e6
    with admin_conn(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            env=dict(os.environ, DATABASE_URL=db_url(base, TEMPLATE_DB)),
            cwd=ROOT,
            check=True,
        )
        for round_ in range(args.rounds):
            for name in PHASES:
                result = run_phase(name, args, fresh_database(base))
                runs[name].append(result)
                rate = result["rows"] / result["seconds"]
                print(f"round {round_ + 1} {name}: {rate:,.0f} docs/s", file=sys.stderr)
    finally:
        with admin_conn(base) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")

    def median_rate(name: str) -> float:
        return statistics.median(r["rows"] / r["seconds"] for r in runs[name])

    def peak(name: str) -> float:
        return max(max(r["peak_rss_mb"], r["child_peak_rss_mb"]) for r in runs[name])

    b_rate, o_rate = median_rate("copy"), median_rate("winnow")
    print(f"source: {args.rows:,} JSONL lines, {size_mb:,.0f} MB; {args.rounds} rounds, medians")
    print(f"{'':22}{'docs/s':>10}{'seconds':>10}{'peak RSS MB':>14}")
    for label, name, rate in (
        ("COPY same rows (base)", "copy", b_rate),
        ("json+copy (reference)", "json+copy", median_rate("json+copy")),
        ("winnow import", "winnow", o_rate),
    ):
        print(f"{label:22}{rate:>10,.0f}{args.rows / rate:>10.1f}{peak(name):>14.0f}")
    print(f"ratio winnow/baseline: {o_rate / b_rate:.2f} (goal >= 0.70)")


if __name__ == "__main__":
    main()
