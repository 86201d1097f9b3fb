"""Export: a dataset, or what a recipe version keeps, as an immutable snapshot folder.

A snapshot is Parquet or JSON-lines shards of bounded size under ``data/`` plus
a dataset card (README.md) that ``datasets.load_dataset(<folder>)`` reads. See
``jobs`` for the procedure, ``rows`` for reading, ``shards`` for writing,
``card`` for the README, ``diff`` for comparing two snapshots and ``hub`` for
pushing one to the Hugging Face Hub.
"""

from __future__ import annotations

from curation.services.exports.diff import ExportDiff, export_diff
from curation.services.exports.jobs import (
    export_create,
    export_dispatch,
    export_run,
    exports_resume_after_restart,
    exports_resume_stale,
    exports_root,
)
from curation.services.exports.options import ExportOptions, ExportOptionsError

__all__ = [
    "ExportDiff",
    "ExportOptions",
    "ExportOptionsError",
    "export_create",
    "export_diff",
    "export_dispatch",
    "export_run",
    "exports_resume_after_restart",
    "exports_resume_stale",
    "exports_root",
]
