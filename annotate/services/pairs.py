"""Pairwise items (text A = ``document``, text B = ``second_document``) from three sources.

Duplicate groups (each member paired with its group's representative), random pairs
fixed by a seed, and an uploaded CSV or JSONL file of external-id pairs. The first two
are one INSERT ... SELECT over the dataset; the file goes through COPY into a staging
table and is resolved against the documents in one join. A pair already in the project
is left alone, so every source can be run again.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection, transaction
from psycopg import sql

from annotate.errors import ProjectError
from annotate.models import AnnotationProject
from annotate.services.items import ItemsAdded, _after_add, item_insert_sql
from curation.models import DuplicateGroup
from curation.services.recipes.plan import latest_runs

logger = logging.getLogger(__name__)

MAX_LINES = 1_000_000
MAX_ID_CHARS = 1000
# Problems listed by line in the report; the rest are counted.
REPORTED_PROBLEMS = 100
PAIR_FORMATS = ("csv", "jsonl")


def _insert(project: AnnotationProject, picked: str, params: list[Any]) -> int:
    """Insert the pairs ``picked`` selects (columns a, b); returns how many are new."""
    with connection.cursor() as cursor:
        statement = item_insert_sql(project=project, picked=sql.SQL(picked))
        cursor.execute(statement.as_string(cursor.connection), params)
        return cursor.rowcount


@transaction.atomic
def pairs_add_from_duplicates(
    *, project: AnnotationProject, kind: str, n: int | None = None, seed: int = 0
) -> ItemsAdded:
    """Pair every member of the newest run's ``kind`` groups with its representative.

    Text A is the representative, text B the member. With ``n``, ``n`` of the pairs not
    yet in the project, in an order fixed by ``seed``.
    """
    started = time.perf_counter()
    if kind not in DuplicateGroup.Kind.values:
        raise ProjectError(f"kind {kind!r} is not one of {', '.join(DuplicateGroup.Kind.values)}")
    if n is not None and n < 1:
        raise ProjectError("n must be at least 1 (or left out for every pair)")
    run = latest_runs(dataset_id=project.dataset_id, kinds=(kind,)).get(kind)
    if run is None:
        raise ProjectError(
            f"{project.dataset.name} has no {kind} duplicate groups: run a {kind} dedup step first"
        )
    picked = (
        "SELECT r.document_id AS a, m.document_id AS b FROM curation_duplicategroup g "
        "JOIN curation_duplicatemember r ON r.group_id = g.id AND r.is_representative "
        "JOIN curation_duplicatemember m ON m.group_id = g.id AND NOT m.is_representative "
        "WHERE g.dataset_id = %s AND g.kind = %s AND g.run_key = %s AND NOT EXISTS ("
        " SELECT 1 FROM annotate_item i WHERE i.project_id = %s"
        " AND i.document_id = r.document_id AND i.second_document_id = m.document_id)"
    )
    params: list[Any] = [project.dataset_id, kind, run, project.pk]
    if n is not None:
        picked += " ORDER BY hashint8extended(m.document_id, %s) LIMIT %s"
        params += [seed, n]
    added = _insert(project, picked, params)
    _after_add(project, added)
    logger.info("project %s: added %d %s duplicate pairs", project.pk, added, kind)
    return ItemsAdded(added=added, seconds=time.perf_counter() - started)


@transaction.atomic
def pairs_add_random(*, project: AnnotationProject, n: int, seed: int = 0) -> ItemsAdded:
    """Add ``n`` random pairs of different documents, fixed by ``seed``.

    The dataset's documents are ordered by a hash of their id and ``seed``; the first
    2n are paired in that order (1st with 2nd, 3rd with 4th, ...), so no document is in
    two of the pairs and the same seed gives the same pairs (and adds nothing twice).
    """
    started = time.perf_counter()
    if n < 1:
        raise ProjectError("random pairs need n >= 1")
    picked = (
        "SELECT min(id) FILTER (WHERE mod(rank, 2) = 1) AS a,"
        " min(id) FILTER (WHERE mod(rank, 2) = 0) AS b "
        "FROM (SELECT id, row_number() OVER (ORDER BY h, id) AS rank FROM ("
        "  SELECT d.id, hashint8extended(d.id, %s) AS h FROM curation_document d"
        "  WHERE d.dataset_id = %s ORDER BY h, d.id LIMIT %s) s) r "
        "GROUP BY (rank + 1) / 2 HAVING count(*) = 2"
    )
    added = _insert(project, picked, [seed, project.dataset_id, 2 * n])
    _after_add(project, added)
    return ItemsAdded(added=added, seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class PairProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class PairsReport:
    """What an uploaded file gave: pairs added, lines read, and every refused line counted."""

    added: int = 0
    lines: int = 0
    pairs: int = 0
    rejected: int = 0
    problems: list[PairProblem] = field(default_factory=list)

    def refuse(self, line: int, field_name: str, message: str) -> None:
        self.rejected += 1
        if len(self.problems) < REPORTED_PROBLEMS:
            self.problems.append(PairProblem(line, field_name, message))


def _format_of(name: str, first: bytes) -> str:
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "jsonl" if first.lstrip().startswith(b"{") else "csv"


def _clean_id(value: object, name: str) -> tuple[str | None, str]:
    """The external id as text, or None and what is wrong with it."""
    if isinstance(value, bool) or value is None:
        return None, f"missing or not an id ({value!r}); give the document's external id"
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None, "empty or not a string: give the document's external id"
    if "\x00" in value:
        return None, "contains a NUL byte, which no external id has"
    if len(value) > MAX_ID_CHARS:
        return None, f"longer than {MAX_ID_CHARS} characters"
    return value.strip(), ""


def _parse(lines: Iterable[bytes], fmt: str, report: PairsReport) -> Iterator[tuple[int, str, str]]:
    """Yield (line number, a, b) of the good lines; report the others."""
    header: list[str] | None = None
    for number, raw in enumerate(lines, start=1):
        report.lines = number
        if number > MAX_LINES:
            report.refuse(number, "file", f"more than {MAX_LINES} lines; split the file")
            return
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            report.refuse(number, "line", f"not valid UTF-8 at byte {exc.start}; save as UTF-8")
            continue
        if not text.strip():
            continue
        if fmt == "jsonl":
            try:
                row = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                report.refuse(number, "line", f"not valid JSON ({exc}); one object per line")
                continue
            if not isinstance(row, dict):
                report.refuse(number, "line", 'not a JSON object; write {"a": id, "b": id}')
                continue
            values = {"a": row.get("a"), "b": row.get("b")}
        else:
            try:
                cells = next(csv.reader([text]))
            except csv.Error as exc:
                report.refuse(number, "line", f"not valid CSV ({exc}); quote ids with commas")
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                if "a" not in header or "b" not in header:
                    report.refuse(number, "header", "the first line must name columns a and b")
                    return
                continue
            values = {
                k: cells[header.index(k)] if header.index(k) < len(cells) else None
                for k in ("a", "b")
            }
        cleaned: dict[str, str] = {}
        for name in ("a", "b"):
            value, problem = _clean_id(values[name], name)
            if value is None:
                report.refuse(number, name, problem)
                break
            cleaned[name] = value
        else:
            if cleaned["a"] == cleaned["b"]:
                report.refuse(number, "b", "the same document as a; a pair needs two")
                continue
            yield number, cleaned["a"], cleaned["b"]


@transaction.atomic
def pairs_add_from_file(
    *, project: AnnotationProject, lines: Iterable[bytes], name: str = ""
) -> PairsReport:
    """Add pairs of external ids from CSV (columns ``a``, ``b``) or JSONL ({"a", "b"}).

    1. Each line is checked on its own: a bad line (not UTF-8, not JSON, a missing or
       empty id, a = b) is reported with its number and field, and the others go on.
    2. Good lines are staged with COPY and resolved against the dataset's external ids
       in one join; ids that name no document are reported by line and field.
    3. Resolved pairs are inserted; pairs already in the project are left alone.
    """
    iterator = iter(lines)
    first = next(iterator, b"")
    fmt = _format_of(name, first)
    report = PairsReport()
    rows = _parse(_chain(first, iterator), fmt, report)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS annotate_pair_stage "
            "(line bigint, a text, b text) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE annotate_pair_stage")
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY annotate_pair_stage (line, a, b) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
                report.pairs += 1
        # Every unresolved line is counted; only the first ones are fetched to be listed.
        cursor.execute(
            "SELECT s.line, s.a, s.b, da.id IS NULL, count(*) OVER () "
            "FROM annotate_pair_stage s "
            "LEFT JOIN curation_document da ON da.dataset_id = %s AND da.external_id = s.a "
            "LEFT JOIN curation_document db ON db.dataset_id = %s AND db.external_id = s.b "
            "WHERE da.id IS NULL OR db.id IS NULL ORDER BY s.line LIMIT %s",
            [project.dataset_id, project.dataset_id, REPORTED_PROBLEMS],
        )
        unresolved = cursor.fetchall()
        for line, a, b, a_missing, _ in unresolved:
            name_, value = ("a", a) if a_missing else ("b", b)
            report.refuse(
                line, name_, f"no document with external id {value!r} in {project.dataset.name}"
            )
        unlisted = unresolved[0][4] - len(unresolved) if unresolved else 0
        report.rejected += unlisted
        report.pairs -= len(unresolved) + unlisted
    report.added = _insert(
        project,
        "SELECT da.id AS a, db.id AS b FROM annotate_pair_stage s "
        "JOIN curation_document da ON da.dataset_id = %s AND da.external_id = s.a "
        "JOIN curation_document db ON db.dataset_id = %s AND db.external_id = s.b",
        [project.dataset_id, project.dataset_id],
    )
    _after_add(project, report.added)
    report.problems.sort(key=lambda p: p.line)
    logger.info(
        "project %s: %d pairs added from %d lines of %s, %d refused",
        project.pk,
        report.added,
        report.lines,
        name or fmt,
        report.rejected,
    )
    return report


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def pairs_add(
    *, project: AnnotationProject, source: str, kind: str = "", n: int | None = None, seed: int = 0
) -> ItemsAdded:
    """Add pairs as the pairs form asks: ``duplicates`` of a kind, or ``random`` pairs."""
    if source == "duplicates":
        return pairs_add_from_duplicates(project=project, kind=kind, n=n, seed=seed)
    if source == "random":
        return pairs_add_random(project=project, n=n or 0, seed=seed)
    raise ProjectError(f"source: {source!r} is not duplicates or random (upload a file instead)")
