"""Corpus phases: the dataset-wide part of corpus-level steps, run once after every batch.

Each phase is set-based SQL over the signal table: no document passes through
Python, so memory stays flat whatever the dataset size. Semantic dedup is the
exception by nature: it holds the dataset's vectors (float16, 768 MB per million
384-dim documents), never its texts. A phase is idempotent: it replaces the
groups it wrote before (keyed by the run) and upserts its signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Document as DocumentRow
from curation.models import DuplicateGroup, DuplicateMember, Signal
from curation.services.signals import TABLE as SIGNAL_TABLE
from curation.services.signals import (
    signal_defaults_write,
    signal_partition_ensure,
    signal_rows_write,
)
from curation.services.vectors import vectors_load
from pipelines.models import PipelineRun
from pipelines.services import pairs
from pipelines.services.overlap import source_dedup_phase
from pipelines.services.results import run_results_merge
from pipelines.services.similarity import similarity_index_phase


def _keep_signal_column(params: dict[str, Any]) -> sql.Identifier:
    signal = Signal.objects.filter(name=params["keep_signal"]).first()
    if signal is None:
        raise PermanentError(
            f"keep_signal {params['keep_signal']!r} is not a signal of this project: run the "
            "step that produces it first (or earlier in the same pipeline)"
        )
    return sql.Identifier(signal.column_name)


def _keep_order(params: dict[str, Any]) -> sql.Composable:
    """SQL ordering that puts the kept member of a group first (s: signal row, d: document)."""
    if params["keep"] == "longest":
        return sql.SQL("d.char_count DESC, s.document_id")
    if params["keep"] == "best_signal":
        direction = sql.SQL("ASC" if params["keep_lowest"] else "DESC")
        return sql.SQL("s.{} {} NULLS LAST, s.document_id").format(
            _keep_signal_column(params), direction
        )
    return sql.SQL("s.document_id")


def run_key(run: PipelineRun, step: str) -> str:
    return f"run-{run.pk}-{step}"


@transaction.atomic
def exact_dedup_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """Group equal ``exact_dedup_hash`` values; write groups, members and the keep signals.

    1. Rank every document within its hash (the kept one first, by ``keep``).
    2. Give each hash shared by several documents a group id from the groups'
       own sequence, and insert groups and members from that table.
    3. Upsert ``exact_dedup_size`` and ``exact_dedup_keep`` for every document.
    Returns the number of groups.
    """
    signals = {
        s.name: s
        for s in Signal.objects.filter(
            name__in=["exact_dedup_hash", "exact_dedup_size", "exact_dedup_keep"]
        )
    }
    hash_col = sql.Identifier(signals["exact_dedup_hash"].column_name)
    key = run_key(run, spec["step"])
    dataset_id = run.dataset_id
    signal_partition_ensure(dataset_id=dataset_id)
    DuplicateGroup.objects.filter(
        dataset_id=dataset_id, kind=DuplicateGroup.Kind.EXACT, run_key=key
    ).delete()
    with connection.cursor() as cursor:
        pg = cursor.connection
        cursor.execute("DROP TABLE IF EXISTS winnow_exact_ranked, winnow_exact_groups")
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE winnow_exact_ranked ON COMMIT DROP AS "
                "SELECT s.document_id, s.{h} AS h, count(*) OVER w AS n, "
                "row_number() OVER (w ORDER BY {order}) AS rk "
                "FROM {table} s JOIN curation_document d ON d.id = s.document_id "
                "WHERE s.dataset_id = %s AND s.{h} IS NOT NULL "
                "WINDOW w AS (PARTITION BY s.{h})"
            )
            .format(
                h=hash_col,
                order=_keep_order(spec["params"]),
                table=sql.Identifier(SIGNAL_TABLE),
            )
            .as_string(pg),
            [dataset_id],
        )
        cursor.execute(
            "CREATE TEMP TABLE winnow_exact_groups ON COMMIT DROP AS "
            "SELECT h, n, nextval(pg_get_serial_sequence('curation_duplicategroup', 'id')) AS gid "
            "FROM winnow_exact_ranked WHERE rk = 1 AND n > 1"
        )
        cursor.execute(
            "INSERT INTO curation_duplicategroup "
            "(id, dataset_id, kind, step, step_version, run_key, size, created_at) "
            "SELECT gid, %s, %s, %s, %s, %s, n, %s FROM winnow_exact_groups",
            [
                dataset_id,
                DuplicateGroup.Kind.EXACT,
                spec["step"],
                spec["version"],
                key,
                timezone.now(),
            ],
        )
        groups = cursor.rowcount
        cursor.execute(
            "INSERT INTO curation_duplicatemember "
            "(group_id, document_id, similarity, is_representative) "
            "SELECT g.gid, r.document_id, 1.0, r.rk = 1 "
            "FROM winnow_exact_ranked r JOIN winnow_exact_groups g USING (h)"
        )
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} (dataset_id, document_id, {size}, {keep}) "
                "SELECT %s, document_id, n, rk = 1 FROM winnow_exact_ranked "
                "ON CONFLICT (dataset_id, document_id) DO UPDATE "
                "SET {size} = EXCLUDED.{size}, {keep} = EXCLUDED.{keep}"
            )
            .format(
                table=sql.Identifier(SIGNAL_TABLE),
                size=sql.Identifier(signals["exact_dedup_size"].column_name),
                keep=sql.Identifier(signals["exact_dedup_keep"].column_name),
            )
            .as_string(pg),
            [dataset_id],
        )
    return groups


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


def _kept(
    params: dict[str, Any], clusters: list[list[int]], lengths: dict[int, int], dataset_id: int
) -> Iterator[tuple[int, list[int]]]:
    """(kept member, cluster) by the ``keep`` rule, for clusters of sorted document ids."""
    values: dict[int, Any] = {}
    if params["keep"] == "best_signal":
        column = _keep_signal_column(params)
        members = [d for cluster in clusters for d in cluster]
        with connection.cursor() as cursor:
            for start in range(0, len(members), pairs.CHUNK):
                cursor.execute(
                    sql.SQL(
                        "SELECT document_id, {} FROM {} WHERE dataset_id = %s "
                        "AND document_id = ANY(%s)"
                    )
                    .format(column, sql.Identifier(SIGNAL_TABLE))
                    .as_string(cursor.connection),
                    [dataset_id, members[start : start + pairs.CHUNK]],
                )
                values.update(cursor.fetchall())
    sign = -1 if params["keep_lowest"] else 1
    for cluster in clusters:
        if params["keep"] == "longest":
            kept = max(cluster, key=lambda d: (lengths[d], -d))
        elif params["keep"] == "best_signal":
            # Highest (or lowest) value first, documents without one last, then the first.
            kept = max(
                cluster,
                key=lambda d: (values.get(d) is not None, sign * (values.get(d) or 0), -d),
            )
        else:
            kept = cluster[0]
        yield kept, cluster


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


SEMANTIC_SIGNALS = [
    "semantic_dedup_size",
    "semantic_dedup_keep",
    "semantic_dedup_similarity",
    "semantic_dedup_cluster",
]


def semantic_dedup_phase(run: PipelineRun, spec: dict[str, Any]) -> int:
    """SemDeDup over the dataset's stored vectors; returns the number of groups.

    1. Load the vectors of the step's model (its document phase stored them);
       every document must have one.
    2. k-means, pairs inside clusters at the loosest eps, groups at ``eps`` and
       the removal count of every eps (``pipelines.steps.semantic.semdedup``, on
       the step's device).
    3. Keep one member per group by ``keep``; each member's cosine to the kept one.
    4. Replace this run's groups, write the four signals for every document and
       store the eps table in ``run.results["semantic_dedup"]``.
    """
    from pipelines.devices import resolve_device
    from pipelines.steps.semantic import (
        CENTROID_RULES,
        SemanticDedup,
        kept_members,
        semdedup,
        similarity_to,
    )

    step = SemanticDedup(**spec["params"])
    config = step.config
    dataset_id = run.dataset_id
    ids, vectors = _semantic_vectors(dataset_id, step.vector_model())
    device = resolve_device(config["device"])
    result = semdedup(
        vectors,
        clusters=config["clusters"],
        eps=config["eps"],
        eps_report=config["eps_report"],
        niter=config["niter"],
        seed=config["seed"],
        device=device,
    )
    groups = result.groups()
    if config["keep"] in CENTROID_RULES:
        kept = kept_members(result.labels, rule=config["keep"], score=result.centroid_similarity)
    else:
        kept = _semantic_kept(config, dataset_id, ids, groups)
    similarity = similarity_to(vectors, kept, device)
    _write_semantic_groups(run, spec, ids, result, groups, kept, similarity)
    return len(groups)


def _semantic_vectors(dataset_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(document ids ascending, their float16 vectors); every document must have one."""
    ids = np.fromiter(
        DocumentRow.objects.filter(dataset_id=dataset_id)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=pairs.CHUNK * 10),
        dtype=np.int64,
    )
    stored = vectors_load(dataset_id=dataset_id, model=model)
    present = np.isin(ids, stored.ids)
    if not present.all():
        missing = ids[~present]
        raise PermanentError(
            f"{len(missing)} of {len(ids)} documents have no stored vector of {model!r} "
            f"(first ids: {missing[:5].tolist()}): start a new run of this pipeline (its "
            "semantic_dedup document phase embeds only the documents that have no vector yet), "
            "then this phase has every vector"
        )
    return ids, stored.vectors[np.isin(stored.ids, ids)]


def _semantic_kept(
    params: dict[str, Any], dataset_id: int, ids: np.ndarray, groups: list[np.ndarray]
) -> np.ndarray:
    """The kept position of each position's group for the rules that read the database."""
    kept = np.arange(len(ids), dtype=np.int64)
    members = [ids[group].tolist() for group in groups]
    lengths: dict[int, int] = {}
    if params["keep"] == "longest":
        grouped = [d for cluster in members for d in cluster]
        for start in range(0, len(grouped), pairs.CHUNK):
            lengths.update(
                DocumentRow.objects.filter(
                    dataset_id=dataset_id, id__in=grouped[start : start + pairs.CHUNK]
                ).values_list("id", "char_count")
            )
    for group, (kept_id, cluster) in zip(
        groups, _kept(params, members, lengths, dataset_id), strict=True
    ):
        kept[group] = group[cluster.index(kept_id)]
    return kept


@transaction.atomic
def _write_semantic_groups(
    run: PipelineRun,
    spec: dict[str, Any],
    ids: np.ndarray,
    result: Any,
    groups: list[np.ndarray],
    kept: np.ndarray,
    similarity: np.ndarray,
) -> None:
    dataset_id = run.dataset_id
    key = run_key(run, spec["step"])
    DuplicateGroup.objects.filter(dataset_id=dataset_id, run_key=key).delete()
    created = DuplicateGroup.objects.bulk_create(
        [
            DuplicateGroup(
                dataset_id=dataset_id,
                kind=DuplicateGroup.Kind.SEMANTIC,
                step=spec["step"],
                step_version=spec["version"],
                run_key=key,
                size=len(group),
            )
            for group in groups
        ],
        batch_size=pairs.CHUNK,
    )
    DuplicateMember.objects.bulk_create(
        (
            DuplicateMember(
                group=row,
                document_id=int(ids[p]),
                is_representative=bool(kept[p] == p),
                similarity=float(similarity[p]),
            )
            for row, group in zip(created, groups, strict=True)
            for p in group.tolist()
        ),
        batch_size=pairs.CHUNK,
    )
    sizes = np.bincount(result.labels, minlength=len(ids))[result.labels]
    signals = {s.name: s for s in Signal.objects.filter(name__in=SEMANTIC_SIGNALS)}
    signal_rows_write(
        signals=[signals[name] for name in SEMANTIC_SIGNALS],
        dataset_id=dataset_id,
        rows=(
            (document, size, keep == p, value if size > 1 else None, cluster)
            for p, (document, size, keep, value, cluster) in enumerate(
                zip(
                    ids.tolist(),
                    sizes.tolist(),
                    kept.tolist(),
                    similarity.tolist(),
                    result.assignment.tolist(),
                    strict=True,
                )
            )
        ),
    )
    summary = {
        "clusters": result.clusters,
        "documents": len(ids),
        "eps": result.table,
        "eps_used": spec["params"]["eps"],
    }
    run_results_merge(run=run, key="semantic_dedup", value=summary)


# Each phase returns its count: groups for the dedup phases, flagged documents for
# source_dedup, indexed vectors for similarity_index (COUNTED says which, for the log).
CORPUS_PHASES: dict[str, Callable[[PipelineRun, dict[str, Any]], int]] = {
    "exact_dedup": exact_dedup_phase,
    "minhash_dedup": minhash_dedup_phase,
    "semantic_dedup": semantic_dedup_phase,
    "source_dedup": source_dedup_phase,
    "similarity_index": similarity_index_phase,
}
COUNTED = {"source_dedup": "flagged documents", "similarity_index": "vectors indexed"}
