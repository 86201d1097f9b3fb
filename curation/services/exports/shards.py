"""Shards of bounded size: Parquet written row group by row group, or JSON lines.

A shard closes when the next rows would take it past its row cap or its byte
cap. Before a chunk is written its size is estimated from the rows' lengths,
uncompressed (an upper bound of what compression writes), plus room for the
page headers and the footer still to come, so a closed shard never exceeds the
byte cap unless one document alone does (it then gets a shard of its own). For
``.jsonl.gz`` the cap bounds the uncompressed bytes, since gzip's output is
only known once it is flushed.

Shards are written under temporary names (``data/.tmp-<random>.parquet``) and
handed to ``on_close`` when complete; the caller renames them.
"""

from __future__ import annotations

import gzip
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.models import ExportSnapshot
from curation.services.exports.rows import Chunk

# Bytes per value beyond the string itself: a length prefix, a dictionary index.
STRING_OVERHEAD = 8
UNIQUE_STRINGS = ("id", "text")


def shard_suffix(fmt: str, compression: str) -> str:
    if fmt == ExportSnapshot.Format.PARQUET:
        return ".parquet"
    return ".jsonl.gz" if compression == "gzip" else ".jsonl"


@dataclass
class ClosedShard:
    index: int
    path: Path
    stats_path: Path
    rows: int
    bytes: int


@dataclass
class _OpenShard:
    index: int
    path: Path
    stats_path: Path
    stats: IO[bytes]
    sink: Any
    writer: Any = None
    rows: int = 0
    bytes: int = 0
    row_groups: int = 0


class ShardWriter:
    """Writes chunks into numbered shards under ``root/data``, each within the caps."""

    def __init__(
        self,
        *,
        root: Path,
        fmt: str,
        compression: str,
        schema: pa.Schema,
        shard_rows: int,
        shard_bytes: int,
        first_index: int,
        on_close: Callable[[ClosedShard], None],
    ) -> None:
        self.root, self.fmt, self.compression, self.schema = root, fmt, compression, schema
        self.shard_rows, self.shard_bytes = shard_rows, shard_bytes
        self.next_index = first_index
        self.on_close = on_close
        self.suffix = shard_suffix(fmt, compression)
        self.parquet = fmt == ExportSnapshot.Format.PARQUET
        self.current: _OpenShard | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / ".winnow" / "stats").mkdir(parents=True, exist_ok=True)

    def write(self, chunk: Chunk) -> None:
        table = chunk.table
        lines = None if self.parquet else self._lines(table)
        sizes = self._parquet_sizes(table) if lines is None else np.fromiter(map(len, lines), int)
        offset = 0
        while offset < len(table):
            shard = self.current or self._open()
            room = self.shard_bytes - shard.bytes - self._reserve(shard)
            cumulative = np.cumsum(sizes[offset : offset + self.shard_rows - shard.rows])
            take = int(np.searchsorted(cumulative, room, side="right"))
            if take == 0 and shard.rows:
                self.close()
                continue
            take = max(take, 1)  # a document past the cap alone gets a shard of its own
            piece = table.slice(offset, take)
            self._write_rows(shard, piece, None if lines is None else lines[offset:][:take])
            shard.stats.write(np.ascontiguousarray(chunk.stats[offset : offset + take]).tobytes())
            offset += take
            if shard.rows >= self.shard_rows:
                self.close()

    def close(self) -> None:
        """Close the open shard, if any, and hand it over."""
        shard, self.current = self.current, None
        if shard is None:
            return
        if shard.writer is not None:
            shard.writer.close()
        shard.sink.close()
        shard.stats.close()
        for path in (shard.path, shard.stats_path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        size = shard.path.stat().st_size
        self.on_close(ClosedShard(shard.index, shard.path, shard.stats_path, shard.rows, size))

    def abort(self) -> None:
        """Drop the open shard's files (after an error or a lost lease)."""
        shard, self.current = self.current, None
        if shard is None:
            return
        for closing in (shard.writer, shard.sink, shard.stats):
            if closing is not None:
                closing.close()
        shard.path.unlink(missing_ok=True)
        shard.stats_path.unlink(missing_ok=True)

    def _open(self) -> _OpenShard:
        token = uuid.uuid4().hex
        path = self.root / "data" / f".tmp-{token}{self.suffix}"
        stats_path = self.root / ".winnow" / "stats" / f".tmp-{token}.f64"
        if self.parquet:
            sink: Any = pa.OSFile(str(path), "wb")
            numeric = [f.name for f in self.schema if not pa.types.is_string(f.type)]
            writer = pq.ParquetWriter(
                sink,
                self.schema,
                compression=None if self.compression == "none" else self.compression,
                use_dictionary=[f.name for f in self.schema if f.name not in UNIQUE_STRINGS],
                write_statistics=numeric or False,
            )
        else:
            # Closed in close() or abort().
            if self.compression == "gzip":
                sink = gzip.GzipFile(str(path), "wb", compresslevel=6, mtime=0)
            else:
                sink = open(path, "wb")  # noqa: SIM115
            writer = None
        self.current = _OpenShard(
            self.next_index, path, stats_path, open(stats_path, "wb"), sink, writer
        )
        self.next_index += 1
        return self.current

    def _write_rows(self, shard: _OpenShard, piece: pa.Table, lines: list[bytes] | None) -> None:
        if lines is None:
            shard.writer.write_table(piece, row_group_size=len(piece))
            shard.bytes = shard.sink.tell()
            shard.row_groups += 1
        else:
            data = b"".join(lines)
            shard.sink.write(data)
            shard.bytes += len(data)
        shard.rows += len(piece)

    def _reserve(self, shard: _OpenShard) -> int:
        """Bytes still to come besides the rows: page headers and the footer."""
        if not self.parquet:
            return 0
        return 4096 + len(self.schema) * (512 + 256 * (shard.row_groups + 1))

    def _parquet_sizes(self, table: pa.Table) -> np.ndarray:
        sizes = np.zeros(len(table), dtype=np.int64)
        for field, column in zip(self.schema, table.columns, strict=True):
            if pa.types.is_string(field.type):
                lengths = pc.fill_null(pc.binary_length(column), 0)
                sizes += lengths.to_numpy().astype(np.int64) + STRING_OVERHEAD
            else:
                sizes += max(1, field.type.bit_width // 8)
        return sizes

    @staticmethod
    def _lines(table: pa.Table) -> list[bytes]:
        return [orjson.dumps(row) + b"\n" for row in table.to_pylist()]
