"""CSV with a header row, plain or gzip-compressed, read in bounded chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from curation.services.readers.base import Record, Rejection, _FileProblem, _Options, _Unit
from curation.services.readers.content import _check_content, _open_binary
from curation.services.readers.values import (
    _BOM,
    _DRAIN_CHUNK,
    _bad_utf8,
    _coerce_id,
    _columns,
    _drain,
    _nul_rejection,
    _too_long,
)


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
