"""MinHash signatures: Winnow's ``minhash_dedup`` vs datatrove's ``MinhashDedupSignature``.

    python bench/minhash_bench.py [--docs 20000] [--rounds 2]

(with the project's virtualenv; DATABASE_URL names the server, default
``postgresql://postgres@127.0.0.1:5432/postgres``, and the scratch database
``winnow_bench_minhash`` is created there, migrated and dropped at the end).

Documents: ``curation.sample_data.build_sample`` (seed 0, at most 3,000 distinct documents).
Beyond 3,000 the list repeats with `` (copy N)`` appended: each copy is a near duplicate of its
original (one added 2-word tail), so the e2e run finds groups of about ``docs / 3000``
documents. The same list, in the same order, feeds every run. Three runs per round,
alternating (baseline, ours, e2e, baseline, ours, e2e, ...):

* ``baseline``: datatrove's first MinHash stage, ``MinhashDedupSignature(output_folder=<fresh
  local temp folder>, config=MinhashConfig(...)).run(iter(documents), rank=0, world_size=1)``,
  no executor, over ``datatrove.data.Document`` objects built beforehand. Settings matched to
  ours: ``n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1`` (so the same ``a``, ``b`` of
  the universal hash: checked) and ``HashConfig(precision=32, hash_fc="xxhash")``. 32 bits is
  the closer precision: our shingle hashes enter the permutation masked to 32 bits and our
  signature values are masked to 32 bits, as datatrove's are at precision 32 (it hashes
  shingles with xxh32, we with xxh3-64 then mask). Left at datatrove's defaults, as FineWeb
  runs it, and *not* like ours: the text normalisation (``simplify_text``: lowercase, numbers
  to 0, punctuation removed, diacritics folded; ours lowercases only) and the word tokenizer
  (spaCy ``blank("en")``, datatrove's English default; ours ``str.split``). Timed: the whole
  ``run()``, i.e. shingles, signatures, the 14 bucket files written, then each sorted,
  rewritten and verified (all that the step does); the split at the moment the documents are
  exhausted is reported too.
* ``ours``: ``MinHashDedup().band_buckets(text)`` for every document (shingles, signature,
  the 14 band bucket ids), default parameters; no database.
* ``e2e``: the real runner on a scratch database. A child process (``django.setup()``) makes
  a fresh dataset and imports the documents (``import_from_path``, not timed); a second child
  makes (once) the pipeline ``[{"step": "minhash_dedup"}]`` (batch 1,000), then times
  ``run_create`` and ``run_batch_execute`` for each of the run's batches in id order (the
  document batches, which have nothing to compute, then the corpus phase
  ``minhash_dedup_phase``: documents streamed from PostgreSQL, band buckets COPYed into a temp
  table and grouped there, candidates verified by exact Jaccard, groups and signals written).
  The runner's ``_queue`` is replaced by one that only stamps ``queued_at``: nothing is sent to
  the Celery broker, the corpus batch is executed here. The corpus phase's parts are timed by
  thin wrappers (document reads, ``band_buckets``, verification ``shingles``,
  ``_write_groups``; the rest is COPY, the SQL grouping, pair building, Jaccard and
  union-find). Peak RSS: the second child's ``VmHWM`` (``/proc/self/status``) at the end (the
  import's process is not counted), and its ``VmRSS`` just before the timed part (Django and
  the models). Not ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: Linux keeps the largest of
  the parent's peak across fork + exec, so a child of this (spaCy-loaded) process would report
  the parent's peak; it is printed alongside to show it.

One untimed warm-up of the baseline and ours (other texts) comes first. Prints the medians:
docs/s (wall and CPU time), the ratio ours/baseline for signatures (goal >= 1.0), e2e docs/s
and groups, how many documents get a near-duplicate candidate on each side, datatrove's
tokenization alone, and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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

BENCH_DB = "winnow_bench_minhash"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH_SIZE = 1000
PHASES = ("baseline", "ours", "e2e")
WARM_DOCS = 200
TOKENIZE_DOCS = 3000
# Ours: MinHashDedup's defaults (ngram 5, bands 14, rows 8, seed 1).
N_GRAMS, BANDS, ROWS, SEED, PRECISION = 5, 14, 8, 1, 32


# --- documents -----------------------------------------------------------------------------


# --- baseline: datatrove ---------------------------------------------------------------------


def datatrove_step(folder: str) -> Any:
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(
        n_grams=N_GRAMS,
        num_buckets=BANDS,
        hashes_per_bucket=ROWS,
        seed=SEED,
        hash_config=HashConfig(precision=PRECISION, hash_fc="xxhash"),
    )
    return MinhashDedupSignature(output_folder=folder, config=config)


def same_permutations() -> bool:
    """Whether datatrove's (a, b) equal ours: the same universal hashes of the shingles."""
    import numpy as np

    from pipelines.steps.dedup import MinHashDedup

    with tempfile.TemporaryDirectory() as tmp:
        a, b = datatrove_step(tmp).parameters
    ours_a, ours_b = MinHashDedup()._permutations()
    return bool(np.array_equal(a.ravel(), ours_a) and np.array_equal(b.ravel(), ours_b))


def _timed(documents: Sequence[Any], marks: dict[str, float]) -> Iterator[Any]:
    """The documents, then the time at which the step asked past the last one."""
    yield from documents
    marks["exhausted"] = time.perf_counter()


def candidates_datatrove(folder: Path) -> set[int]:
    """Document indexes sharing a whole bucket signature with another document."""
    import numpy as np

    found: set[int] = set()
    for band in range(BANDS):
        raw = np.fromfile(folder / f"bucket_{band:03d}" / "00000.minhash.sig", dtype="<u4")
        records = raw.reshape(-1, ROWS + 1)
        _, inverse, counts = np.unique(
            records[:, :ROWS], axis=0, return_inverse=True, return_counts=True
        )
        found.update(records[counts[inverse.ravel()] > 1, ROWS].tolist())
    return found


def run_baseline(texts: Sequence[str], candidates: bool = False) -> dict[str, Any]:
    """Times of one ``MinhashDedupSignature.run`` over every document (fresh output folder)."""
    from datatrove.data import Document as DatatroveDocument

    documents = [DatatroveDocument(text=text, id=str(i)) for i, text in enumerate(texts)]
    with tempfile.TemporaryDirectory(prefix="winnow-minhash-bench-") as tmp:
        step = datatrove_step(tmp)
        step.word_tokenizer.word_tokenize("Load the tokenizer.")  # lazily built: not timed
        marks: dict[str, float] = {}
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        step.run(_timed(documents, marks), rank=0, world_size=1)
        end, cpu = time.perf_counter(), time.process_time() - cpu
        written = sum(p.stat().st_size for p in Path(tmp).rglob("*.minhash.sig"))
        result: dict[str, Any] = {
            "seconds": end - wall,
            "cpu_seconds": cpu,
            "signature_seconds": marks["exhausted"] - wall,
            "sort_seconds": end - marks["exhausted"],
            "bytes": written,
        }
        if candidates:
            result["candidates"] = sorted(candidates_datatrove(Path(tmp)))
    return result


def tokenize_datatrove(texts: Sequence[str]) -> float:
    """Seconds of datatrove's ``simplify_text`` + spaCy ``word_tokenize`` alone over ``texts``."""
    from datatrove.utils.text import simplify_text

    tokenizer = datatrove_step(tempfile.gettempdir()).word_tokenizer
    config = datatrove_step(tempfile.gettempdir()).config.norm_config
    started = time.perf_counter()
    for text in texts:
        tokenizer.word_tokenize(simplify_text(text, config))
    return time.perf_counter() - started


# --- ours: band buckets, no database -----------------------------------------------------------


def run_ours(texts: Sequence[str], candidates: bool = False) -> dict[str, Any]:
    from pipelines.steps.dedup import MinHashDedup

    step = MinHashDedup()
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    buckets = [step.band_buckets(text) for text in texts]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result: dict[str, Any] = {"seconds": wall, "cpu_seconds": cpu}
    if candidates:
        result["candidates"] = sorted(candidates_ours(buckets))
    return result


def candidates_ours(buckets: Sequence[list[int] | None]) -> set[int]:
    """Document indexes sharing a band bucket with another document."""
    import numpy as np

    rows = [(i, b) for i, b in enumerate(buckets) if b is not None]
    ids = np.array([i for i, _ in rows], dtype=np.int64)
    table = np.array([b for _, b in rows], dtype=np.int64)
    found: set[int] = set()
    for band in range(BANDS):
        _, inverse, counts = np.unique(table[:, band], return_inverse=True, return_counts=True)
        found.update(ids[counts[inverse] > 1].tolist())
    return found


def warm_up(texts: Sequence[str]) -> None:
    """Imports, spaCy's first load, numpy's first calls: out of every timing."""
    run_baseline(warm_texts(texts, WARM_DOCS))
    run_ours(warm_texts(texts, WARM_DOCS))


# --- e2e: the runner, with the database (child process) ---------------------------------------


class _Clock:
    """Seconds spent in wrapped callables, by label (nested time is not subtracted)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.depth = 0

    def wrap(self, label: str, func: Callable[..., Any], outer_only: bool = False) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if outer_only and self.depth:
                return func(*args, **kwargs)
            self.depth += 1
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.depth -= 1
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        return timed

    def wrap_iter(self, label: str, func: Callable[..., Iterator[Any]]) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            iterator = func(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                finally:
                    self.seconds[label] = (
                        self.seconds.get(label, 0.0) + time.perf_counter() - started
                    )
                yield item

        return timed


def instrument() -> _Clock:
    """Time the corpus phase's parts; keep the runner from sending tasks to the broker."""
    from django.utils import timezone

    from pipelines.models import RunBatch
    from pipelines.services import pairs
    from pipelines.services.corpus import minhash
    from pipelines.services.runs import dispatch
    from pipelines.steps.dedup import MinHashDedup

    def queue_nothing(run: Any, batches: Sequence[tuple[int, int]], countdown: float = 0) -> None:
        RunBatch.objects.filter(pk__in=[pk for pk, _ in batches]).update(queued_at=timezone.now())

    dispatch._queue = queue_nothing  # type: ignore[assignment]
    clock = _Clock()
    pairs.document_chunks = clock.wrap_iter("read documents", pairs.document_chunks)  # type: ignore[assignment]
    minhash._write_groups = clock.wrap("write groups + signals", minhash._write_groups)  # type: ignore[assignment]
    band_buckets, shingles = MinHashDedup.band_buckets, MinHashDedup.shingles
    MinHashDedup.band_buckets = clock.wrap("band_buckets", band_buckets)  # type: ignore[method-assign]
    MinHashDedup.shingles = clock.wrap(  # type: ignore[method-assign]
        "verify: shingles", shingles, outer_only=True
    )
    return clock


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    django.setup()


def phase_import(source: Path) -> dict[str, Any]:
    """A fresh dataset holding the documents (its own process: not in the e2e's peak RSS)."""
    _django()
    from curation.services.datasets import dataset_create
    from curation.services.imports import import_from_path

    texts = read_source(source)
    dataset = dataset_create(name=f"minhash-bench-{time.time_ns()}")
    job = import_from_path(dataset=dataset, path=source, id_field="id")
    assert job.status == "succeeded", job.error
    assert job.rows_imported == len(texts), (job.rows_imported, len(texts))
    return {"dataset": dataset.pk}


def _status_mb(field: str) -> float:
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``: now, ``VmHWM``: peak), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def phase_e2e(dataset_id: int) -> dict[str, Any]:
    _django()
    from django.db import connection

    from curation.models import Dataset, DuplicateGroup, DuplicateMember
    from pipelines.models import Pipeline, PipelineRun, RunBatch
    from pipelines.services.corpus import run_key
    from pipelines.services.definitions import pipeline_create
    from pipelines.services.runs import run_batch_execute, run_create

    dataset = Dataset.objects.get(pk=dataset_id)
    name = "minhash-bench"
    pipeline = Pipeline.objects.filter(name=name).first() or pipeline_create(
        name=name, definition=[{"step": "minhash_dedup"}], batch_size=BATCH_SIZE
    )
    clock = instrument()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # the import's dirty pages are not the run's to write
    gc.collect()
    rss_before = _status_mb("VmRSS")

    started = time.perf_counter()
    run = run_create(pipeline=pipeline, dataset=dataset)
    batch_ids = list(run.batches.order_by("pk").values_list("pk", flat=True))
    for batch_id in batch_ids:
        batch = run_batch_execute(batch_id=batch_id)
        assert batch is not None and batch.status == RunBatch.Status.DONE, batch
    seconds = time.perf_counter() - started

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED, (run.status, run.error)
    corpus = run.batches.get(phase=RunBatch.Phase.CORPUS)
    groups = DuplicateGroup.objects.filter(dataset=dataset, run_key=run_key(run, "minhash_dedup"))
    return {
        "seconds": seconds,
        "corpus_seconds": corpus.seconds or 0.0,
        "parts": clock.seconds,
        "groups": groups.count(),
        "grouped": DuplicateMember.objects.filter(group__in=groups).count(),
        "batches": len(batch_ids),
        "rss_before_mb": rss_before,
        "peak_rss_mb": _status_mb("VmHWM"),
        # Not this process's own: Linux carries the parent's peak over fork + exec.
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(args: list[str], url: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        WINNOW_LOG_LEVEL="WARNING",
        WINNOW_SKIP_EMBEDDED="1",
    )
    command = [sys.executable, __file__, *args]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{args[1]} failed:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_e2e(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Import (untimed) in one child process, then the timed run in another."""
    imported = _child(["--phase", "import", "--source", str(args.source)], url)
    return _child(["--phase", "e2e", "--dataset", str(imported["dataset"])], url)


# --- database ----------------------------------------------------------------------------------


# --- report ------------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    texts: Sequence[str],
    runs: dict[str, list[dict[str, Any]]],
    extra: dict[str, Any],
    loads: tuple[str, str],
) -> None:
    n = len(texts)

    def median(phase: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[phase])

    def rate(phase: str, key: str = "seconds") -> float:
        return statistics.median(n / r[key] for r in runs[phase])

    chars = sum(map(len, texts))
    sampled = min(n, DISTINCT_MAX)
    copies = ", then suffixed copies of them" if n > sampled else ""
    print(
        f"documents: {n:,} ({sampled:,} from build_sample(seed=0){copies}), "
        f"{chars / 1e6:.1f} M characters; {args.rounds} rounds "
        "(baseline, ours, e2e alternating); medians"
    )
    print(
        f"matched: {N_GRAMS}-grams, {BANDS} buckets x {ROWS} hashes, seed {SEED}, "
        f"{PRECISION}-bit (same a, b: {extra['same_permutations']}); not matched: datatrove "
        "normalises (simplify_text) and tokenizes with spaCy, ours lowercases and splits"
    )
    print(
        f"load average (1/5/15 min): {loads[0]} at start, {loads[1]} at end; {os.cpu_count()} CPUs"
    )
    print(f"{'':44}{'docs/s':>10}{'wall s':>9}{'cpu s':>9}")
    rows = (
        ("datatrove MinhashDedupSignature (baseline)", "baseline"),
        ("winnow band_buckets, no DB (ours)", "ours"),
    )
    for label, phase in rows:
        wall, cpu = median(phase, "seconds"), median(phase, "cpu_seconds")
        print(f"{label:44}{rate(phase):>10,.0f}{wall:>9.2f}{cpu:>9.2f}")
    e2e_wall = median("e2e", "seconds")
    print(
        f"{'winnow minhash_dedup end to end, DB':44}{rate('e2e'):>10,.0f}{e2e_wall:>9.2f}{'-':>9}"
    )
    sig, sort = median("baseline", "signature_seconds"), median("baseline", "sort_seconds")
    mb = runs["baseline"][0]["bytes"] / 1e6
    print(
        f"  baseline split: shingles + signatures + writes {sig:.2f} s "
        f"({rate('baseline', 'signature_seconds'):,.0f} docs/s), "
        f"sort + rewrite + verify {sort:.2f} s; {mb:.1f} MB of .sig files"
    )
    tokenized = extra["tokenize_docs"] / extra["tokenize_seconds"]
    print(
        f"  datatrove simplify_text + spaCy word_tokenize alone: {tokenized:,.0f} docs/s "
        f"(once, first {extra['tokenize_docs']:,} documents)"
    )
    create = e2e_wall - median("e2e", "corpus_seconds")
    print(
        f"  e2e ({runs['e2e'][0]['batches']} batches): run_create + document batches "
        f"{create:.2f} s, corpus phase {median('e2e', 'corpus_seconds'):.2f} s, of which:"
    )
    parts = runs["e2e"][0]["parts"]
    accounted = 0.0
    for part in parts:
        seconds = statistics.median(r["parts"].get(part, 0.0) for r in runs["e2e"])
        accounted += seconds
        print(f"    {part:40}{seconds:>8.2f} s")
    rest = median("e2e", "corpus_seconds") - accounted
    print(f"    {'COPY, SQL grouping, pairs, Jaccard, rest':40}{rest:>8.2f} s")
    groups, grouped = runs["e2e"][-1]["groups"], runs["e2e"][-1]["grouped"]
    before = max(r["rss_before_mb"] for r in runs["e2e"])
    peak = max(r["peak_rss_mb"] for r in runs["e2e"])
    print(
        f"  e2e groups: {groups:,} ({grouped:,} documents); peak RSS of the e2e process "
        f"{peak:,.0f} MB ({before:,.0f} MB resident before the timed part)"
    )
    print(
        f"  (its getrusage ru_maxrss says {max(r['ru_maxrss_mb'] for r in runs['e2e']):,.0f} MB:"
        " the bench process's own peak, inherited over fork + exec)"
    )
    theirs, ours = set(extra["candidates_baseline"]), set(extra["candidates_ours"])
    print(
        f"  documents with an LSH candidate: datatrove {len(theirs):,}, ours {len(ours):,}, "
        f"both {len(theirs & ours):,}"
    )
    ratio = rate("ours") / rate("baseline")
    cpu_ratio = median("baseline", "cpu_seconds") / median("ours", "cpu_seconds")
    print(
        f"ratio ours/baseline (signatures): {ratio:.2f} (goal >= 1.00); by CPU time {cpu_ratio:.2f}"
    )
    print(f"ratio e2e/baseline: {rate('e2e') / rate('baseline'):.2f}")


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--phase", choices=["import", "e2e"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.docs < 1 or args.rounds < 1:
        parser.error("--docs and --rounds must be positive")

    if args.phase == "import":
        print(json.dumps(phase_import(args.source)))
        return
    if args.phase == "e2e":
        print(json.dumps(phase_e2e(args.dataset)))
        return

    base = os.environ.get("DATABASE_URL", DEFAULT_DSN)
    start_load = load()
    with tempfile.TemporaryDirectory(prefix="winnow-minhash-bench-") as tmp:
        args.source = Path(tmp) / f"minhash_{args.docs}.jsonl"
        print(f"building {args.docs:,} documents ...", file=sys.stderr)
        texts = write_source(args.source, args.docs)
        warm_up(texts)
        extra: dict[str, Any] = {"same_permutations": same_permutations()}
        extra["tokenize_docs"] = min(len(texts), TOKENIZE_DOCS)
        extra["tokenize_seconds"] = tokenize_datatrove(texts[:TOKENIZE_DOCS])
        runs: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
        try:
            url = create_database(base, BENCH_DB)
            for round_ in range(1, args.rounds + 1):
                last = round_ == args.rounds
                for phase in PHASES:
                    if phase == "baseline":
                        result = run_baseline(texts, candidates=last)
                    elif phase == "ours":
                        result = run_ours(texts, candidates=last)
                    else:
                        result = run_e2e(args, url)
                    if "candidates" in result:
                        extra[f"candidates_{phase}"] = result.pop("candidates")
                    runs[phase].append(result)
                    print(
                        f"round {round_} {phase}: {len(texts) / result['seconds']:,.0f} docs/s"
                        f" (load {load()})",
                        file=sys.stderr,
                    )
        finally:
            drop_database(base, BENCH_DB)
    report(args, texts, runs, extra, (start_load, load()))


if __name__ == "__main__":
    main()
