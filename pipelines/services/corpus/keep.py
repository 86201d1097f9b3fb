"""What the dedup phases share: the key of a run's groups and the ``keep`` rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connection
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Signal
from curation.services.signals import TABLE as SIGNAL_TABLE
from pipelines.models import PipelineRun
from pipelines.services import pairs


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
