"""JSON Lines, plain or compressed: one JSON object per line, resumable by byte offset."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import orjson

from curation.services.readers.base import (
    _MISSING,
    Record,
    Rejection,
    SourceError,
    _FileProblem,
    _Options,
    _Unit,
)
from curation.services.readers.content import _check_content, _open_binary
from curation.services.readers.values import (
    _BOM,
    _bad_utf8,
    _coerce_id,
    _drain,
    _nul_rejection,
    _too_long,
    _type_name,
)


def _missing_text(text_field: str, fields: list[str]) -> str:
    shown = ", ".join(repr(name) for name in fields[:10])
    more = f" and {len(fields) - 10} more" if len(fields) > 10 else ""
    has = f"it has {shown}{more}" if fields else "it has no fields"
    return f"missing text field {text_field!r} ({has}); choose the field that holds the text"


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
