"""The minhash_dedup corpus phase: LSH buckets in PostgreSQL, verified pairs, groups."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from curation.models import DuplicateGroup, DuplicateMember, Signal
from curation.services.signals import signal_defaults_write, signal_rows_write
from pipelines.models import PipelineRun
from pipelines.services import pairs
from pipelines.services.corpus.keep import _kept, run_key

# Buckets up to this size are verified pair by pair; larger ones (boilerplate shared
# by thousands of pages) against their first member only, to stay linear.
MINHASH_ALL_PAIRS = 50


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(x, x) != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@transaction.atomic
def minhash_dedup_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """MinHash LSH over the dataset in bounded memory; returns the number of groups.

    1. Stream documents in chunks, compute each one's band buckets and COPY them
       into a temp table: signatures never all sit in Python.
    2. Let PostgreSQL group equal (band, bucket): only documents sharing a bucket
       come back, as candidate lists.
    3. Verify candidates by exact Jaccard of their shingles (texts of candidate
       documents only), union the verified pairs, keep one per group by ``keep``.
    4. Replace this run's groups and write size, keep and similarity signals.
    """
    from pipelines.steps.dedup import MinHashDedup

    step = MinHashDedup(**spec["params"])
    dataset_id = run.dataset_id
    key = run_key(run, spec["step"])
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS winnow_minhash_bucket")
        cursor.execute(
            "CREATE TEMP TABLE winnow_minhash_bucket "
            "(band smallint, bucket bigint, document_id bigint) ON COMMIT DROP"
        )
        for rows in pairs.band_bucket_rows(step, dataset_id):
            with cursor.cursor.copy(
                "COPY winnow_minhash_bucket (band, bucket, document_id) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute(
            "SELECT array_agg(document_id ORDER BY document_id) FROM winnow_minhash_bucket "
            "GROUP BY band, bucket HAVING count(*) > 1"
        )
        candidates: set[tuple[int, int]] = set()
        while rows := cursor.fetchmany(1000):
            for (bucket,) in rows:
                if len(bucket) <= MINHASH_ALL_PAIRS:
                    candidates.update((a, b) for i, a in enumerate(bucket) for b in bucket[i + 1 :])
                else:
                    candidates.update((bucket[0], b) for b in bucket[1:])
    groups = _UnionFind()
    linked: set[int] = set()
    lengths: dict[int, int] = {}
    for a, b, similarity in pairs.verified_pairs(step, dataset_id, sorted(candidates), lengths):
        if similarity >= step.config["threshold"]:
            groups.union(a, b)
            linked.update((a, b))
    members: dict[int, list[int]] = {}
    for document in linked:
        members.setdefault(groups.find(document), []).append(document)
    clusters = [sorted(m) for m in members.values() if len(m) > 1]
    _write_groups(run, spec, key, clusters, lengths, step)
    return len(clusters)


def _write_groups(
    run: PipelineRun,
    spec: dict[str, Any],
    key: str,
    clusters: list[list[int]],
    lengths: dict[int, int],
    step: Any,
) -> None:
    dataset_id = run.dataset_id
    DuplicateGroup.objects.filter(dataset_id=dataset_id, run_key=key).delete()
    group_rows = list(_kept(spec["params"], clusters, lengths, dataset_id))
    # Each member's similarity to the kept one, again a bounded chunk of pairs at a time.
    to_kept = [(kept, d) for kept, cluster in group_rows for d in cluster if d != kept]
    similarity = {
        d: value for kept, d, value in pairs.verified_pairs(step, dataset_id, to_kept, {})
    }
    rows = [
        (d, len(cluster), d == kept, 1.0 if d == kept else similarity[d])
        for kept, cluster in group_rows
        for d in cluster
    ]
    created = DuplicateGroup.objects.bulk_create(
        DuplicateGroup(
            dataset_id=dataset_id,
            kind=DuplicateGroup.Kind.MINHASH,
            step=spec["step"],
            step_version=spec["version"],
            run_key=key,
            size=len(cluster),
        )
        for _, cluster in group_rows
    )
    DuplicateMember.objects.bulk_create(
        DuplicateMember(
            group=group,
            document_id=d,
            is_representative=d == kept,
            similarity=1.0 if d == kept else similarity[d],
        )
        for group, (kept, cluster) in zip(created, group_rows, strict=True)
        for d in cluster
    )
    names = ["minhash_dedup_size", "minhash_dedup_keep", "minhash_dedup_similarity"]
    signals = {s.name: s for s in Signal.objects.filter(name__in=names)}
    # Every document first: alone in its group and kept; then the grouped ones.
    signal_defaults_write(
        signals=[signals[n] for n in names], dataset_id=dataset_id, values=[1, True, None]
    )
    signal_rows_write(
        signals=[signals[n] for n in names],
        dataset_id=dataset_id,
        rows=[(d, n, k, s) for d, n, k, s in rows],
    )
