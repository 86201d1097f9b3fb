"""Time the recipe live preview, the kept query and provenance at dataset scale.

A scratch database ``winnow_bench_recipes`` gets ``--docs`` documents (1 % with no
signal row), five signals (int, float with 5 % NULLs, text, bool, float) and exact
duplicate groups of four covering 20 % of the documents, all generated in SQL.
Then, ``--rounds`` times each: the preview's counting pass (4 rules + dedup), the
full preview with samples, a preview with a percentile rule, counting the kept
query of a saved version, and one document's provenance. Medians in ms go to
stdout as JSON. The database is dropped at the end (unless ``--keep``).

Run::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/recipe_bench.py --docs 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import create_database, drop_database, load  # noqa: E402

BENCH_DB = "winnow_bench_recipes"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RULES = [
    {"signal": "rb_words", "op": ">=", "value": 10},
    {"signal": "rb_ppl", "op": "<=", "value": 400},
    {"signal": "rb_lang", "op": "in", "value": ["en", "de"]},
    {"signal": "rb_clean", "op": "==", "value": True},
]


def populate(docs: int) -> int:
    """Documents, signal values and duplicate groups, set-based; returns the dataset id."""
    from django.db import connection

    from curation.services.datasets import dataset_create
    from curation.services.signals import signal_define

    dataset = dataset_create(name="recipe-bench")
    specs = [
        ("rb_words", "int"),
        ("rb_ppl", "float"),
        ("rb_lang", "text"),
        ("rb_clean", "bool"),
        ("rb_score", "float"),
    ]
    cols = [
        signal_define(name=n, step="bench", step_version="1", dtype=t).column_name for n, t in specs
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO curation_document (dataset_id, external_id, text, meta, content_hash, "
            "char_count, word_count, line_count) SELECT %s, 'b' || g, 'bench text ' || g, '{}', "
            "g, 20, 3, 1 FROM generate_series(1, %s) g",
            [dataset.pk, docs],
        )
        cursor.execute(
            f"INSERT INTO curation_signal_row (dataset_id, document_id, {', '.join(cols)}) "
            "SELECT dataset_id, id, (random() * 100)::bigint, "
            "CASE WHEN random() < 0.05 THEN NULL ELSE random() * 500 END, "
            "(ARRAY['en', 'de', 'fr'])[1 + floor(random() * 3)::int], random() < 0.8, random() "
            "FROM curation_document WHERE dataset_id = %s AND id %% 100 <> 0",
            [dataset.pk],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_groups AS SELECT id / 4 AS k, "
            "nextval(pg_get_serial_sequence('curation_duplicategroup', 'id')) AS gid "
            "FROM curation_document WHERE dataset_id = %s AND (id / 4) %% 5 = 0 GROUP BY id / 4",
            [dataset.pk],
        )
        cursor.execute(
            "INSERT INTO curation_duplicategroup (id, dataset_id, kind, step, step_version, "
            "run_key, size, created_at) SELECT gid, %s, 'exact', 'exact_dedup', '1', "
            "'run-1-exact_dedup', 4, now() FROM bench_groups",
            [dataset.pk],
        )
        cursor.execute(
            "INSERT INTO curation_duplicatemember (group_id, document_id, similarity, "
            "is_representative) SELECT g.gid, d.id, 1.0, d.id %% 4 = 0 FROM curation_document d "
            "JOIN bench_groups g ON g.k = d.id / 4 WHERE d.dataset_id = %s",
            [dataset.pk],
        )
    return int(dataset.pk)


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(dataset_id: int, rounds: int) -> dict[str, Any]:
    from django.db import connection

    from curation.models import Dataset, Document
    from curation.recipe_selectors import document_provenance
    from curation.services import recipes
    from curation.services.recipes.preview import preview_evaluate

    dataset = Dataset.objects.get(pk=dataset_id)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    dedup = {"exact": True}
    out: dict[str, Any] = {}
    ruleset = recipes.ruleset_resolve(dataset_id=dataset.pk, rules=RULES, dedup=dedup)
    out["counts_ms"], counted = timed(lambda: preview_evaluate(ruleset, samples=0), rounds)
    out["preview_ms"], preview = timed(
        lambda: recipes.recipe_preview(dataset=dataset, rules=RULES, dedup=dedup), rounds
    )
    percentile = [*RULES[:3], {"signal": "rb_score", "op": ">=", "percentile": 10}]
    out["preview_percentile_ms"], _ = timed(
        lambda: recipes.recipe_preview(dataset=dataset, rules=percentile, dedup=dedup), rounds
    )
    recipe = recipes.recipe_create(dataset=dataset, name=f"bench-{time.time_ns()}")
    version = recipes.recipe_version_save(recipe=recipe, rules=RULES, dedup=dedup, user=None)
    query, params = recipes.recipe_kept_query(version=version)

    def count_kept() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (" + query.as_string(cursor.connection) + ") k", params
            )
            return int(cursor.fetchone()[0])

    out["kept_query_count_ms"], kept = timed(count_kept, rounds)
    document = Document.objects.filter(dataset=dataset).order_by("id")[1000]
    out["provenance_ms"], _ = timed(
        lambda: document_provenance(document=document, version=version), rounds
    )
    assert kept == counted.kept == preview.kept, (kept, counted.kept, preview.kept)
    out.update(documents=preview.total, kept=kept, samples=[len(o.samples) for o in preview.rules])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", DEFAULT_DSN)
    start_load = load()
    try:
        url = create_database(base, BENCH_DB)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("WINNOW_SKIP_EMBEDDED", "1")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
        import django

        django.setup()
        from django.db import connection

        print(f"loading {args.docs:,} documents ...", file=sys.stderr)
        started = time.perf_counter()
        dataset_id = populate(args.docs)
        print(f"loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        result = measure(dataset_id, args.rounds)
        connection.close()
    finally:
        if not args.keep:
            drop_database(base, BENCH_DB)
    result.update(docs=args.docs, rounds=args.rounds, load=[start_load, load()])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
