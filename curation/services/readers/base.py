"""Types and constants shared by the readers: what they yield and what they are given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "csv", "parquet", "hf")

DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024

_MISSING: Any = object()


@dataclass(slots=True)
class Record:
    """One importable row.

    `source` is the file path relative to the import root (the file's name when the root is
    a single file); `number` is the 1-based physical line where the record starts (JSONL,
    CSV) or the 1-based row (Parquet, Arrow); `offset` is, for plain uncompressed JSONL only,
    the byte offset just after the record's line, usable with `start_after` to resume.
    `meta` holds every field except the text and id fields and is JSON-serializable.
    """

    source: str
    number: int
    offset: int | None
    text: str
    external_id: str
    meta: dict[str, Any]


@dataclass(slots=True)
class Rejection:
    """A row (number >= 1) or a whole file inside a directory (number 0) that was skipped.

    `reason` is one sentence saying what is wrong and what to do; `field` names the field
    at fault when there is one.
    """

    source: str
    number: int
    reason: str
    field: str | None = None


class SourceError(Exception):
    """The whole source cannot be read (missing path, empty file, unknown or wrong format).

    The message names the path and says what to do.
    """


class _FileProblem(SourceError):
    """A whole file is unusable but harmless to skip (empty, lacks the text column).

    Fatal when the import root is that file; a Rejection with number 0 inside a directory.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(slots=True, frozen=True)
class _Unit:
    """One thing to read: a data file, or a file to report as skipped (`problem` set)."""

    path: Path
    source: str
    kind: str
    compression: str | None = None
    problem: str | None = None


@dataclass(slots=True, frozen=True)
class _Options:
    text_field: str
    id_field: str | None
    limit: int
