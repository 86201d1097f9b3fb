"""The search index's state, read from the catalog, and whether text search can run now."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from curation.models import Dataset


def search_index_name(dataset_id: int) -> str:
    return f"curation_document_fts_d{int(dataset_id)}"


@dataclass(frozen=True)
class SearchIndexState:
    """``ready``, ``building`` (with the build's phase), ``failed`` or ``missing``."""

    status: str
    phase: str = ""


def search_index_state(*, dataset_id: int) -> SearchIndexState:
    """Read from the catalog: the index is the state, so there is nothing to keep in sync."""
    name = search_index_name(dataset_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, p.phase FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "LEFT JOIN pg_stat_progress_create_index p ON p.index_relid = c.oid "
            "WHERE c.relname = %s AND c.relkind = 'i'",
            [name],
        )
        row = cursor.fetchone()
    if row is None:
        return SearchIndexState("missing")
    valid, phase = row
    if valid:
        return SearchIndexState("ready")
    if phase:
        return SearchIndexState("building", phase)
    return SearchIndexState("failed")


# Computing the vectors while scanning costs ~55 µs a document (bench/explorer_bench.py):
# up to this many documents a search without the index stays near a second.
SEARCH_SCAN_MAX_DOCUMENTS = 20_000


def search_problem(*, dataset: Dataset) -> str:
    """Why text search is off for ``dataset`` now, or "" when it works."""
    if dataset.document_count <= SEARCH_SCAN_MAX_DOCUMENTS:
        return ""
    state = search_index_state(dataset_id=dataset.pk)
    if state.status == "ready":
        return ""
    if state.status == "building":
        return f"The search index is being built ({state.phase}): search again in a few minutes."
    return "This dataset has no search index yet: build it with the button above the filters."
