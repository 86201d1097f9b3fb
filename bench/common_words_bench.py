"""The common words' bits after an import that appends: from the earlier bits, against afresh.

    python bench/common_words_bench.py [--docs 200000] [--append 2000] [--rounds 3]

A scratch database (``winnow_bench_common_words``, migrated by manage.py) gets one
dataset of ``--docs`` documents (the texts of ``bench/explorer_bench.py``), its search
index and its common words' bits (``text_hits.common_words_build``, as the search
index task keeps them). Then, each round, an import appends ``--append`` documents
(COPY, then the recount) and the task's step is timed twice on the same version of
the dataset:

* ``from earlier``: ``common_words_build`` as it runs after that import: each word's
  bits of the version before, plus the hits among the new documents alone;
* ``afresh`` (the baseline): the kept bits dropped first, every word's hits read again,
  as every import did before.

Both must give the same bits (checked). Progress goes to stderr, results to stdout;
the database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import create_database, drop_database, load, write_source  # noqa: E402
from bench.explorer_bench import copy_documents  # noqa: E402

BENCH_DB = "winnow_bench_common_words"
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def kept_bits(dataset_id: int) -> dict[str, tuple[int, bytes]]:
    from curation.models import TextHits

    return {
        row.text: (row.hits, bytes(row.bits))
        for row in TextHits.objects.filter(dataset_id=dataset_id, common=True)
    }


def timed_build(dataset_id: int) -> tuple[float, int]:
    from curation.explorer.text_hits import common_words_build

    started = time.perf_counter()
    built = common_words_build(dataset_id=dataset_id)
    return time.perf_counter() - started, len(built)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--append", type=int, default=2_000, help="documents each import appends")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help=f"keep database {BENCH_DB}")
    args = ap.parse_args(argv)
    load_start = load()
    log(f"scratch database {BENCH_DB}")
    os.environ["DATABASE_URL"] = create_database(args.dsn, BENCH_DB)
    os.environ["WINNOW_SKIP_EMBEDDED"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    import django

    django.setup()
    from django.db import connection

    from curation.models import TextHits
    from curation.services.datasets import dataset_create, dataset_recount
    from curation.services.search import search_index_build

    rounds: list[tuple[float, float, int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            texts = write_source(Path(tmp) / "src.jsonl", 3000)
        dataset = dataset_create(name="common-words")
        log(f"loading {args.docs:,} documents")
        copy_documents(dataset.pk, args.docs, texts, prefix="base")
        dataset = dataset_recount(dataset=dataset)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE curation_document")
        log("search index")
        search_index_build(dataset_id=dataset.pk)
        first_s, words = timed_build(dataset.pk)
        log(f"common words: {words} built in {first_s:.1f}s")
        for r in range(args.rounds):
            # Texts shifted per round, so the new documents differ from the first ones.
            shifted = texts[(r + 1) * 7 :] + texts[: (r + 1) * 7]
            copy_documents(dataset.pk, args.append, shifted, prefix=f"append{r}")
            dataset = dataset_recount(dataset=dataset)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE curation_document")
            earlier_s, earlier_n = timed_build(dataset.pk)
            grown = kept_bits(dataset.pk)
            TextHits.objects.filter(dataset=dataset).delete()
            fresh_s, fresh_n = timed_build(dataset.pk)
            assert kept_bits(dataset.pk) == grown, "the bits from earlier differ from afresh"
            assert earlier_n == fresh_n, (earlier_n, fresh_n)
            log(
                f"round {r + 1}: {dataset.document_count:,} documents, {fresh_n} words: "
                f"from earlier {earlier_s:.2f}s, afresh {fresh_s:.2f}s"
            )
            rounds.append((earlier_s, fresh_s, fresh_n))
    finally:
        connection.close()
        if not args.keep:
            drop_database(args.dsn, BENCH_DB)

    print()
    print(
        f"Common words' bits after an import: {args.docs:,} documents, +{args.append:,} per "
        f"import, {os.cpu_count()} cores, load avg start {load_start} / end {load()}"
    )
    print(f"  first build (every word read): {first_s:.1f}s for {words} words")
    for r, (earlier_s, fresh_s, n) in enumerate(rounds, 1):
        print(
            f"  import {r}: {n} words; from the earlier bits {earlier_s:.2f}s, afresh "
            f"{fresh_s:.2f}s: ratio afresh / from earlier {fresh_s / earlier_s:.1f}"
        )
    earlier = statistics.median(e for e, _, _ in rounds)
    fresh = statistics.median(f for _, f, _ in rounds)
    print(
        f"  median: from earlier {earlier:.2f}s, afresh {fresh:.2f}s "
        f"({fresh / earlier:.1f}x); the same bits each time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
