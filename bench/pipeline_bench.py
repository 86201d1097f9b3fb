"""End to end: the default "web-quality" pipeline over N documents on real workers.

    python bench/pipeline_bench.py [--docs 1000000] [--workers 2]

Builds N documents from the offline sample (its recorded noise included; copies
get a unique suffix so that no cache sees the same text twice), imports them into
a scratch database (timed apart), starts ``--workers`` Celery worker processes,
runs "web-quality" (every heuristic step, language id, PII, exact and MinHash
dedup) and waits for it. Prints the import and run wall times, docs/s, each
step's compute speed in one worker, and the peak RSS of a worker (its import
child processes included). As a reference measured in the same run, the five
heuristic steps alone run in this process over the first 2,000 documents, and
the run's rate is printed as a ratio to it (several workers and the other steps
included, so it can exceed 1 with enough cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import db_url  # noqa: E402  (needs ROOT on sys.path when run as a script)

BENCH_DB = "winnow_bench_pipeline"
HEURISTICS = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "doc_stats")


def make_source(path: Path, docs: int) -> None:
    from curation.sample_data import build_sample

    sample = path.with_suffix(".sample.jsonl")
    build_sample(sample)
    rows = [orjson.loads(line) for line in sample.read_bytes().splitlines()]
    with open(path, "wb") as out:
        for i in range(docs):
            row = dict(rows[i % len(rows)])
            copy = i // len(rows)
            if copy:
                row["id"] = f"{row['id']}-c{copy}"
                row["text"] = f"{row['text']}\n(copy {copy})"
            out.write(orjson.dumps(row) + b"\n")


def reference_rate(path: Path, limit: int = 2000) -> float:
    """The heuristic steps alone, in this process, over the first documents."""
    import pipelines.steps.registry  # noqa: F401
    from pipelines.steps.base import REGISTRY, Document

    docs = []
    with open(path, "rb") as lines:
        for i, line in enumerate(lines):
            if i >= limit:
                break
            row = orjson.loads(line)
            docs.append(Document(id=i, text=row["text"]))
    steps = [REGISTRY[name]() for name in HEURISTICS]
    started = time.perf_counter()
    for start in range(0, len(docs), 1000):
        for step in steps:
            step.run(docs[start : start + 1000])
    return len(docs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = db_url(base, BENCH_DB)
    source = ROOT / "var" / "bench" / f"pipeline_{args.docs}.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {args.docs:,} documents to {source} ...", file=sys.stderr)
    make_source(source, args.docs)
    reference = reference_rate(source)

    import psycopg

    with psycopg.connect(db_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    env = dict(os.environ, DATABASE_URL=url, WINNOW_LOG_LEVEL="WARNING")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        os.environ.update(DATABASE_URL=url, WINNOW_LOG_LEVEL="WARNING")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
        import django

        django.setup()
        from curation.services.datasets import dataset_create
        from curation.services.imports import import_from_path
        from pipelines.models import Pipeline, PipelineRun
        from pipelines.selectors import run_progress
        from pipelines.services.runs import run_create, run_dispatch

        dataset = dataset_create(name="bench")
        started = time.perf_counter()
        job = import_from_path(dataset=dataset, path=source, id_field="id")
        import_seconds = time.perf_counter() - started
        for n in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "curation",
                        "worker",
                        "-Q",
                        "cpu,gpu",
                        "--pool",
                        "solo",
                        "-n",
                        f"bench{n}@%h",
                        "--loglevel",
                        "WARNING",
                    ],
                    env=env,
                    cwd=ROOT,
                )
            )
        time.sleep(5)
        run = run_create(pipeline=Pipeline.objects.get(name="web-quality"), dataset=dataset)
        started = time.perf_counter()
        run_dispatch(run=run)
        peak = 0
        while not PipelineRun.objects.get(pk=run.pk).is_finished:
            for worker in workers:
                try:
                    proc = psutil.Process(worker.pid)
                    rss = proc.memory_info().rss + sum(
                        c.memory_info().rss for c in proc.children(recursive=True)
                    )
                except psutil.Error:
                    continue
                peak = max(peak, rss)
            time.sleep(0.5)
        wall = time.perf_counter() - started
        run.refresh_from_db()
        rate = job.rows_imported / wall
        print(
            f"documents: {job.rows_imported:,}; {args.workers} worker processes; "
            f"load avg {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs"
        )
        print(f"import: {import_seconds:.1f} s ({job.rows_imported / import_seconds:,.0f} docs/s)")
        print(
            f"web-quality run: {run.status}, {wall:.1f} s wall, {rate:,.0f} docs/s, "
            f"peak worker RSS {peak / 2**20:,.0f} MB"
        )
        for step in run_progress(run=run):
            speed = f"{step.docs_per_second:,.0f}" if step.docs_per_second else "-"
            corpus = f"  (dataset-wide phase {step.corpus_status})" if step.corpus_status else ""
            print(f"  {step.step:20} {speed:>10} docs/s in one worker{corpus}")
        print(
            f"reference, heuristic steps alone in-process: {reference:,.0f} docs/s; "
            f"ratio run/reference: {rate / reference:.2f}"
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(db_url(base, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
