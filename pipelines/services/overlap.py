"""The corpus phase of ``source_dedup``: near duplicates between a dataset and others.

Same bounded-memory shape as ``minhash_dedup_phase``: band buckets of both sides
are COPYed into a temp table, PostgreSQL finds the buckets they share, and only
the candidate pairs' texts come back to be verified by exact Jaccard.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from curation.errors import PermanentError
from curation.models import Dataset, Signal
from curation.models import Document as DocumentRow
from curation.services.signals import signal_defaults_write, signal_rows_write
from pipelines.models import PipelineRun
from pipelines.services import pairs
from pipelines.services.results import run_results_merge
from pipelines.steps.overlap import SourceDedup

# Reference documents kept per shared bucket: a bucket of boilerplate shared by
# thousands of reference pages yields this many candidates, not thousands.
CANDIDATES_PER_BUCKET = 20

SIGNALS = ["source_dedup_flag", "source_dedup_similarity", "source_dedup_match"]


def reference_datasets(*, dataset: Dataset, against: list[str] | tuple[str, ...]) -> list[Dataset]:
    """The datasets ``source_dedup`` compares ``dataset`` with: ``against``, or its parent."""
    if not against:
        if dataset.parent_id is None:
            raise PermanentError(
                f"step source_dedup: dataset {dataset.name!r} was not generated from another "
                "dataset; name the datasets to compare with in the 'against' parameter"
            )
        return [Dataset.objects.get(pk=dataset.parent_id)]
    found = {d.slug: d for d in Dataset.objects.filter(slug__in=against)}
    missing = [slug for slug in against if slug not in found]
    if missing:
        raise PermanentError(
            f"step source_dedup: no dataset with slug {', '.join(map(repr, missing))}; "
            "'against' takes dataset slugs (the last part of a dataset page's address)"
        )
    if dataset.slug in found:
        raise PermanentError(
            "step source_dedup: 'against' names the dataset itself; use minhash_dedup for "
            "duplicates inside one dataset"
        )
    return [found[slug] for slug in against]


@transaction.atomic
def source_dedup_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """Write the three ``source_dedup`` signals for every document; returns how many are flagged.

    1. Stream both sides' documents and COPY their band buckets into a temp table.
    2. Join each document's buckets with the reference buckets (at most
       ``CANDIDATES_PER_BUCKET`` reference documents per bucket).
    3. Verify every candidate pair by exact Jaccard, a bounded chunk of texts at a
       time; each document keeps its closest candidate.
    """
    step = SourceDedup(**spec["params"])
    minhash = step.minhash()
    references = reference_datasets(dataset=run.dataset, against=step.config["against"])
    sides = [(run.dataset_id, False), *((d.pk, True) for d in references)]
    candidates: list[tuple[int, int]] = []
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS winnow_overlap_bucket")
        cursor.execute(
            "CREATE TEMP TABLE winnow_overlap_bucket "
            "(reference boolean, band smallint, bucket bigint, document_id bigint) "
            "ON COMMIT DROP"
        )
        for dataset_id, reference in sides:
            for rows in pairs.band_bucket_rows(minhash, dataset_id):
                with cursor.cursor.copy(
                    "COPY winnow_overlap_bucket (reference, band, bucket, document_id) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row((reference, *row))
        cursor.execute("ANALYZE winnow_overlap_bucket")
        cursor.execute(
            "WITH shared AS ("
            "  SELECT band, bucket, (array_agg(document_id ORDER BY document_id))[1:%s] AS ids"
            "  FROM winnow_overlap_bucket WHERE reference GROUP BY band, bucket"
            ") "
            "SELECT DISTINCT t.document_id, r.id "
            "FROM winnow_overlap_bucket t JOIN shared s USING (band, bucket) "
            "CROSS JOIN LATERAL unnest(s.ids) AS r(id) "
            "WHERE NOT t.reference ORDER BY 1, 2",
            [CANDIDATES_PER_BUCKET],
        )
        while rows := cursor.fetchmany(10_000):
            candidates.extend(rows)
    closest: dict[int, tuple[float, int]] = {}
    datasets = [dataset_id for dataset_id, _ in sides]
    for document, candidate, similarity in pairs.verified_pairs(minhash, datasets, candidates, {}):
        best = closest.get(document)
        if best is None or (similarity, -candidate) > (best[0], -best[1]):
            closest[document] = (similarity, candidate)
    matches = _describe(sorted({candidate for _, candidate in closest.values()}))
    threshold = step.config["threshold"]
    flagged = sum(1 for similarity, _ in closest.values() if similarity >= threshold)
    _write(run.dataset_id, closest, matches, threshold)
    run_results_merge(
        run=run,
        key="source_dedup",
        value={
            "against": [{"name": d.name, "slug": d.slug} for d in references],
            "documents": run.dataset.documents.count(),
            "candidates": len(closest),
            "flagged": flagged,
            "threshold": threshold,
        },
    )
    return flagged


def _describe(ids: list[int]) -> dict[int, dict[str, Any]]:
    """{document id: {dataset, external_id, id}} for the matched reference documents."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), pairs.CHUNK):
        rows = DocumentRow.objects.filter(pk__in=ids[start : start + pairs.CHUNK]).values_list(
            "id", "external_id", "dataset__slug"
        )
        for pk, external, slug in rows:
            found[pk] = {"dataset": slug, "external_id": external, "id": pk}
    return found


def _write(
    dataset_id: int,
    closest: dict[int, tuple[float, int]],
    matches: dict[int, dict[str, Any]],
    threshold: float,
) -> None:
    signals = {s.name: s for s in Signal.objects.filter(name__in=SIGNALS)}
    # Every document first: no candidate; then the ones that have one.
    signal_defaults_write(
        signals=[signals[n] for n in SIGNALS], dataset_id=dataset_id, values=[False, None, None]
    )
    signal_rows_write(
        signals=[signals[n] for n in SIGNALS],
        dataset_id=dataset_id,
        rows=(
            (document, value >= threshold, value, matches.get(candidate))
            for document, (value, candidate) in sorted(closest.items())
        ),
    )
