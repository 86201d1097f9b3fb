"""`iter_records`: the units of a source, each read by the reader for its format."""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import zstandard

from curation.services.readers.arrow import _read_arrow, _read_parquet
from curation.services.readers.base import (
    DEFAULT_MAX_RECORD_BYTES,
    Record,
    Rejection,
    SourceError,
    _FileProblem,
    _Options,
    _Unit,
)
from curation.services.readers.csv_reader import _read_csv
from curation.services.readers.jsonl import _read_jsonl
from curation.services.readers.sources import _plan

logger = logging.getLogger(__name__)


def iter_records(
    root: Path,
    *,
    text_field: str = "text",
    id_field: str | None = None,
    fmt: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    start_after: tuple[str, int, int | None] | None = None,
) -> Iterator[Record | Rejection]:
    """Stream the records of `root`, a file or a directory, in a stable order.

    A Hugging Face `save_to_disk` directory is read shard by shard (splits in
    dataset_dict.json order). Any other directory is walked recursively in sorted path order,
    skipping hidden entries; a file of unknown extension, an empty file or a file without the
    text column becomes a Rejection with number 0 there, while the same problem with a single
    file as root raises SourceError. `fmt` overrides detection by extension.

    `external_id` is the value of `id_field` as a string (strings and integers accepted) or,
    without an id field, "source:number". A JSONL line or CSV record longer than
    `max_record_bytes` is rejected and skipped without being held in memory; for Parquet and
    Arrow, whose rows arrive decoded, the limit applies to the text's UTF-8 size.

    `start_after=(source, number, offset)` resumes after that record: earlier sources are
    skipped entirely; within `source`, plain JSONL with an offset seeks straight to it and
    everything else is re-read and skipped without parsing.

    Path, format and resume-point problems raise SourceError on call; content problems found
    while reading (wrong format, corrupt compression) raise SourceError during iteration.
    """
    if max_record_bytes < 1:
        raise ValueError("max_record_bytes must be positive")
    if not text_field:
        raise SourceError("the text field name is empty; name the field that holds the text")
    if id_field is not None and id_field == text_field:
        raise SourceError(
            f"the id field and the text field are both {text_field!r}; choose a different id field"
        )
    units, in_directory = _plan(root, fmt)
    start_index = 0
    resume: tuple[int, int | None] | None = None
    if start_after is not None:
        source, number, offset = start_after
        for index, unit in enumerate(units):
            if unit.source == source:
                start_index = index
                resume = (number, offset)
                break
        else:
            raise SourceError(
                f"cannot resume: {source!r} is no longer part of {root}; "
                "restore the file or restart the import from the beginning"
            )
    options = _Options(text_field, id_field, max_record_bytes)
    if max_record_bytes > csv.field_size_limit():
        # csv's own limit (in characters) must never fire before ours (in bytes). It is
        # process-wide, so it is only ever raised.
        csv.field_size_limit(max_record_bytes)
    return _generate(units[start_index:], in_directory, options, resume)


def _generate(
    units: list[_Unit],
    in_directory: bool,
    options: _Options,
    resume: tuple[int, int | None] | None,
) -> Iterator[Record | Rejection]:
    for position, unit in enumerate(units):
        unit_resume = resume if position == 0 else None
        if unit.problem is not None:
            if unit_resume is None:
                yield Rejection(unit.source, 0, unit.problem)
            continue
        logger.debug("reading %s as %s", unit.source, unit.kind)
        last = 0
        try:
            for item in _READERS[unit.kind](unit, options, unit_resume):
                last = item.number
                yield item
        except _FileProblem as exc:
            if not in_directory:
                raise
            if unit_resume is None:
                yield Rejection(unit.source, 0, str(exc), exc.field)
        except (FileNotFoundError, PermissionError) as exc:
            raise SourceError(
                f"cannot open {unit.source} ({exc.strerror}); check that it exists and is readable"
            ) from exc
        except (
            OSError,
            EOFError,
            zlib.error,
            zstandard.ZstdError,
            pa.ArrowException,
        ) as exc:
            where = f"after row {last}" if last else "before the first row"
            raise SourceError(
                f"{unit.source} could not be read {where} ({exc}); the file is truncated or "
                "corrupt: re-create or re-download it"
            ) from exc


_READERS: dict[
    str, Callable[[_Unit, _Options, tuple[int, int | None] | None], Iterator[Record | Rejection]]
] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "arrow": _read_arrow,
}
