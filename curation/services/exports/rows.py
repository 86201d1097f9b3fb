"""What an export reads: the fixed list of documents it covers, then their rows, chunk by chunk.

The documents are chosen once, at the start (every document of the dataset, or
those a recipe version keeps), and their ids written to a file in id order with
their character counts. Rows are then read by keyset: each chunk is the next run
of ids from that file, bounded in rows and in characters of text, fetched with
one indexed query joined to the signal row. Memory is one chunk, whatever the
dataset's size, and a resumed export reads the same documents as the first try.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import pyarrow as pa
from django.db import connection
from psycopg import sql

from curation.models import RecipeVersion
from curation.services.exports.options import ARROW_TYPES, PII_KINDS, PII_TOKENS, Plan
from curation.services.signals import TABLE as SIGNAL_TABLE

logger = logging.getLogger(__name__)

ID_BLOCK = 65_536


def ids_materialize(*, dataset_id: int, recipe_version: RecipeVersion | None, target: Path) -> int:
    """Write ``(document id, char count)`` int64 pairs of the documents to export; return the count.

    One COPY streams them in id order, aggregated server-side into lines of
    ``ID_BLOCK`` pairs (a message a row would cost more than the query), each
    decoded by numpy: constant memory. The file appears under its name only when
    complete.
    """
    if recipe_version is None:
        where: sql.Composable = sql.SQL("")
        params: list[Any] = [dataset_id]
    else:
        from curation.services.recipes import recipe_kept_query

        kept, kept_params = recipe_kept_query(version=recipe_version)
        where = sql.SQL(" AND d.id IN ({})").format(kept)
        params = [dataset_id, *kept_params]
    query = sql.SQL(
        "COPY (SELECT string_agg(id || ',' || chars, ',' ORDER BY id) FROM ("
        "SELECT d.id, d.char_count AS chars, (row_number() OVER (ORDER BY d.id) - 1) / {} AS b "
        "FROM curation_document d WHERE d.dataset_id = %s{}) t GROUP BY b ORDER BY b) TO STDOUT"
    ).format(sql.Literal(ID_BLOCK), where)
    partial = target.with_name(target.name + ".tmp")
    started = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor, open(partial, "wb") as out:
        with cursor.cursor.copy(query, params) as copy:  # type: ignore[attr-defined]
            pending = b""
            for data in copy:
                *lines, pending = (pending + bytes(data)).split(b"\n")
                for line in lines:
                    pairs = np.fromstring(line, dtype=np.int64, sep=",")
                    pairs.tofile(out)
                    rows += len(pairs) // 2
        out.flush()
        os.fsync(out.fileno())
    partial.rename(target)
    logger.info("export: %d documents chosen in %.2fs", rows, time.perf_counter() - started)
    return rows


def ids_read(path: Path) -> np.ndarray:
    """The document ids of an ids file (a read-only memory map; column 0 of the pairs)."""
    if path.stat().st_size == 0:
        return np.empty(0, dtype=np.int64)
    return np.memmap(path, dtype=np.int64, mode="r").reshape(-1, 2)[:, 0]


def id_chunks(
    path: Path, *, start: int, chunk_rows: int, chunk_chars: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``(position, ids)`` runs from row ``start``: at most ``chunk_rows`` ids and, past the
    first, at most ``chunk_chars`` characters of text."""
    if path.stat().st_size == 0:
        return
    pairs = np.memmap(path, dtype=np.int64, mode="r").reshape(-1, 2)
    pos = start
    while pos < len(pairs):
        block = pairs[pos : pos + chunk_rows]
        chars = np.cumsum(block[:, 1])
        take = max(1, int(np.searchsorted(chars, chunk_chars, side="right")))
        yield pos, np.array(block[:take, 0])
        pos += take


def redact_text(text: str, spans: list[list[Any]]) -> tuple[str, list[int]]:
    """Replace each ``[start, end, kind]`` span with its token ([EMAIL], [PHONE], [IP], [CARD]).

    Spans are the pii step's: sorted, non-overlapping, in Python string offsets.
    Returns the text and the count replaced per kind, in ``PII_KINDS`` order.
    """
    counts = [0] * len(PII_KINDS)
    parts: list[str] = []
    pos = 0
    for start, end, kind in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        parts += [text[pos:start], PII_TOKENS.get(kind, "[PII]")]
        if kind in PII_KINDS:
            counts[PII_KINDS.index(kind)] += 1
        pos = end
    parts.append(text[pos:])
    return "".join(parts), counts


@dataclass(frozen=True)
class Chunk:
    """Rows ready to write: the table, and per row the numbers the card summarizes."""

    table: pa.Table
    stats: np.ndarray


class RowReader:
    """Reads chunks of the plan's columns for given document ids, in id order."""

    def __init__(self, *, plan: Plan, dataset_id: int) -> None:
        self.plan = plan
        selects = [c.select for c in plan.columns]
        if plan.redact:
            spans = plan.pii_spans
            selects.append(
                sql.SQL("s.{}::text").format(sql.Identifier(spans.column_name))
                if spans is not None
                else sql.SQL("NULL::text")
            )
        needs_signals = plan.redact or any(c.signal is not None for c in plan.columns)
        join = (
            sql.SQL(" LEFT JOIN {} s ON s.dataset_id = {} AND s.document_id = d.id").format(
                sql.Identifier(SIGNAL_TABLE), sql.Literal(int(dataset_id))
            )
            if needs_signals
            else sql.SQL("")
        )
        # A join to unnest(ids), not ``d.id = ANY(ids)``: the planner estimates ANY
        # element by element, which cost more than running the query (bench/export_bench.py).
        self.query = sql.SQL(
            "SELECT {} FROM unnest(%s::bigint[]) AS k(id) JOIN curation_document d ON d.id = k.id"
            "{} WHERE d.dataset_id = {} ORDER BY d.id"
        ).format(sql.SQL(", ").join(selects), join, sql.Literal(int(dataset_id)))
        self.text_index = next(
            (i for i, c in enumerate(plan.columns) if c.name == "text" and c.signal is None), None
        )
        self.stat_indexes = [plan.columns.index(c) for c in plan.histogram_columns]

    def read(self, ids: np.ndarray) -> Chunk:
        # One text parameter: psycopg dumps a list of thousands of ints slowly.
        id_array = "{" + ",".join(map(str, ids.tolist())) + "}"
        connection.ensure_connection()
        # A plain psycopg cursor on Django's connection (same session and transaction):
        # server-side binding, where Django's client-side binding would quote the array.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(self.query, [id_array])
            rows = cursor.fetchall()
        width = len(self.plan.columns) + (1 if self.plan.redact else 0)
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * width
        stats = np.empty((len(rows), len(self.plan.stat_names)), dtype=np.float64)
        for j, i in enumerate(self.stat_indexes):
            stats[:, j] = np.array(columns[i], dtype=np.float64)
        if self.plan.redact and self.text_index is not None:
            columns[self.text_index] = self._redact(
                columns[self.text_index], columns[-1], stats[:, len(self.stat_indexes) :]
            )
        arrays = [
            pa.array(columns[i], type=ARROW_TYPES[c.dtype]) for i, c in enumerate(self.plan.columns)
        ]
        names = [c.name for c in self.plan.columns]
        return Chunk(table=pa.Table.from_arrays(arrays, names=names), stats=stats)

    @staticmethod
    def _redact(
        texts: tuple[str, ...], spans: tuple[str | None, ...], out: np.ndarray
    ) -> list[str]:
        """Redacted texts; fills ``out`` with [unscanned, count per kind] for each row."""
        redacted = []
        for row, (text, raw) in enumerate(zip(texts, spans, strict=True)):
            if raw is None:
                out[row] = [1, *([0] * len(PII_KINDS))]
                redacted.append(text)
                continue
            text, counts = redact_text(text, orjson.loads(raw))
            out[row] = [0, *counts]
            redacted.append(text)
        return redacted
