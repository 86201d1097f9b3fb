"""The exact_dedup corpus phase: one set-based pass of SQL over the hash signal."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from curation.models import DuplicateGroup, Signal
from curation.services.signals import TABLE as SIGNAL_TABLE
from curation.services.signals import signal_partition_ensure, signals_changed
from pipelines.models import PipelineRun
from pipelines.services.corpus.keep import _keep_order, run_key


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
        signals_changed(cursor, dataset_id)
    return groups
