"""Streaming record readers for dataset import.

`iter_records` turns a file or a directory of JSON Lines, CSV, Parquet or Hugging Face
`save_to_disk` data into a stream of `Record` (a row to import) and `Rejection` (a row that
cannot be imported, with a reason a user can act on). Everything streams: memory stays
bounded by `max_record_bytes` (and, for Parquet, by one row group), never by the file size.

A `SourceError` means the import as a whole cannot go on: a missing path, an unknown format,
a file whose content does not match its name, or a corrupt compressed stream. Problems that
only concern one row are Rejections and iteration continues.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import logging
import math
import numbers
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq
import zstandard

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "parquet", "hf")

DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024

# Arrow batches are converted to Python a batch at a time; 2048 rows keeps the per-batch
# overhead negligible while bounding memory for wide rows.
_BATCH_ROWS = 2048
_READ_BUFFER = 256 * 1024
# Oversized lines are drained in small chunks: readline(n) briefly holds about 2n bytes.
_DRAIN_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_ZSTD_FRAME_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
# Magic, descriptor, window, dictionary id and content size at their largest.
_ZSTD_MAX_FRAME_HEADER = 18
_HEAD_BYTES = 64

# Longest suffix first, so that ".jsonl.gz" wins over ".gz"-less matches.
_SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    (".jsonl.zstd", "jsonl", "zstd"),
    (".ndjson.zstd", "jsonl", "zstd"),
    (".json.zstd", "jsonl", "zstd"),
    (".jsonl.zst", "jsonl", "zstd"),
    (".ndjson.zst", "jsonl", "zstd"),
    (".json.zst", "jsonl", "zstd"),
    (".jsonl.gz", "jsonl", "gzip"),
    (".ndjson.gz", "jsonl", "gzip"),
    (".json.gz", "jsonl", "gzip"),
    (".parquet", "parquet", None),
    (".ndjson", "jsonl", None),
    (".csv.gz", "csv", "gzip"),
    (".jsonl", "jsonl", None),
    (".csv", "csv", None),
)
_SUPPORTED = ".jsonl, .ndjson, .jsonl.gz, .json.gz, .jsonl.zst, .csv, .csv.gz, .parquet"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"\xff\xff\xff\xff", "arrow"),
    (b"PK\x03\x04", "zip"),
)
_KIND_WORDS = {
    "gzip": "gzip-compressed data",
    "zstd": "zstandard-compressed data",
    "parquet": "a Parquet file",
    "arrow": "an Arrow IPC file",
    "zip": "a zip archive",
}
_KIND_FIXES = {
    "gzip": "add .gz to its name",
    "zstd": "add .zst to its name",
    "parquet": "rename it to end in .parquet",
    "arrow": "import the Hugging Face dataset directory that holds it instead",
    "zip": "unzip it and import the extracted files",
}

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


def detect_format(path: Path) -> str:
    """Return the format of `path`: one of FORMATS for a readable source, or "dir".

    Files are judged by extension only (see `_SUFFIXES`). A directory holding a Hugging Face
    `save_to_disk` Dataset (state.json or dataset_info.json next to *.arrow shards) or
    DatasetDict (dataset_dict.json) is "hf"; any other directory is "dir".
    Raises SourceError for a missing path or an unsupported file name.
    """
    if path.is_dir():
        return "hf" if _is_hf_dir(path) else "dir"
    if not path.exists():
        raise SourceError(
            f"{path} does not exist; check the path (it must be readable by the server)"
        )
    match = _match_suffix(path.name)
    if match is None:
        raise SourceError(_unknown_reason(path))
    return match[0]


def count_bytes(root: Path, *, fmt: str | None = None) -> int:
    """Total size in bytes of the files `iter_records(root, fmt=fmt)` would read.

    Compressed files count with their compressed size. Raises SourceError like iter_records.
    """
    units, _ = _plan(root, fmt)
    return sum(unit.path.stat().st_size for unit in units if unit.problem is None)


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


def _plan(root: Path, fmt: str | None) -> tuple[list[_Unit], bool]:
    """List what to read under `root`; the flag says whether root is a directory."""
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not root.exists():
        raise SourceError(
            f"{root} does not exist; check the path (it must be readable by the server)"
        )
    if root.is_dir():
        if _is_hf_dir(root):
            if fmt not in (None, "hf"):
                raise SourceError(
                    f"{root} is a Hugging Face save_to_disk dataset, not {fmt}; choose format hf"
                )
            return _hf_units(root, ""), True
        if fmt == "hf":
            raise SourceError(
                f"{root} is not a Hugging Face save_to_disk dataset (no state.json or "
                "dataset_dict.json next to .arrow files); choose another format"
            )
        units = list(_walk(root, root, fmt, set()))
        if not any(unit.problem is None for unit in units):
            raise SourceError(
                f"{root} contains no supported data files ({_SUPPORTED}); check the path"
            )
        return units, True
    if not root.is_file():
        raise SourceError(f"{root} is not a regular file or directory; point the import at data")
    if fmt == "hf":
        raise SourceError(
            f"{root} is a file; the hf format reads the directory written by save_to_disk"
        )
    match = _match_suffix(root.name)
    if fmt is None:
        if match is None:
            raise SourceError(_unknown_reason(root))
        kind, compression = match
    elif fmt == "parquet":
        kind, compression = fmt, None
    else:
        kind = fmt
        compression = match[1] if match is not None else _compression_of(root.name)
    return [_Unit(root, root.name, kind, compression)], False


def _walk(
    root: Path, directory: Path, fmt: str | None, seen: set[tuple[int, int]]
) -> Iterator[_Unit]:
    """Yield units for `directory` recursively, in sorted order, skipping hidden entries."""
    stat = directory.stat()
    # Following directory symlinks is useful for data farms but must not loop forever.
    if (stat.st_dev, stat.st_ino) in seen:
        return
    seen.add((stat.st_dev, stat.st_ino))
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        raise SourceError(
            f"cannot list {directory} ({exc.strerror}); check its permissions"
        ) from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        source = path.relative_to(root).as_posix()
        if entry.is_dir():
            if _is_hf_dir(path):
                if fmt is None:
                    yield from _hf_units(path, source + "/")
                else:
                    yield _Unit(
                        path,
                        source,
                        "skip",
                        problem=f"skipped: a Hugging Face dataset directory, but the import "
                        f"format is {fmt}",
                    )
                continue
            yield from _walk(root, path, fmt, seen)
            continue
        if not entry.is_file():
            continue
        match = _match_suffix(entry.name)
        if match is None:
            yield _Unit(path, source, "skip", problem=_unknown_reason(Path(source)))
        elif fmt is not None and match[0] != fmt:
            yield _Unit(
                path,
                source,
                "skip",
                problem=f"skipped: a {match[0]} file, but the import format is {fmt}",
            )
        else:
            yield _Unit(path, source, match[0], match[1])


def _match_suffix(name: str) -> tuple[str, str | None] | None:
    lowered = name.lower()
    for suffix, kind, compression in _SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return kind, compression
    return None


def _compression_of(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".gz"):
        return "gzip"
    if lowered.endswith((".zst", ".zstd")):
        return "zstd"
    return None


def _unknown_reason(path: Path) -> str:
    lowered = path.name.lower()
    if lowered.endswith(".arrow"):
        return (
            f"{path} is a bare Arrow shard; import the Hugging Face dataset directory "
            "(the one holding state.json) instead"
        )
    if lowered.endswith(".json"):
        return (
            f"{path} has extension .json; if it holds one JSON object per line, rename it "
            "to .jsonl (a single JSON document is not supported)"
        )
    return f"{path} has an unsupported extension; supported: {_SUPPORTED}"


def _is_hf_dir(path: Path) -> bool:
    if (path / "dataset_dict.json").is_file():
        return True
    has_metadata = (path / "state.json").is_file() or (path / "dataset_info.json").is_file()
    return has_metadata and any(path.glob("*.arrow"))


def _read_small_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SourceError(
            f"cannot read {path} ({exc}); re-save the dataset with save_to_disk"
        ) from exc


def _hf_units(directory: Path, prefix: str) -> list[_Unit]:
    """Units for a save_to_disk Dataset or DatasetDict; sources are prefixed with `prefix`."""
    dict_file = directory / "dataset_dict.json"
    if dict_file.is_file():
        info = _read_small_json(dict_file)
        splits = info.get("splits") if isinstance(info, dict) else None
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise SourceError(
                f"{dict_file} has no list of splits; re-save the dataset with save_to_disk"
            )
        units: list[_Unit] = []
        for split in splits:
            split_dir = directory / split
            if not split_dir.is_dir():
                raise SourceError(
                    f"{dict_file} lists split {split!r} but {split_dir} is missing; "
                    "re-save the dataset with save_to_disk"
                )
            units.extend(_hf_units(split_dir, f"{prefix}{split}/"))
        return units
    names: list[str] | None = None
    state_file = directory / "state.json"
    if state_file.is_file():
        state = _read_small_json(state_file)
        files = state.get("_data_files") if isinstance(state, dict) else None
        if isinstance(files, list):
            names = [f["filename"] for f in files if isinstance(f, dict) and "filename" in f]
    if not names:
        names = sorted(p.name for p in directory.glob("*.arrow"))
    if not names:
        raise SourceError(
            f"{directory} looks like a Hugging Face dataset but has no .arrow files; "
            "re-save it with save_to_disk"
        )
    for name in names:
        if not (directory / name).is_file():
            raise SourceError(
                f"{directory / name} is listed in state.json but missing; "
                "re-save the dataset with save_to_disk"
            )
    return [_Unit(directory / name, prefix + name, "arrow") for name in names]


def _head(path: Path) -> tuple[int, bytes]:
    with open(path, "rb") as fh:
        return os.fstat(fh.fileno()).st_size, fh.read(_HEAD_BYTES)


def _magic_kind(head: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _describe(head: bytes) -> str:
    kind = _magic_kind(head)
    if kind is not None:
        return _KIND_WORDS[kind]
    try:
        preview = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return "binary data"
        # The 64-byte window may cut a multi-byte character in half.
        preview = head[: exc.start].decode("utf-8")
    return f"text starting with {preview[:30]!r}"


def _check_content(unit: _Unit) -> None:
    """Raise unless the file's first bytes fit its name; raise _FileProblem if it is empty."""
    size, head = _head(unit.path)
    if size == 0:
        raise _FileProblem(f"{unit.source} is empty (0 bytes); remove it or export it again")
    found = _magic_kind(head)
    if unit.compression is not None:
        if found != unit.compression:
            raise SourceError(
                f"{unit.source}: the name says {_KIND_WORDS[unit.compression]} but the content "
                f"looks like {_describe(head)}; rename it to match its content"
            )
        if unit.compression == "zstd":
            damage = _zstd_damage(unit.path)
            if damage is not None:
                raise SourceError(
                    f"{unit.source} {damage}; the file is truncated or corrupt: re-create or "
                    "re-download it"
                )
        return
    expected = unit.kind if unit.kind in ("parquet", "arrow") else None
    if found == expected:
        return
    if expected is None and found is not None:
        raise SourceError(
            f"{unit.source}: the name says plain {unit.kind} text but the content looks like "
            f"{_KIND_WORDS[found]}; {_KIND_FIXES[found]}"
        )
    if expected is None:
        return
    fix = _KIND_FIXES[found] if found is not None else "rename it to match its content"
    raise SourceError(
        f"{unit.source}: the name says {_KIND_WORDS[expected]} but the content looks like "
        f"{_describe(head)}; {fix}"
    )


def _zstd_damage(path: Path) -> str | None:
    """Walk the frame and block headers of a zstd file; say where it is damaged, or None.

    The zstandard stream reader reports a file cut off mid-frame as a clean end of data,
    which would silently import a prefix. Gzip needs no such check: it raises EOFError.
    Only headers are read (one seek per block of at most 128 KiB), so this is cheap.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        position = 0
        while position < size:
            fh.seek(position)
            header = fh.read(_ZSTD_MAX_FRAME_HEADER)
            magic = int.from_bytes(header[:4], "little")
            if len(header) >= 8 and magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE_MAGIC:
                position += 8 + int.from_bytes(header[4:8], "little")
                continue
            if magic != _ZSTD_FRAME_MAGIC or len(header) < 6:
                return f"has no valid zstd frame at byte {position}"
            descriptor = header[4]
            single_segment = (descriptor >> 5) & 1
            position += (
                5
                + (1 - single_segment)
                + (0, 1, 2, 4)[descriptor & 3]
                + (single_segment, 2, 4, 8)[descriptor >> 6]
            )
            last_block = False
            while not last_block:
                fh.seek(position)
                block = fh.read(3)
                if len(block) < 3:
                    return f"ends inside a zstd frame at byte {size}"
                value = int.from_bytes(block, "little")
                last_block = bool(value & 1)
                block_type = (value >> 1) & 3
                if block_type == 3:
                    return f"has an invalid zstd block at byte {position}"
                # An RLE block stores its one repeated byte, whatever its decoded size.
                position += 3 + (1 if block_type == 1 else value >> 3)
            position += 4 * ((descriptor >> 2) & 1)
        if position > size:
            return f"ends inside a zstd frame at byte {size}"
    return None


def _open_binary(unit: _Unit) -> io.BufferedIOBase:
    """Open a file for binary reading, decompressing transparently."""
    if unit.compression == "gzip":
        return gzip.open(unit.path, "rb")
    raw = io.BufferedReader(io.FileIO(unit.path, "rb"), buffer_size=_READ_BUFFER)
    if unit.compression is None:
        return raw
    # Multi-frame files are common (pzstd, appended shards) and --long archives need a big
    # window; the BufferedReader supplies the readline() that stream readers lack.
    decompressor = zstandard.ZstdDecompressor(max_window_size=2**31)
    stream = decompressor.stream_reader(raw, read_across_frames=True, closefd=True)
    return io.BufferedReader(stream, buffer_size=_READ_BUFFER)


def _drain(first: bytes, readline: Callable[[int], bytes]) -> tuple[int, int, int]:
    """Consume the rest of a line that began with `first`, in bounded chunks.

    Returns (size without line terminator, bytes consumed, count of '"' in the line).
    """
    consumed = len(first)
    quotes = first.count(b'"')
    chunk = first
    while not chunk.endswith(b"\n"):
        chunk = readline(_DRAIN_CHUNK)
        if not chunk:
            break
        consumed += len(chunk)
        quotes += chunk.count(b'"')
    if chunk.endswith(b"\r\n"):
        return consumed - 2, consumed, quotes
    if chunk.endswith(b"\n"):
        return consumed - 1, consumed, quotes
    return consumed, consumed, quotes


def _too_long(size: int, limit: int, what: str = "record") -> str:
    return (
        f"the {what} is {size:,} bytes, over the limit of {limit:,} bytes; split it, remove it, "
        "or raise WINNOW_MAX_RECORD_BYTES"
    )


def _bad_utf8(offset: int, line: int | None = None) -> str:
    where = f"byte {offset} of the line" if line is None else f"byte {offset} of line {line}"
    return f"invalid UTF-8 at {where}; re-encode the file as UTF-8"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction (float)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _coerce_id(value: Any, id_field: str) -> tuple[str | None, str]:
    """Return (external id, "") or (None, reason)."""
    kind = type(value)
    if kind is str:
        if value.strip() and "\x00" not in value:
            return value, ""
        if "\x00" in value:
            return None, (
                f"the id field {id_field!r} contains a NUL character (\\x00), which "
                "PostgreSQL cannot store; fix the id"
            )
        return None, f"the id field {id_field!r} is empty; give every row a non-empty id"
    if kind is int:
        return str(value), ""
    if value is _MISSING:
        return None, (
            f"missing id field {id_field!r}; give every row an id, or import without an id field"
        )
    return None, (
        f"the id field {id_field!r} is {_type_name(value)}; ids must be non-empty strings "
        "or integers"
    )


def _missing_text(text_field: str, fields: list[str]) -> str:
    shown = ", ".join(repr(name) for name in fields[:10])
    more = f" and {len(fields) - 10} more" if len(fields) > 10 else ""
    has = f"it has {shown}{more}" if fields else "it has no fields"
    return f"missing text field {text_field!r} ({has}); choose the field that holds the text"


def _find_nul(value: Any, path: str) -> str | None:
    """Return the path of the first string or key holding NUL inside `value`, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path} (a key)"
            found = _find_nul(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _nul_rejection(
    source: str, number: int, text: str, meta: dict[str, Any], text_field: str
) -> Rejection | None:
    at = text.find("\x00")
    if at >= 0:
        return Rejection(
            source,
            number,
            f"the text contains a NUL character (\\x00) at character {at}, which PostgreSQL "
            "text cannot store; strip NUL characters from the data",
            text_field,
        )
    for key, value in meta.items():
        where = _find_nul(key, key) or _find_nul(value, key)
        if where is not None:
            return Rejection(
                source,
                number,
                f"field {where!r} contains a NUL character (\\x00), which PostgreSQL jsonb "
                "cannot store; strip NUL characters from the data",
                key.replace("\x00", "\\x00"),
            )
    return None


def _json_error(line: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return _bad_utf8(bad.start)
    nul = line.find(b"\x00")
    if nul >= 0:
        return (
            f"raw NUL byte at byte {nul} of the line: JSON cannot hold it unescaped and "
            "PostgreSQL cannot store it; strip NUL bytes from the data"
        )
    return f"invalid JSON: {exc.msg} at column {exc.colno}; fix the line or remove it"


def _seek_resume(fh: io.BufferedIOBase, unit: _Unit, offset: int) -> None:
    size = os.fstat(fh.fileno()).st_size
    if offset < 0 or offset > size:
        raise SourceError(
            f"cannot resume {unit.source} at byte {offset}: the file has {size} bytes and must "
            "have changed; restart the import from the beginning"
        )
    if 0 < offset < size:
        fh.seek(offset - 1)
        if fh.read(1) != b"\n":
            raise SourceError(
                f"cannot resume {unit.source} at byte {offset}: that is not the start of a line, "
                "so the file must have changed; restart the import from the beginning"
            )
    fh.seek(offset)


def _read_jsonl(
    unit: _Unit, options: _Options, resume: tuple[int, int | None] | None
) -> Iterator[Record | Rejection]:
    _check_content(unit)
    source = unit.source
    limit = options.limit
    text_field = options.text_field
    id_field = options.id_field
    plain = unit.compression is None
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    number = 0
    position = 0
    skip_until = 0
    seen_content = False
    with _open_binary(unit) as fh:
        if resume is not None:
            resume_number, resume_offset = resume
            if plain and resume_offset is not None:
                _seek_resume(fh, unit, resume_offset)
                number = resume_number
                position = resume_offset
                seen_content = resume_offset > 0
            else:
                skip_until = resume_number
        readline = fh.readline
        # Reading limit + 2 bytes lets a line of exactly `limit` bytes plus "\r\n" through.
        read_size = limit + 2
        while True:
            line = readline(read_size)
            if not line:
                break
            number += 1
            consumed = len(line)
            if consumed > limit:
                size, consumed, _ = _drain(line, readline)
                if size > limit:
                    position += consumed
                    seen_content = True
                    if number > skip_until:
                        yield Rejection(source, number, _too_long(size, limit, "line"))
                    continue
            position += consumed
            if line.isspace():
                continue
            seen_content = True
            if number <= skip_until:
                continue
            if number == 1 and line.startswith(_BOM):
                line = line[3:]
            try:
                row = loads(line)
            except decode_error as exc:
                yield Rejection(source, number, _json_error(line, exc))
                continue
            if type(row) is not dict:
                yield Rejection(
                    source,
                    number,
                    f"the line holds {_type_name(row)}, not a JSON object; write one JSON "
                    "object per line",
                )
                continue
            text = row.pop(text_field, _MISSING)
            if type(text) is not str:
                if text is _MISSING:
                    reason = _missing_text(text_field, list(row))
                else:
                    reason = (
                        f"the text field {text_field!r} is {_type_name(text)}, not a string; "
                        "store the text as a JSON string"
                    )
                yield Rejection(source, number, reason, text_field)
                continue
            if id_field is None:
                external_id = f"{source}:{number}"
            else:
                coerced, reason = _coerce_id(row.pop(id_field, _MISSING), id_field)
                if coerced is None:
                    yield Rejection(source, number, reason, id_field)
                    continue
                external_id = coerced
            # NUL can only reach a parsed string through the "\u0000" escape (raw NUL is
            # invalid JSON), so this byte search spares the walk for almost every line.
            if b"\\u0000" in line:
                rejection = _nul_rejection(source, number, text, row, text_field)
                if rejection is not None:
                    yield rejection
                    continue
            yield Record(source, number, position if plain else None, text, external_id, row)
    if not seen_content:
        raise _FileProblem(f"{source} is empty (no JSON lines); remove it or export it again")


class _CsvLines:
    """Physical lines for csv.reader, read in bounded chunks and decoded one at a time.

    Per-record problems (oversize, invalid UTF-8, NUL) are noted here and claimed by the
    row loop after csv.reader returns the row; `end_record` resets them. An oversized record
    is drained and replaced by a line that ends the row in csv.reader's current state, so
    the reader stays in step with the file.
    """

    __slots__ = ("_readline", "_limit", "number", "record_bytes", "problem", "has_nul")

    def __init__(self, fh: io.BufferedIOBase, limit: int) -> None:
        self._readline = fh.readline
        self._limit = limit
        self.number = 0
        self.record_bytes = 0
        self.problem: str | None = None
        self.has_nul = False

    def __iter__(self) -> _CsvLines:
        return self

    def end_record(self) -> None:
        self.record_bytes = 0
        self.problem = None
        self.has_nul = False

    def __next__(self) -> str:
        line = self._readline(self._limit + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if self.number == 1 and line.startswith(_BOM):
            line = line[3:]
        if self.record_bytes + len(line) > self._limit:
            return self._oversize(line)
        self.record_bytes += len(line)
        if b"\x00" in line:
            self.has_nul = True
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.problem is None:
                self.problem = _bad_utf8(exc.start, self.number)
            return line.decode("utf-8", "surrogateescape")

    def _oversize(self, line: bytes) -> str:
        # A record that already spans lines can only continue inside a quoted field.
        in_quotes = self.record_bytes > 0
        _, consumed, quotes = _drain(line, self._readline)
        total = self.record_bytes + consumed
        odd = in_quotes ^ bool(quotes % 2)
        # While the quote count is odd the quoted field goes on: consume whole lines.
        while odd:
            first = self._readline(_DRAIN_CHUNK)
            if not first:
                break
            self.number += 1
            _, consumed, quotes = _drain(first, self._readline)
            total += consumed
            odd ^= bool(quotes % 2)
        self.problem = _too_long(total, self._limit)
        self.record_bytes = total
        return '"\n' if in_quotes else "\n"


def _read_csv(
    unit: _Unit, options: _Options, resume: tuple[int, int | None] | None
) -> Iterator[Record | Rejection]:
    _check_content(unit)
    source = unit.source
    skip_until = resume[0] if resume is not None else 0
    with _open_binary(unit) as fh:
        lines = _CsvLines(fh, options.limit)
        reader = csv.reader(lines)
        header: list[str] | None = None
        try:
            for row in reader:
                # Checked before the blank-row skip: an oversized header reads as blank.
                if lines.problem is not None:
                    raise _FileProblem(f"{source} has an unusable header row: {lines.problem}")
                if row:
                    header = row
                    break
        except csv.Error as exc:
            raise _FileProblem(
                f"{source} has an unreadable header row ({exc}); fix the first line"
            ) from exc
        if header is None:
            raise _FileProblem(f"{source} is empty (no header row); remove it or export it again")
        if lines.has_nul:
            raise _FileProblem(
                f"{source} has a column name containing NUL, which PostgreSQL cannot store; "
                "rename the column"
            )
        lines.end_record()
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise _FileProblem(
                f"{source} has duplicate column names {', '.join(map(repr, duplicates))}; "
                "rename them so every column is unique"
            )
        if options.text_field not in header:
            raise _FileProblem(
                f"{source} has no column {options.text_field!r} ({_columns(header)}); choose "
                "the column that holds the text",
                options.text_field,
            )
        text_index = header.index(options.text_field)
        id_index = -1
        if options.id_field is not None:
            if options.id_field not in header:
                raise _FileProblem(
                    f"{source} has no column {options.id_field!r} ({_columns(header)}); choose "
                    "the id column or import without one",
                    options.id_field,
                )
            id_index = header.index(options.id_field)
        meta_columns = [
            (index, name)
            for index, name in enumerate(header)
            if index not in (text_index, id_index)
        ]
        width = len(header)
        end = lines.number
        seen_rows = False
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                end = lines.number
                lines.end_record()
                seen_rows = True
                if start > skip_until:
                    yield Rejection(
                        source, start, f"malformed CSV ({exc}); fix the quoting on this row"
                    )
                continue
            end = lines.number
            problem = lines.problem
            has_nul = lines.has_nul
            lines.end_record()
            if problem is None and not row:
                continue
            seen_rows = True
            if start <= skip_until:
                continue
            if problem is not None:
                yield Rejection(source, start, problem)
                continue
            if len(row) != width:
                yield Rejection(
                    source,
                    start,
                    f"the row has {len(row)} fields but the header has {width}; check the "
                    "quoting and commas on this row",
                )
                continue
            text = row[text_index]
            if id_index >= 0:
                external_id, reason = _coerce_id(row[id_index], header[id_index])
                if external_id is None:
                    yield Rejection(source, start, reason, header[id_index])
                    continue
            else:
                external_id = f"{source}:{start}"
            meta = {name: row[index] for index, name in meta_columns}
            if has_nul:
                rejection = _nul_rejection(source, start, text, meta, options.text_field)
                if rejection is not None:
                    yield rejection
                    continue
            yield Record(source, start, None, text, external_id, meta)
        if not seen_rows:
            raise _FileProblem(
                f"{source} has a header row but no data rows; remove it or export it again"
            )


def _columns(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"its columns are {shown}{more}" if names else "it has no columns"


def _is_text_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text_type(kind.value_type)
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_list_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _is_plain_type(kind: pa.DataType) -> bool:
    """Whether to_pylist already yields JSON-safe values (no floats, bytes, dates...)."""
    if (
        _is_text_type(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):
        return True
    if _is_list_type(kind):
        return _is_plain_type(kind.value_type)
    if pa.types.is_struct(kind):
        return all(_is_plain_type(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        # Maps are read as dicts, which JSON can hold only with string keys.
        return _is_text_type(kind.key_type) and _is_plain_type(kind.item_type)
    return False


def _has_text(kind: pa.DataType) -> bool:
    """Whether values of this type can hold strings (that might contain NUL)."""
    if _is_text_type(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_has_text(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _has_text(kind.key_type) or _has_text(kind.item_type)
    if _is_list_type(kind):
        return _has_text(kind.value_type)
    return False


def _nested_names_with_nul(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return any(
            "\x00" in kind.field(i).name or _nested_names_with_nul(kind.field(i).type)
            for i in range(kind.num_fields)
        )
    if _is_list_type(kind):
        return _nested_names_with_nul(kind.value_type)
    if pa.types.is_map(kind):
        return _nested_names_with_nul(kind.item_type)
    return False


def _nul_rows(array: pa.Array) -> set[int] | None:
    """Rows whose strings, at any depth, contain NUL; None where no vectorised check exists."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        mask = pc.match_substring(array, "\x00")
        if not pc.any(mask).as_py():
            return set()
        return {row for row, hit in enumerate(mask.to_pylist()) if hit}
    if not _has_text(kind):
        return set()
    if _is_list_type(kind):
        # flatten() honours slicing; list_parent_indices maps each child back to its row.
        inner = _nul_rows(array.flatten())
        if not inner:
            return inner
        parents = pc.list_parent_indices(array).to_pylist()
        return {parents[child] for child in inner}
    if pa.types.is_struct(kind):
        rows: set[int] = set()
        for child in array.flatten():
            found = _nul_rows(child)
            if found is None:
                return None
            rows |= found
        return rows
    return None


def _json_safe(value: Any) -> Any:
    """Convert a value from Arrow's to_pylist into something JSON can hold."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, numbers.Real):
        as_float = float(value)
        return as_float if math.isfinite(as_float) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _column_values(array: pa.Array) -> tuple[list[Any], dict[int, str]]:
    """Python values for a column plus {row: reason} for rows with invalid UTF-8."""
    try:
        return array.to_pylist(maps_as_pydicts="lossy"), {}
    except UnicodeDecodeError:
        pass
    # Rare: a writer that did not validate UTF-8. Find the bad rows one by one.
    values: list[Any] = []
    bad: dict[int, str] = {}
    raw: pa.Array | None = None
    if _is_text_type(array.type) and not pa.types.is_dictionary(array.type):
        raw = array.cast(pa.large_binary())
    for index in range(len(array)):
        try:
            values.append(array[index].as_py(maps_as_pydicts="lossy"))
        except UnicodeDecodeError as exc:
            values.append(None)
            offset = exc.start
            if raw is not None:
                try:
                    raw[index].as_py().decode("utf-8")
                except UnicodeDecodeError as inner:
                    offset = inner.start
            bad[index] = f"invalid UTF-8 at byte {offset} of the value; re-encode the data as UTF-8"
    return values, bad


class _ArrowRows:
    """Turns record batches of one schema into Records and Rejections."""

    def __init__(self, schema: pa.Schema, source: str, options: _Options) -> None:
        self.source = source
        self.options = options
        names = schema.names
        for name in names:
            if "\x00" in name:
                raise _FileProblem(
                    f"{source} has a column name containing NUL, which PostgreSQL cannot "
                    "store; rename the column"
                )
            if _nested_names_with_nul(schema.field(name).type):
                raise _FileProblem(
                    f"{source}: column {name!r} has a nested field name containing NUL, which "
                    "PostgreSQL cannot store; rename the field"
                )
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise _FileProblem(
                f"{source} has duplicate column names {', '.join(map(repr, duplicates))}; "
                "rename them so every column is unique"
            )
        text_field = options.text_field
        if text_field not in names:
            raise _FileProblem(
                f"{source} has no column {text_field!r} ({_columns(names)}); choose the column "
                "that holds the text",
                text_field,
            )
        text_type = schema.field(text_field).type
        if not _is_text_type(text_type):
            raise _FileProblem(
                f"{source}: column {text_field!r} has type {text_type}, not string; choose the "
                "column that holds the text",
                text_field,
            )
        self.text_index = names.index(text_field)
        self.id_index = -1
        id_field = options.id_field
        if id_field is not None:
            if id_field not in names:
                raise _FileProblem(
                    f"{source} has no column {id_field!r} ({_columns(names)}); choose the id "
                    "column or import without one",
                    id_field,
                )
            id_type = schema.field(id_field).type
            if not (_is_text_type(id_type) or pa.types.is_integer(id_type)):
                raise _FileProblem(
                    f"{source}: id column {id_field!r} has type {id_type}; ids must be strings "
                    "or integers, so choose another id column",
                    id_field,
                )
            self.id_index = names.index(id_field)
        self.meta = [
            (index, field.name, field.type)
            for index, field in enumerate(schema)
            if index not in (self.text_index, self.id_index)
        ]

    def rows(self, batch: pa.RecordBatch, first: int) -> Iterator[Record | Rejection]:
        """Yield items for `batch`, whose first row has number `first`."""
        source = self.source
        limit = self.options.limit
        text_field = self.options.text_field
        id_field = self.options.id_field
        texts, bad = _column_values(batch.column(self.text_index))
        if self.id_index >= 0:
            ids, bad_ids = _column_values(batch.column(self.id_index))
            bad.update(bad_ids)
        else:
            ids = []
        names: list[str] = []
        columns: list[list[Any]] = []
        check_nul: set[int] = set()
        for index, name, kind in self.meta:
            array = batch.column(index)
            values, bad_values = _column_values(array)
            for row in bad_values:
                bad.setdefault(row, f"column {name!r}: {bad_values[row]}")
            if pa.types.is_float32(kind) or pa.types.is_float64(kind):
                # Only NaN and infinities need converting; most batches have none.
                if pc.any(pc.invert(pc.is_finite(array))).as_py():
                    values = [_json_safe(value) for value in values]
            elif not _is_plain_type(kind):
                values = [_json_safe(value) for value in values]
            nul_rows = _nul_rows(array)
            if nul_rows is None:
                nul_rows = {
                    row for row, value in enumerate(values) if _find_nul(value, name) is not None
                }
            check_nul |= nul_rows
            names.append(name)
            columns.append(values)
        meta_rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]
        meta_rows = zip(*columns, strict=True) if columns else [()] * len(texts)
        for row, (text, row_values) in enumerate(zip(texts, meta_rows, strict=True)):
            number = first + row
            if bad and row in bad:
                yield Rejection(source, number, bad[row])
                continue
            if text is None:
                yield Rejection(
                    source,
                    number,
                    f"the text field {text_field!r} is null; fill it in or drop the row",
                    text_field,
                )
                continue
            # A character takes at most 4 UTF-8 bytes, so most texts need no encoding.
            if len(text) * 4 > limit:
                size = len(text.encode("utf-8", "surrogatepass"))
                if size > limit:
                    yield Rejection(source, number, _too_long(size, limit, "text"), text_field)
                    continue
            if id_field is None:
                external_id = f"{source}:{number}"
            else:
                coerced, reason = _coerce_id(ids[row], id_field)
                if coerced is None:
                    yield Rejection(source, number, reason, id_field)
                    continue
                external_id = coerced
            meta = dict(zip(names, row_values, strict=True))
            if row in check_nul or "\x00" in text:
                rejection = _nul_rejection(source, number, text, meta, text_field)
                if rejection is not None:
                    yield rejection
                    continue
            yield Record(source, number, None, text, external_id, meta)


def _read_parquet(
    unit: _Unit, options: _Options, resume: tuple[int, int | None] | None
) -> Iterator[Record | Rejection]:
    _check_content(unit)
    size, _ = _head(unit.path)
    with open(unit.path, "rb") as fh:
        fh.seek(size - 4)
        if size < 12 or fh.read(4) != b"PAR1":
            raise SourceError(
                f"{unit.source} does not end with a Parquet footer; it is truncated or still "
                "being written: export it again"
            )
    with pq.ParquetFile(unit.path) as parquet:
        rows = _ArrowRows(parquet.schema_arrow, unit.source, options)
        metadata = parquet.metadata
        if metadata.num_rows == 0:
            raise _FileProblem(f"{unit.source} has no rows; remove it or export it again")
        skip = resume[0] if resume is not None else 0
        # Whole row groups before the resume point are never decoded.
        first_group = 0
        number = 1
        while first_group < metadata.num_row_groups:
            group_rows = metadata.row_group(first_group).num_rows
            if number + group_rows - 1 > skip:
                break
            number += group_rows
            first_group += 1
        groups = list(range(first_group, metadata.num_row_groups))
        if not groups:
            return
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=groups):
            yield from _resumed_rows(rows, batch, number, skip)
            number += batch.num_rows


def _resumed_rows(
    rows: _ArrowRows, batch: pa.RecordBatch, first: int, skip: int
) -> Iterator[Record | Rejection]:
    """Rows of `batch` (first row numbered `first`) after row number `skip`."""
    # A plain function returning the iterator: one generator layer less per row.
    if first + batch.num_rows - 1 <= skip:
        return iter(())
    if first <= skip:
        return rows.rows(batch.slice(skip - first + 1), skip + 1)
    return rows.rows(batch, first)


def _read_arrow(
    unit: _Unit, options: _Options, resume: tuple[int, int | None] | None
) -> Iterator[Record | Rejection]:
    _check_content(unit)
    skip = resume[0] if resume is not None else 0
    with pa.memory_map(str(unit.path), "r") as mapped:
        batches: Iterator[pa.RecordBatch]
        try:
            stream = pyarrow.ipc.open_stream(mapped)
            schema = stream.schema
            batches = iter(stream)
        except pa.ArrowInvalid:
            mapped.seek(0)
            try:
                whole = pyarrow.ipc.open_file(mapped)
            except pa.ArrowInvalid as exc:
                raise SourceError(
                    f"{unit.source} is not a readable Arrow file ({exc}); re-save the dataset "
                    "with save_to_disk"
                ) from exc
            schema = whole.schema
            batches = (whole.get_batch(i) for i in range(whole.num_record_batches))
        rows = _ArrowRows(schema, unit.source, options)
        number = 1
        for batch in batches:
            # save_to_disk batches can be large; re-slice so memory per step stays bounded.
            for start in range(0, batch.num_rows, _BATCH_ROWS):
                piece = batch.slice(start, _BATCH_ROWS)
                yield from _resumed_rows(rows, piece, number, skip)
                number += piece.num_rows
        if number == 1:
            raise _FileProblem(f"{unit.source} has no rows; remove it or save the dataset again")


_READERS: dict[
    str, Callable[[_Unit, _Options, tuple[int, int | None] | None], Iterator[Record | Rejection]]
] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "arrow": _read_arrow,
}
