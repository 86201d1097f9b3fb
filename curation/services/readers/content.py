"""Checks that a file's first bytes fit its name, and opening it decompressed."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import zstandard

from curation.services.readers.base import SourceError, _FileProblem, _Unit

_READ_BUFFER = 256 * 1024
_ZSTD_FRAME_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
# Magic, descriptor, window, dictionary id and content size at their largest.
_ZSTD_MAX_FRAME_HEADER = 18
_HEAD_BYTES = 64

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
