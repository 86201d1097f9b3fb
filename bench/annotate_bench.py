"""The annotation queue under load: 50 annotators asking for their next item, 1M items.

    python bench/annotate_bench.py [--items 1000000] [--annotators 50] [--processes 5]
        [--seconds 30] [--k 1,3] [--think-ms 1000,0] [--keep] [--reuse]

A scratch database (``winnow_bench_annotate``, migrated by manage.py) gets a dataset
of ``--items`` short documents (COPY) and, per value of ``--k``, a project with one
single-label question whose items are every document (``items_add_from_dataset``:
one INSERT ... SELECT, timed), ``--annotators`` annotator members, then VACUUM
ANALYZE.

The load runs in ``--processes`` other processes (this script with ``--load``),
each with ``annotators / processes`` threads, every thread on its own PostgreSQL
connection over TCP on loopback, all starting at the same instant. Each thread is
one annotator in a closed loop for ``--seconds``: ``assignment_next`` (timed), wait
the think time, ``annotation_submit`` (timed). One round per k and think time in
``--think-ms``: 1000 ms is already ten times the pace of a fast human team (one item
every ten seconds each); 0 is a stress test that saturates the machine, where
latency is mostly queueing for the CPU.

Reported per k: calls, calls/s, p50 / p95 / p99 / max latency of assignment_next and
of annotation_submit (client side: includes Python, the GIL shared with the
process's other threads, and the round trips), and double assignments counted two
ways: items handed to more than k annotators in the threads' logs, and items with
more than k leased-or-submitted assignments in the database (both must be 0; leases
last longer than the run, so none expires). The plan of the queue's search is
printed once. Goal: p95 < 100 ms, zero double assignments. Progress goes to stderr,
results to stdout; the scratch database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import create_database, db_url, drop_database, load  # noqa: E402

BENCH_DB = "winnow_bench_annotate"
GOAL_P95_MS = 100.0
QUESTIONS = [{"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}}]
ANSWER = {"quality": {"label": "good"}}
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["WINNOW_SKIP_EMBEDDED"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    import django

    django.setup()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------------ load side


def _annotator(
    project_id: int, user_id: int, start_at: float, until: float, think: float, out: dict
) -> None:
    """One annotator's closed loop, on this thread's own connection."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotate.models import AnnotationProject
    from annotate.services.annotations import annotation_submit
    from annotate.services.assignments import assignment_next

    try:
        project = AnnotationProject.objects.get(pk=project_id)
        user = get_user_model().objects.get(pk=user_id)
        connection.ensure_connection()
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < until:
            t0 = time.perf_counter()
            assignment = assignment_next(project=project, user=user)
            out["next_ms"].append((time.perf_counter() - t0) * 1000)
            if assignment is None:
                break
            out["items"].append(assignment.item_id)
            if think:
                time.sleep(think)
            t0 = time.perf_counter()
            annotation_submit(assignment=assignment, values=ANSWER, time_spent_ms=1)
            out["submit_ms"].append((time.perf_counter() - t0) * 1000)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out["errors"].append(repr(exc))
    finally:
        connection.close()


def run_load(args: argparse.Namespace) -> int:
    """The ``--load`` process: one thread per annotator id; results as JSON to ``--out``."""
    _setup_django(args.url)
    users = [int(u) for u in args.users.split(",")]
    results: dict[int, dict[str, list[Any]]] = {
        u: {"next_ms": [], "submit_ms": [], "items": [], "errors": []} for u in users
    }
    threads = [
        threading.Thread(
            target=_annotator,
            args=(
                args.project,
                u,
                args.start_at,
                args.start_at + args.seconds,
                float(args.think_ms) / 1000,
                results[u],
            ),
        )
        for u in users
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(args.out).write_text(json.dumps(results))
    return 0


# ---------------------------------------------------------------------------- parent side


def copy_documents(dataset_id: int, docs: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY curation_document (dataset_id, external_id, text, meta, content_hash, "
            "char_count, word_count, line_count) FROM STDIN"
        ) as copy:
            for i in range(docs):
                text = f"Document number {i} of the annotation benchmark."
                copy.write_row((dataset_id, f"doc-{i:07d}", text, "{}", i, len(text), 7, 1))


def prepare(args: argparse.Namespace, ks: list[int]) -> dict[int, tuple[int, list[int]]]:
    """The dataset, one project per k with all documents as items, and the annotators."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotate.models import AnnotationProject, ProjectMember
    from annotate.services.items import items_add_from_dataset
    from annotate.services.projects import project_create
    from curation.services.datasets import dataset_create, dataset_recount

    if args.reuse:
        projects = {}
        for k in ks:
            project = AnnotationProject.objects.get(name=f"bench-k{k}")
            users = list(
                ProjectMember.objects.filter(project=project).values_list("user_id", flat=True)
            )
            projects[k] = (project.pk, users[: args.annotators])
        return projects
    dataset = dataset_create(name="annotate-bench")
    started = time.perf_counter()
    copy_documents(dataset.pk, args.items)
    dataset_recount(dataset=dataset)
    log(f"{args.items:,} documents COPYed in {time.perf_counter() - started:.1f}s")
    User = get_user_model()
    annotators = User.objects.bulk_create(
        [User(username=f"annotator-{i:03d}") for i in range(args.annotators)]
    )
    projects = {}
    for k in ks:
        project = project_create(
            dataset=dataset, name=f"bench-k{k}", questions=QUESTIONS, k=k, lease_seconds=3600
        )
        added = items_add_from_dataset(project=project)
        log(f"project k={k}: {added.added:,} items added in {added.seconds:.1f}s (one INSERT)")
        ProjectMember.objects.bulk_create(
            [
                ProjectMember(project=project, user=u, role=ProjectMember.Role.ANNOTATOR)
                for u in annotators
            ]
        )
        projects[k] = (project.pk, [u.pk for u in annotators])
    connection.close()
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f}s")
    return projects


def explain(project_id: int, user_id: int, k: int) -> str:
    from django.db import connection

    from annotate.services.assignments import _CANDIDATE

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + _CANDIDATE,
            {"project": project_id, "user": user_id, "k": k},
        )
        lines = [row[0] for row in cursor.fetchall()]
    return "\n".join(f"    {line}" for line in lines)


def run_round(
    args: argparse.Namespace, url: str, k: int, think_ms: float, project_id: int, users: list[int]
) -> dict[str, Any]:
    """Start the load processes on one project, wait, gather their logs and check the DB."""
    from django.db import connection

    per = [users[i :: args.processes] for i in range(args.processes)]
    start_at = time.time() + 8.0  # time for every process to import Django and connect
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for n, group in enumerate(per):
            out = Path(tmp) / f"load-{n}.json"
            cmd = [
                sys.executable,
                __file__,
                "--load",
                "--url",
                url,
                "--project",
                str(project_id),
                "--users",
                ",".join(map(str, group)),
                "--start-at",
                str(start_at),
                "--seconds",
                str(args.seconds),
                "--think-ms",
                str(think_ms),
                "--out",
                str(out),
            ]
            procs.append((subprocess.Popen(cmd, cwd=ROOT), out))
        for proc, _ in procs:
            if proc.wait(timeout=args.seconds + 300) != 0:
                raise RuntimeError(f"a load process failed with {proc.returncode}")
        results: dict[str, Any] = {}
        for _, out in procs:
            results.update(json.loads(out.read_text()))
    next_ms = [v for r in results.values() for v in r["next_ms"]]
    submit_ms = [v for r in results.values() for v in r["submit_ms"]]
    errors = [e for r in results.values() for e in r["errors"]]
    handed = Counter(item for r in results.values() for item in r["items"])
    repeats = sum(len(r["items"]) - len(set(r["items"])) for r in results.values())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT item_id FROM annotate_assignment "
            "WHERE project_id = %s AND state IN ('leased', 'submitted') "
            "GROUP BY item_id HAVING count(*) > %s) over_k",
            [project_id, k],
        )
        (db_over_k,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM annotate_item WHERE project_id = %s AND status = 'complete'",
            [project_id],
        )
        (complete,) = cursor.fetchone()
    return {
        "k": k,
        "think_ms": think_ms,
        "next_ms": next_ms,
        "submit_ms": submit_ms,
        "errors": errors,
        "log_over_k": sum(1 for n in handed.values() if n > k),
        "repeats": repeats,
        "db_over_k": db_over_k,
        "complete": complete,
        "plan": explain(project_id, users[0], k),
    }


def report(args: argparse.Namespace, rounds: list[dict[str, Any]], load_start: str) -> None:
    print(
        f"annotation queue: {args.items:,} items, {args.annotators} annotators in "
        f"{args.processes} processes, {args.seconds:.0f} s per round"
    )
    print(f"load average at start: {load_start}; at end: {load()}; cores: {os.cpu_count()}")
    for r in rounds:
        nxt, sub = r["next_ms"], r["submit_ms"]
        p95 = percentile(nxt, 0.95)
        print(f"k={r['k']}, think {r['think_ms']:.0f} ms:")
        print(
            f"  assignment_next   {len(nxt):>7,} calls {len(nxt) / args.seconds:7.1f}/s  "
            f"p50 {statistics.median(nxt):6.1f} ms  p95 {p95:6.1f} ms  "
            f"p99 {percentile(nxt, 0.99):6.1f} ms  max {max(nxt):7.1f} ms  "
            f"{'OK' if p95 < GOAL_P95_MS else 'OVER'} (goal p95 < {GOAL_P95_MS:.0f} ms)"
        )
        print(
            f"  annotation_submit {len(sub):>7,} calls {len(sub) / args.seconds:7.1f}/s  "
            f"p50 {statistics.median(sub):6.1f} ms  p95 {percentile(sub, 0.95):6.1f} ms  "
            f"p99 {percentile(sub, 0.99):6.1f} ms  max {max(sub):7.1f} ms"
        )
        print(
            f"  double assignments: {r['log_over_k']} items over k in the logs, "
            f"{r['db_over_k']} in the database, {r['repeats']} repeats to one annotator; "
            f"errors: {len(r['errors'])}; items complete: {r['complete']:,}"
        )
        for error in r["errors"][:5]:
            print(f"    error: {error}")
    print("plan of the queue's search (last round, after the run):")
    print(rounds[-1]["plan"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--processes", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--k", default="1,3", help="one round (and project) per value")
    ap.add_argument("--think-ms", default="1000,0", help="one round per value (per k)")
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help=f"keep database {BENCH_DB}")
    ap.add_argument("--reuse", action="store_true", help=f"measure a kept {BENCH_DB} again")
    # The load processes' own arguments.
    ap.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--project", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--users", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.load:
        return run_load(args)

    ks = [int(k) for k in args.k.split(",")]
    load_start = load()
    if args.reuse:
        url = db_url(args.dsn, BENCH_DB)
    else:
        log(f"scratch database {BENCH_DB}")
        url = create_database(args.dsn, BENCH_DB)
    _setup_django(url)
    from django.db import connection

    try:
        projects = prepare(args, ks)
        rounds = []
        for k in ks:
            for think in (float(t) for t in str(args.think_ms).split(",")):
                log(f"round k={k}, think {think:.0f} ms: {args.annotators} annotators")
                project_id, users = projects[k]
                rounds.append(run_round(args, url, k, think, project_id, users))
    finally:
        connection.close()
        if not args.keep:
            drop_database(args.dsn, BENCH_DB)
    log("done")
    report(args, rounds, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
