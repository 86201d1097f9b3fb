"""Heuristic steps vs datatrove's own filters, on the same documents, in one process.

    python bench/heuristics_bench.py [--docs 3000] [--batch 1000] [--rounds 2]

(with the project's virtualenv; DATABASE_URL names the server, default
``postgresql://postgres@127.0.0.1:5432/postgres``, and the scratch database
``winnow_bench_heuristics`` is created there, migrated and dropped at the end).

Documents: ``curation.sample_data.build_sample`` (seed 0, at most 3,000 distinct documents:
clean prose, duplicates, boilerplate, markup, short, very long, lists, other languages...).
Beyond 3,000 the list repeats with `` (copy N)`` appended, so that no tokenizer cache can serve
one copy from another (the sample's own exact duplicates, 2 %, stay: real data has them). The
same list, in the same order, feeds every run. Three runs per round, alternating (baseline,
ours, e2e, baseline, ours, e2e, ...):

* ``baseline``: datatrove's ``GopherQualityFilter``, ``GopherRepetitionFilter``,
  ``C4QualityFilter`` and ``FineWebQualityFilter`` with their default thresholds, called
  directly (no executor): for each document, the four filters in that order, each ``.filter()``
  on its own fresh ``datatrove.data.Document`` (C4's filter rewrites ``doc.text``). Document
  major, as a datatrove pipeline streams documents through its filters (and as datatrove's own
  5-entry ``split_into_parts`` cache expects).
* ``ours``: the five steps ``gopher_quality, gopher_repetition, c4_quality, fineweb_quality,
  doc_stats`` with default parameters, ``run(batch)`` over batches of ``--batch`` documents,
  chained: all five steps on one batch, then the next batch. That is the runner's order (a run's
  consecutive cpu steps form one stage, run together on each batch), and the one the steps'
  memoizing tokenizer is made for. No database. Each step's ``run`` is timed too.
* ``e2e``: the real runner on a scratch database, in a child process (``django.setup()``): a
  fresh dataset with the documents imported (``import_from_path``, not timed), then timed:
  ``run_create`` and ``run_batch_execute`` for each of the run's batches in document order, i.e.
  reading documents, the steps, the signal upserts (``signal_rows_write``), batch bookkeeping
  and the end-of-run compaction of the signal partition.

Before each measured run, every per-process tokenizer cache is cleared (ours:
``word_tokenizer.cache_clear()``, then new step instances, whose filters hold the tokenizer;
datatrove's: ``split_into_parts`` and ``load_word_tokenizer``) and spaCy is warmed on a short
text, so that each run starts alike. One untimed warm-up of both sides comes first. Prints the
medians: docs/s (wall and CPU time), the ratio ours/baseline (goal >= 1.0), e2e docs/s, the
docs/s of each step within the chain, whether the steps' verdicts equal datatrove's, and the
load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402  (needs ROOT on sys.path when run as a script)
    DISTINCT_MAX,
    create_database,
    drop_database,
    load,
    read_source,
    warm_texts,
    write_source,
)

BENCH_DB = "winnow_bench_heuristics"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
LANGUAGE = "eng"  # the steps' default and datatrove's Languages.english
STEPS = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "doc_stats")
# The step whose ``<name>_keep`` is the verdict of each baseline filter, in the baseline's order.
FILTER_STEPS = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")
PHASES = ("baseline", "ours", "e2e")
WARM_TEXT = "Warm up the tokenizer. It reads two sentences."
WARM_DOCS = 40


# --- documents -----------------------------------------------------------------------------


# --- caches ----------------------------------------------------------------------------------


def reset_caches() -> None:
    """Forget every tokenization of this process, then load and warm spaCy again.

    Ours: ``word_tokenizer`` is a ``functools.cache``; clearing it makes the next call build a
    new ``MemoTokenizer`` (with empty memos and a new private spaCy pipeline, built here on the
    warm-up text as datatrove's is). Steps built before keep the old one in their datatrove
    filter, so build new step instances after this. Datatrove's: ``split_into_parts`` (an
    ``lru_cache(5)`` of tokenizations) and ``load_word_tokenizer`` (which also holds every
    ``MemoTokenizer`` passed to a filter, with its memos, until cleared).
    """
    from datatrove.utils.text import split_into_parts
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from pipelines.steps.heuristics._datatrove import word_tokenizer

    word_tokenizer.cache_clear()
    split_into_parts.cache_clear()
    load_word_tokenizer.cache_clear()
    gc.collect()
    ours = word_tokenizer(LANGUAGE)
    spacy = ours.inner  # == load_word_tokenizer(LANGUAGE): the baseline's
    spacy.word_tokenize(WARM_TEXT)
    spacy.span_tokenize(WARM_TEXT)
    ours.word_tokenize(WARM_TEXT)
    ours.span_tokenize(WARM_TEXT)


# --- baseline: datatrove's filters -------------------------------------------------------------


def datatrove_filters() -> list[Any]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return [
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
    ]


def run_baseline(texts: Sequence[str]) -> tuple[dict[str, float], list[list[bool]]]:
    """Times and keep-verdicts (one list per filter) of the four filters on every document."""
    from datatrove.data import Document as DatatroveDocument
    from datatrove.pipeline.filters.base_filter import get_filter_result

    filters = datatrove_filters()
    verdicts: list[list[bool]] = [[] for _ in filters]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # as the steps do (numpy on no words)
        wall, cpu = time.perf_counter(), time.process_time()
        for i, text in enumerate(texts):
            for column, dt_filter in zip(verdicts, filters, strict=True):
                keep, _ = get_filter_result(
                    dt_filter.filter(DatatroveDocument(text=text, id=str(i)))
                )
                column.append(bool(keep))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"seconds": wall, "cpu_seconds": cpu}, verdicts


# --- ours: the steps, no database --------------------------------------------------------------


def make_steps() -> list[Any]:
    from pipelines.steps import get_step
    from pipelines.steps.registry import heuristics  # noqa: F401 - registers the steps

    return [get_step(name)() for name in STEPS]


def run_ours(texts: Sequence[str], batch_size: int) -> tuple[dict[str, Any], list[list[bool]]]:
    """Times (total and per step) and ``_keep`` verdicts of the five steps, chained per batch."""
    from pipelines.steps import Document

    documents = [Document(id=i, text=text) for i, text in enumerate(texts)]
    steps = make_steps()  # after reset_caches(): their filters get the new tokenizer
    per_step = dict.fromkeys(STEPS, 0.0)
    keeps: dict[str, list[bool]] = {name: [] for name in FILTER_STEPS}
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(documents), batch_size):
        batch = documents[start : start + batch_size]
        for step in steps:
            started = time.perf_counter()
            values = step.run(batch)
            per_step[step.name] += time.perf_counter() - started
            if step.name in keeps:
                keeps[step.name].extend(values[f"{step.name}_keep"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"seconds": wall, "cpu_seconds": cpu, "steps": per_step}, [
        keeps[name] for name in FILTER_STEPS
    ]


def warm_up(texts: Sequence[str], batch_size: int) -> None:
    """Imports, spaCy's first load and first calls, out of every timing."""
    reset_caches()
    run_baseline(warm_texts(texts, WARM_DOCS))
    reset_caches()
    run_ours(warm_texts(texts, WARM_DOCS), batch_size)


# --- e2e: the runner, with the database (child process) ---------------------------------------


def phase_e2e(source: Path, batch_size: int) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    django.setup()
    from django.db import connection

    from curation.services.datasets import dataset_create
    from curation.services.imports import import_from_path
    from pipelines.models import Pipeline, PipelineRun, RunBatch
    from pipelines.services.definitions import pipeline_create
    from pipelines.services.runs import run_batch_execute, run_create

    texts = read_source(source)
    dataset = dataset_create(name=f"heuristics-bench-{time.time_ns()}")
    job = import_from_path(dataset=dataset, path=source, id_field="id")
    assert job.status == "succeeded", job.error
    assert job.rows_imported == len(texts), (job.rows_imported, len(texts))
    name = f"heuristics-bench-{batch_size}"
    pipeline = Pipeline.objects.filter(name=name).first() or pipeline_create(
        name=name,
        definition=[{"step": step, "params": {}} for step in STEPS],
        batch_size=batch_size,
    )
    warm_up(texts, batch_size)  # not through the runner: its step instances are made below
    reset_caches()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # the import's dirty pages are not the run's to write
    gc.collect()

    started = time.perf_counter()
    run = run_create(pipeline=pipeline, dataset=dataset)
    planned = time.perf_counter()
    batch_ids = list(run.batches.order_by("first_document_id", "pk").values_list("pk", flat=True))
    for batch_id in batch_ids:
        batch = run_batch_execute(batch_id=batch_id)
        assert batch is not None and batch.status == RunBatch.Status.DONE, batch
    seconds = time.perf_counter() - started

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED, (run.status, run.error)
    inside = sum(b.seconds or 0.0 for b in run.batches.all())
    return {
        "docs": len(texts),
        "seconds": seconds,
        "create_seconds": planned - started,
        "read_and_steps_seconds": inside,
        "batches": len(batch_ids),
    }


def run_e2e(args: argparse.Namespace, url: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        WINNOW_LOG_LEVEL="WARNING",
        WINNOW_SKIP_EMBEDDED="1",
    )
    command = [sys.executable, __file__, "--phase", "e2e", "--source", str(args.source)]
    command += ["--batch", str(args.batch)]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"e2e failed:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- database ----------------------------------------------------------------------------------


# --- report ------------------------------------------------------------------------------------


def agreement(baseline: list[list[bool]], ours: list[list[bool]]) -> list[str]:
    """Per filter: how many documents get the same keep verdict from datatrove and the step."""
    lines = []
    for name, theirs, mine in zip(FILTER_STEPS, baseline, ours, strict=True):
        same = sum(a == b for a, b in zip(theirs, mine, strict=True))
        kept = sum(theirs)
        lines.append(f"{name} {same:,}/{len(theirs):,} (datatrove keeps {kept:,})")
    return lines


def report(
    args: argparse.Namespace,
    texts: Sequence[str],
    runs: dict[str, list[dict[str, Any]]],
    verdicts: tuple[list[list[bool]], list[list[bool]]],
    loads: tuple[str, str],
) -> None:
    n = len(texts)

    def median(phase: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[phase])

    def rate(phase: str) -> float:
        return statistics.median(n / r["seconds"] for r in runs[phase])

    chars = sum(map(len, texts))
    sampled = min(n, DISTINCT_MAX)
    copies = ", then suffixed copies of them" if n > sampled else ""
    print(
        f"documents: {n:,} ({sampled:,} from build_sample(seed=0){copies}; {len(set(texts)):,}"
        f" distinct texts: the sample has exact duplicates), {chars / 1e6:.1f} M characters\n"
        f"batch {args.batch:,}; {args.rounds} rounds (baseline, ours, e2e alternating); medians"
    )
    print(
        "order: baseline document-major (the 4 filters on each document in turn);\n"
        "       ours and e2e chained per batch (the 5 steps on a batch, then the next batch),\n"
        "       as the runner runs a stage of consecutive cpu steps"
    )
    print(
        f"load average (1/5/15 min): {loads[0]} at start, {loads[1]} at end; {os.cpu_count()} CPUs"
    )
    print(f"{'':38}{'docs/s':>10}{'wall s':>9}{'cpu s':>9}")
    rows = (
        ("datatrove's 4 filters (baseline)", "baseline"),
        ("winnow 5 steps, no DB (ours)", "ours"),
    )
    for label, phase in rows:
        wall, cpu = median(phase, "seconds"), median(phase, "cpu_seconds")
        print(f"{label:38}{rate(phase):>10,.0f}{wall:>9.2f}{cpu:>9.2f}")
    e2e_wall = median("e2e", "seconds")
    print(
        f"{'winnow runner end to end, DB writes':38}{rate('e2e'):>10,.0f}{e2e_wall:>9.2f}{'-':>9}"
    )
    print("  ours per step, within the chain:")
    for name in STEPS:
        seconds = statistics.median(r["steps"][name] for r in runs["ours"])
        print(f"  {name:36}{n / seconds:>10,.0f}{seconds:>9.2f}")
    create = median("e2e", "create_seconds")
    inside = median("e2e", "read_and_steps_seconds")
    print(
        f"  e2e split ({runs['e2e'][0]['batches']} batches): run_create {create:.2f} s, "
        f"read documents + steps {inside:.2f} s,\n"
        f"  signal writes + batch bookkeeping + compaction {e2e_wall - create - inside:.2f} s"
    )
    ratio = rate("ours") / rate("baseline")
    cpu_ratio = median("baseline", "cpu_seconds") / median("ours", "cpu_seconds")
    print(f"ratio ours/baseline: {ratio:.2f} (goal >= 1.00); by CPU time {cpu_ratio:.2f}")
    print(f"ratio e2e/baseline: {rate('e2e') / rate('baseline'):.2f}")
    print("same keep verdict as datatrove (documents):")
    for line in agreement(*verdicts):
        print(f"  {line}")


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--phase", choices=["e2e"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.docs < 1 or args.batch < 1 or args.rounds < 1:
        parser.error("--docs, --batch and --rounds must be positive")

    if args.phase == "e2e":
        print(json.dumps(phase_e2e(args.source, args.batch)))
        return

    base = os.environ.get("DATABASE_URL", DEFAULT_DSN)
    start_load = load()
    with tempfile.TemporaryDirectory(prefix="winnow-heuristics-bench-") as tmp:
        args.source = Path(tmp) / f"heuristics_{args.docs}.jsonl"
        print(f"building {args.docs:,} documents ...", file=sys.stderr)
        texts = write_source(args.source, args.docs)
        warm_up(texts, args.batch)
        runs: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
        verdicts: tuple[list[list[bool]], list[list[bool]]] = ([], [])
        try:
            url = create_database(base, BENCH_DB)
            for round_ in range(1, args.rounds + 1):
                for phase in PHASES:
                    if phase == "baseline":
                        reset_caches()
                        result, theirs = run_baseline(texts)
                        verdicts = (theirs, verdicts[1])
                    elif phase == "ours":
                        reset_caches()
                        result, mine = run_ours(texts, args.batch)
                        verdicts = (verdicts[0], mine)
                    else:
                        result = run_e2e(args, url)
                    runs[phase].append(result)
                    print(
                        f"round {round_} {phase}: {len(texts) / result['seconds']:,.0f} docs/s"
                        f" (load {load()})",
                        file=sys.stderr,
                    )
        finally:
            drop_database(base, BENCH_DB)
    report(args, texts, runs, verdicts, (start_load, load()))


if __name__ == "__main__":
    main()
