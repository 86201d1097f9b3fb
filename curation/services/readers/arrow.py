"""Parquet files and Hugging Face save_to_disk Arrow shards, a record batch at a time."""

from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Iterator
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from curation.services.readers.base import (
    Record,
    Rejection,
    SourceError,
    _FileProblem,
    _Options,
    _Unit,
)
from curation.services.readers.content import _check_content, _head
from curation.services.readers.values import (
    _coerce_id,
    _columns,
    _find_nul,
    _nul_rejection,
    _too_long,
)

# Arrow batches are converted to Python a batch at a time; 2048 rows keeps the per-batch
# overhead negligible while bounding memory for wide rows.
_BATCH_ROWS = 2048


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
