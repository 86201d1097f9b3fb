"""Source records to COPY-ready batches, prepared in a child process.

An import's Python work (parse, validate, hash, count, escape) runs in a child
process that streams finished batches to the parent over a pipe. The parent only
hands the bytes to PostgreSQL's COPY and records progress, so on two cores the
child, the writer and the server run side by side instead of taking turns for
one interpreter lock. A subprocess (not ``multiprocessing``) because Celery's
prefork children are daemonic and may not fork children of their own.

This module imports nothing from Django: the child starts fast and needs no
settings or database.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import xxhash

from curation.hashing import signed64
from curation.services import readers

logger = logging.getLogger(__name__)

DOCUMENT_COLUMNS = (
    "dataset_id",
    "external_id",
    "text",
    "meta",
    "content_hash",
    "char_count",
    "word_count",
    "line_count",
    "import_job_id",
)
_FRAME = struct.Struct("<Q")


@dataclass(frozen=True)
class BatchSpec:
    """What to read and how to cut it; JSON-serialisable, passed to the child."""

    root: str
    dataset_id: int
    job_id: int
    text_field: str = "text"
    id_field: str | None = None
    fmt: str | None = None
    max_record_bytes: int = readers.DEFAULT_MAX_RECORD_BYTES
    start_after: tuple[str, int, int | None] | None = None
    batch_rows: int = 5000
    batch_chars: int = 64 * 1024 * 1024


@dataclass
class PreparedBatch:
    """One transaction's worth of rows, already in COPY text format.

    ``external_ids``, ``sources`` and ``numbers`` describe the rows of
    ``copy_data`` in order. ``rejections`` holds the reader's rejections and ids
    repeated within the batch. ``last`` is the checkpoint after this batch.
    """

    copy_data: bytes = b""
    external_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    rejections: list[readers.Rejection] = field(default_factory=list)
    rows_read: int = 0
    last: tuple[str, int, int | None] | None = None
    bytes_done: int | None = None


class BatchStreamError(RuntimeError):
    """The child process failed for a reason other than the source (a bug, memory)."""


def content_hash(words: list[str]) -> int:
    """64-bit XXH3 of the words joined by one space, lowercased, as a signed bigint."""
    return signed64(xxhash.xxh3_64_intdigest(" ".join(words).lower()))


def copy_escape(value: str) -> str:
    """Escape a value for PostgreSQL's COPY text format (NUL never gets this far)."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    return value


def duplicate_rejection(
    source: str, number: int, external_id: str, first: str
) -> readers.Rejection:
    return readers.Rejection(
        source=source,
        number=number,
        reason=(
            f"duplicate id: {external_id!r} is already used by {first}; "
            "the first one is kept; give each record its own id"
        ),
        field="id",
    )


def prepare_batches(spec: BatchSpec) -> Iterator[PreparedBatch]:
    """Read the source and yield batches of at most ``batch_rows`` rows read.

    This loop is the import's hot path (one pass per row, in the child process):
    locals are bound once and the common case (no escaping, no duplicate) takes
    no function calls beyond the unavoidable split, join, hash and escape.
    """
    records = readers.iter_records(
        Path(spec.root),
        text_field=spec.text_field,
        id_field=spec.id_field,
        fmt=spec.fmt,
        max_record_bytes=spec.max_record_bytes,
        start_after=spec.start_after,
    )
    head = f"{int(spec.dataset_id)}\t"
    tail = f"\t{int(spec.job_id)}\n"
    dumps = orjson.dumps
    record_type = readers.Record
    batch_rows, batch_chars = spec.batch_rows, spec.batch_chars
    while True:
        batch = PreparedBatch()
        lines: list[str] = []
        add_line = lines.append
        external_ids, sources, numbers = batch.external_ids, batch.sources, batch.numbers
        seen: dict[str, int] = {}
        rows_read = chars = 0
        for item in records:
            rows_read += 1
            if type(item) is not record_type:
                assert isinstance(item, readers.Rejection)
                batch.last = (item.source, item.number, None)
                batch.rejections.append(item)
            else:
                batch.last = (item.source, item.number, item.offset)
                if item.offset is not None:
                    batch.bytes_done = item.offset
                external_id = item.external_id
                if external_id in seen:
                    first = sources[seen[external_id]], numbers[seen[external_id]]
                    batch.rejections.append(
                        duplicate_rejection(
                            item.source, item.number, external_id, f"{first[0]}:{first[1]}"
                        )
                    )
                else:
                    seen[external_id] = len(external_ids)
                    text = item.text
                    words = text.split()
                    value = content_hash(words)
                    meta = dumps(item.meta).decode() if item.meta else "{}"
                    if "\\" in meta:
                        meta = meta.replace("\\", "\\\\")
                    add_line(
                        f"{head}{copy_escape(external_id)}\t{copy_escape(text)}\t{meta}\t"
                        f"{value}\t{len(text)}\t{len(words)}\t{text.count(chr(10)) + 1}{tail}"
                    )
                    external_ids.append(external_id)
                    sources.append(item.source)
                    numbers.append(item.number)
                    chars += len(text)
            if rows_read >= batch_rows or chars >= batch_chars:
                break
        if not rows_read:
            return
        batch.rows_read = rows_read
        batch.copy_data = "".join(lines).encode()
        yield batch


# -- the child process and its parent-side stream ------------------------------------------


def _write_frame(out: object, kind: str, payload: object) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))  # type: ignore[attr-defined]
    out.write(data)  # type: ignore[attr-defined]
    out.flush()  # type: ignore[attr-defined]


def child_main(argv: list[str]) -> int:
    """Entry point of the child: spec as JSON in argv[1], frames on stdout."""
    raw = json.loads(argv[1])
    if raw.get("start_after") is not None:
        raw["start_after"] = tuple(raw["start_after"])
    spec = BatchSpec(**raw)
    out = sys.stdout.buffer
    try:
        for batch in prepare_batches(spec):
            _write_frame(out, "batch", batch)
    except readers.SourceError as exc:
        _write_frame(out, "source_error", str(exc))
    except BrokenPipeError:
        return 0  # the parent is gone (killed); nothing left to do
    _write_frame(out, "done", None)
    return 0


class BatchStream:
    """Iterate over batches prepared by a child process, at most ``ahead`` batches early."""

    def __init__(self, spec: BatchSpec, ahead: int = 2) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "curation.services.batches", json.dumps(asdict(spec))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).resolve().parent.parent.parent,
        )
        self._frames: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="import-batches", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            while not self._stop.is_set():
                header = stdout.read(_FRAME.size)
                if len(header) < _FRAME.size:
                    self._put(("eof", None))
                    return
                (size,) = _FRAME.unpack(header)
                self._put(pickle.loads(stdout.read(size)))
        except (OSError, ValueError, pickle.UnpicklingError) as exc:
            self._put(("eof", repr(exc)))

    def _put(self, frame: tuple[str, object]) -> None:
        while not self._stop.is_set():
            try:
                self._frames.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[PreparedBatch]:
        while True:
            kind, payload = self._frames.get()
            if kind == "batch":
                assert isinstance(payload, PreparedBatch)
                yield payload
            elif kind == "done":
                return
            elif kind == "source_error":
                raise readers.SourceError(str(payload))
            else:
                self._proc.wait(timeout=30)
                assert self._proc.stderr is not None
                stderr = self._proc.stderr.read().decode(errors="replace")[-3000:]
                raise BatchStreamError(
                    f"the import's reader process stopped (exit {self._proc.returncode}):\n{stderr}"
                )

    def close(self) -> None:
        self._stop.set()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        self._reader.join(timeout=5)


if __name__ == "__main__":
    # Import under the package name so that pickled batches name
    # curation.services.batches.PreparedBatch, not __main__.PreparedBatch.
    from curation.services.batches import child_main as _child_main

    sys.exit(_child_main(sys.argv))
