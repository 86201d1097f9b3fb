"""What corpus phases report about a run, kept in ``PipelineRun.results``."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from psycopg import sql

from pipelines.models import PipelineRun


def run_results_merge(*, run: PipelineRun, key: str, value: dict[str, Any]) -> None:
    """Set ``run.results[key]``, merged in SQL: other phases' entries written meanwhile stay."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("UPDATE {} SET results = results || %s::jsonb WHERE id = %s")
            .format(sql.Identifier(PipelineRun._meta.db_table))
            .as_string(cursor.connection),
            [json.dumps({key: value}), run.pk],
        )
    run.results = {**run.results, key: value}
