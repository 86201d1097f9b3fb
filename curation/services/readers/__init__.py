"""Streaming record readers for dataset import.

`iter_records` turns a file or a directory of JSON Lines, CSV, Parquet or Hugging Face
`save_to_disk` data into a stream of `Record` (a row to import) and `Rejection` (a row that
cannot be imported, with a reason a user can act on). Everything streams: memory stays
bounded by `max_record_bytes` (and, for Parquet, by one row group), never by the file size.

A `SourceError` means the import as a whole cannot go on: a missing path, an unknown format,
a file whose content does not match its name, or a corrupt compressed stream. Problems that
only concern one row are Rejections and iteration continues.

Layout: `base` holds the shared types, `sources` plans what to read under a root,
`content` checks and opens each file, `stream` drives `iter_records`; `jsonl`,
`csv_reader` and `arrow` (Parquet and Hugging Face datasets) read one format each,
with the helpers in `values`.
"""

from __future__ import annotations

from curation.services.readers.base import (
    DEFAULT_MAX_RECORD_BYTES,
    FORMATS,
    Record,
    Rejection,
    SourceError,
)
from curation.services.readers.sources import count_bytes, detect_format
from curation.services.readers.stream import iter_records

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "Record",
    "Rejection",
    "SourceError",
    "count_bytes",
    "detect_format",
    "iter_records",
]
