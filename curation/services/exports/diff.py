"""What changed between two snapshots: documents added and removed, rules and options changed.

Each snapshot keeps the sorted ids of the documents it holds
(``.winnow/document_ids.i64``), so a diff reads two id files (8 bytes a
document each, 16 with their lengths) and never the data files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from curation.errors import PermanentError
from curation.models import Document, ExportSnapshot
from curation.services.exports.jobs import IDS
from curation.services.exports.rows import ids_read

OPTION_KEYS = ("columns", "signals", "dedup_groups", "redact_pii")


@dataclass(frozen=True)
class ExportDiff:
    old: ExportSnapshot
    new: ExportSnapshot
    added: int
    removed: int
    unchanged: int
    added_sample: list[tuple[int, str]] = field(default_factory=list)
    removed_sample: list[tuple[int, str]] = field(default_factory=list)
    rules_added: list[dict[str, Any]] = field(default_factory=list)
    rules_removed: list[dict[str, Any]] = field(default_factory=list)
    dedup_changes: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    option_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def recipe_changed(self) -> bool:
        return bool(self.rules_added or self.rules_removed or self.dedup_changes)


def _ids(snapshot: ExportSnapshot) -> np.ndarray:
    if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
        raise PermanentError(f"export {snapshot.pk} has not finished: compare finished exports")
    path = Path(snapshot.path) / IDS
    if not path.exists():
        raise PermanentError(f"export {snapshot.pk} has no document list at {path}")
    return ids_read(path)


def _external_ids(ids: np.ndarray) -> list[tuple[int, str]]:
    wanted = [int(i) for i in ids]
    names = dict(Document.objects.filter(pk__in=wanted).values_list("pk", "external_id"))
    return [(i, names.get(i, "(deleted)")) for i in wanted]


def _rules(snapshot: ExportSnapshot) -> list[dict[str, Any]]:
    return list(snapshot.recipe_version.rules) if snapshot.recipe_version else []


def _dedup(snapshot: ExportSnapshot) -> dict[str, bool]:
    return dict(snapshot.recipe_version.dedup) if snapshot.recipe_version else {}


def _key(rule: dict[str, Any]) -> bytes:
    return orjson.dumps(rule, option=orjson.OPT_SORT_KEYS)


def export_diff(*, old: ExportSnapshot, new: ExportSnapshot, sample: int = 50) -> ExportDiff:
    """Documents in ``new`` but not ``old`` (added) and the reverse, with ``sample`` of each
    by external id; rules added and removed between their recipe versions (as written)."""
    a, b = _ids(old), _ids(new)
    added = np.setdiff1d(b, a, assume_unique=True)
    removed = np.setdiff1d(a, b, assume_unique=True)
    old_rules, new_rules = _rules(old), _rules(new)
    old_keys, new_keys = {_key(r) for r in old_rules}, {_key(r) for r in new_rules}
    old_dedup, new_dedup = _dedup(old), _dedup(new)
    return ExportDiff(
        old=old,
        new=new,
        added=len(added),
        removed=len(removed),
        unchanged=len(b) - len(added),
        added_sample=_external_ids(added[:sample]),
        removed_sample=_external_ids(removed[:sample]),
        rules_added=[r for r in new_rules if _key(r) not in old_keys],
        rules_removed=[r for r in old_rules if _key(r) not in new_keys],
        dedup_changes={
            kind: (bool(old_dedup.get(kind)), bool(new_dedup.get(kind)))
            for kind in sorted(set(old_dedup) | set(new_dedup))
            if bool(old_dedup.get(kind)) != bool(new_dedup.get(kind))
        },
        option_changes={
            k: (old.options.get(k), new.options.get(k))
            for k in OPTION_KEYS
            if old.options.get(k) != new.options.get(k)
        },
    )
