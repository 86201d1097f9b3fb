"""Reads for the export pages and the CLI (see services/exports for the writes)."""

from __future__ import annotations

from pathlib import Path

from django.db import connection
from django.db.models import QuerySet
from psycopg import sql

from curation.models import Dataset, ExportSnapshot, RecipeVersion, Signal
from curation.services.signals import partition_name


def export_list(*, dataset: Dataset, limit: int = 100) -> QuerySet[ExportSnapshot]:
    return (
        ExportSnapshot.objects.filter(dataset=dataset)
        .select_related("recipe_version__recipe", "created_by")
        .order_by("-created_at")[:limit]
    )


def export_comparable(*, snapshot: ExportSnapshot) -> QuerySet[ExportSnapshot]:
    """Other finished snapshots of the same dataset, to diff against."""
    return (
        ExportSnapshot.objects.filter(
            dataset_id=snapshot.dataset_id, status=ExportSnapshot.Status.SUCCEEDED
        )
        .exclude(pk=snapshot.pk)
        .select_related("recipe_version__recipe")
        .order_by("-created_at")
    )


def dataset_recipe_versions(*, dataset: Dataset) -> QuerySet[RecipeVersion]:
    return (
        RecipeVersion.objects.filter(recipe__dataset=dataset)
        .select_related("recipe")
        .order_by("recipe__name", "-version")
    )


def dataset_signal_names(*, dataset: Dataset) -> list[str]:
    """Signals with at least one value in the dataset, by name (one scan of its partition)."""
    signals = list(Signal.objects.order_by("name"))
    if not signals:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(dataset.pk)])
        row = cursor.fetchone()
        if not row or not row[0]:
            return []
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("bool_or({} IS NOT NULL)").format(sql.Identifier(s.column_name))
                for s in signals
            ),
            sql.Identifier(partition_name(dataset.pk)),
        )
        cursor.execute(query.as_string(cursor.connection))
        present = cursor.fetchone() or ()
    return [s.name for s, has in zip(signals, present, strict=True) if has]


def export_file(*, snapshot: ExportSnapshot, name: str) -> Path | None:
    """The path of one of the snapshot's listed files; None for any other name.

    Only names recorded in ``snapshot.files`` are served, so no request can reach
    outside the snapshot's folder (no ``..``, no absolute paths, no hidden files).
    """
    if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
        return None
    if name not in {f["name"] for f in snapshot.files}:
        return None
    root = Path(snapshot.path).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def export_card(*, snapshot: ExportSnapshot, limit: int = 200_000) -> str:
    path = export_file(snapshot=snapshot, name="README.md")
    if path is None:
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read(limit)
