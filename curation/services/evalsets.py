"""Evaluation sets: upload, and the plain files the decontamination step reads.

Each set is kept twice: as rows (for pages and the API) and as a JSONL file
``<data dir>/evalsets/<slug>.jsonl`` of ``{"id", "text"}`` lines, which pipeline
workers read without touching the database.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import slugify

from curation.errors import PermanentError
from curation.models import EvalItem, EvalSet
from curation.services import readers


def evalset_path(slug: str) -> Path:
    return Path(settings.DATA_DIR) / "evalsets" / f"{slug}.jsonl"


@transaction.atomic
def evalset_import(
    *,
    name: str,
    path: Path | str,
    fields: tuple[str, ...] = ("question", "answer"),
    id_field: str = "id",
    description: str = "",
) -> tuple[EvalSet, list[readers.Rejection]]:
    """Read a JSONL of eval items, joining ``fields`` into the text that is checked.

    Returns the set and the rejected lines (a line without any of the fields, bad
    JSON, ...). Replaces a set of the same name.
    """
    if not fields:
        raise PermanentError("name at least one field that holds the item's text")
    path = Path(path)
    try:
        records = readers.iter_records(path, text_field=fields[0], id_field=id_field or None)
        items: list[EvalItem] = []
        rejections: list[readers.Rejection] = []
        for record in records:
            if isinstance(record, readers.Rejection):
                rejections.append(record)
                continue
            parts = [record.text] + [
                str(record.meta.pop(f)) for f in fields[1:] if record.meta.get(f) is not None
            ]
            items.append(
                EvalItem(external_id=record.external_id, text="\n".join(parts), meta=record.meta)
            )
    except readers.SourceError as exc:
        raise PermanentError(str(exc)) from exc
    if not items:
        raise PermanentError(f"{path.name}: no item has the field {fields[0]!r}")
    EvalSet.objects.filter(name=name).delete()
    eval_set = EvalSet.objects.create(
        name=name,
        slug=slugify(name)[:200] or "evalset",
        description=description,
        source_name=path.name,
        item_count=len(items),
    )
    for item in items:
        item.eval_set = eval_set
    EvalItem.objects.bulk_create(items, batch_size=2000)
    target = evalset_path(eval_set.slug)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for item in items:
            out.write(orjson.dumps({"id": item.external_id, "text": item.text}) + b"\n")
    return eval_set, rejections


def evalset_import_upload(
    *,
    name: str,
    upload: UploadedFile,
    fields: tuple[str, ...],
    id_field: str = "id",
    description: str = "",
) -> tuple[EvalSet, list[readers.Rejection]]:
    """``evalset_import`` of a browser upload (kept under the uploads dir)."""
    safe = Path(upload.name or "evalset.jsonl").name
    target = Path(settings.UPLOAD_DIR) / f"{uuid.uuid4().hex}-{safe}"
    with open(target, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return evalset_import(
        name=name, path=target, fields=fields, id_field=id_field, description=description
    )
