"""Pairwise items from duplicate groups, random pairs and uploaded files of external ids."""

from __future__ import annotations

import io

import pytest

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Item
from annotate.services.pairs import (
    pairs_add_from_duplicates,
    pairs_add_from_file,
    pairs_add_random,
)
from curation.models import DuplicateGroup, DuplicateMember
from tests.annotate.factories import make_project

pytestmark = pytest.mark.django_db


def _project(n: int = 8, name: str = "pairs") -> tuple[AnnotationProject, list[int]]:
    project = make_project(texts=[f"text {i}" for i in range(n)], add_items=False, name=name)
    ids = list(project.dataset.documents.order_by("id").values_list("id", flat=True))
    return project, ids


def _pairs(project: AnnotationProject) -> set[tuple[int, int | None]]:
    return set(
        Item.objects.filter(project=project).values_list("document_id", "second_document_id")
    )


def _group(project: AnnotationProject, run: str, kind: str, members: list[int]) -> None:
    group = DuplicateGroup.objects.create(
        dataset=project.dataset,
        kind=kind,
        step="x",
        step_version="1",
        run_key=run,
        size=len(members),
    )
    DuplicateMember.objects.bulk_create(
        DuplicateMember(group=group, document_id=d, is_representative=i == 0)
        for i, d in enumerate(members)
    )


def test_duplicate_pairs_put_the_representative_first_from_the_newest_run() -> None:
    project, ids = _project()
    _group(project, "old", "minhash", [ids[6], ids[7]])
    _group(project, "new", "minhash", [ids[0], ids[1], ids[2]])
    _group(project, "new", "minhash", [ids[3], ids[4]])
    _group(project, "exact-run", "exact", [ids[5], ids[6]])
    assert pairs_add_from_duplicates(project=project, kind="minhash").added == 3
    assert _pairs(project) == {(ids[0], ids[1]), (ids[0], ids[2]), (ids[3], ids[4])}
    assert pairs_add_from_duplicates(project=project, kind="minhash").added == 0
    assert pairs_add_from_duplicates(project=project, kind="exact").added == 1
    project.refresh_from_db()
    assert project.item_count == 4


def test_duplicate_pairs_with_n_take_new_pairs_each_time() -> None:
    project, ids = _project()
    _group(project, "r", "semantic", ids[:6])
    assert pairs_add_from_duplicates(project=project, kind="semantic", n=2, seed=1).added == 2
    assert pairs_add_from_duplicates(project=project, kind="semantic", n=2, seed=1).added == 2
    assert pairs_add_from_duplicates(project=project, kind="semantic", n=9, seed=1).added == 1
    assert {a for a, _ in _pairs(project)} == {ids[0]} and len(_pairs(project)) == 5


def test_duplicate_pairs_need_groups_of_the_kind() -> None:
    project, _ = _project()
    with pytest.raises(ProjectError, match="no exact duplicate groups: run a exact dedup"):
        pairs_add_from_duplicates(project=project, kind="exact")
    with pytest.raises(ProjectError, match="is not one of"):
        pairs_add_from_duplicates(project=project, kind="fuzzy")


def test_random_pairs_are_distinct_documents_fixed_by_the_seed() -> None:
    project, ids = _project(11)
    assert pairs_add_random(project=project, n=4, seed=5).added == 4
    first = _pairs(project)
    used = [d for pair in first for d in pair]
    assert len(used) == len(set(used)) == 8 and set(used) <= set(ids)
    assert pairs_add_random(project=project, n=4, seed=5).added == 0
    Item.objects.filter(project=project).delete()
    pairs_add_random(project=project, n=4, seed=5)
    assert _pairs(project) == first
    pairs_add_random(project=project, n=4, seed=6)
    assert _pairs(project) != first
    # Eleven documents make five pairs at most.
    other, _ = _project(11, name="other")
    assert pairs_add_random(project=other, n=50).added == 5


def _lines(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_csv_pairs_are_added_and_each_bad_line_reported_by_number_and_field() -> None:
    project, ids = _project()
    data = (
        b"a,b\n"
        b"d0,d1\n"
        b"d2,\n"  # 3: b empty
        b"d3,zz\n"  # 4: b names no document
        b"\xff\xfe,d1\n"  # 5: not UTF-8
        b"d4,d4\n"  # 6: the same document
        b"\n"
        b'"d5","d6"\n'
        b"nope,d1\n"  # 9: a names no document
        b"d0,d1\n"  # a repeat: added once
        + b"x" * 200_000
        + b",d1\n"  # 11: a field past the csv module's limit
        + b"d7,d\x001\n"  # 12: NUL in b
    )
    report = pairs_add_from_file(project=project, lines=io.BytesIO(data), name="pairs.csv")
    assert report.added == 2
    assert _pairs(project) == {(ids[0], ids[1]), (ids[5], ids[6])}
    assert report.rejected == 7 and report.lines == 12
    found = [(p.line, p.field) for p in report.problems]
    assert found == [(3, "b"), (4, "b"), (5, "line"), (6, "b"), (9, "a"), (11, "line"), (12, "b")]
    messages = {p.line: str(p) for p in report.problems}
    assert "no document with external id 'zz'" in messages[4]
    assert messages[5].startswith("line 5: line: not valid UTF-8")
    assert "not valid CSV (field larger than field limit" in messages[11]
    assert "NUL byte" in messages[12]
    # Fixed lines uploaded again add only what is new.
    again = pairs_add_from_file(project=project, lines=_lines("a,b\nd0,d1\nd3,d7\n"), name="x.csv")
    assert (again.added, again.rejected) == (1, 0)


def test_jsonl_pairs_report_bad_json_and_missing_fields() -> None:
    project, ids = _project()
    text = (
        '{"a": "d0", "b": "d1"}\n'
        '{"a": "d2"}\n'  # 2: b missing
        "[1, 2]\n"  # 3: not an object
        '{"a": "d3", "b": \n'  # 4: broken JSON
        '{"a": "d4", "b": "d5", "note": "extra fields are fine"}\n'
    )
    report = pairs_add_from_file(project=project, lines=_lines(text), name="pairs.jsonl")
    assert report.added == 2
    assert _pairs(project) == {(ids[0], ids[1]), (ids[4], ids[5])}
    assert [(p.line, p.field) for p in report.problems] == [(2, "b"), (3, "line"), (4, "line")]


def test_a_csv_without_columns_a_and_b_is_refused_on_its_header() -> None:
    project, _ = _project()
    report = pairs_add_from_file(project=project, lines=_lines("x,y\nd0,d1\n"), name="p.csv")
    assert report.added == 0
    assert [str(p) for p in report.problems] == [
        "line 1: header: the first line must name columns a and b"
    ]


def test_every_refused_line_is_counted_but_only_the_first_hundred_listed() -> None:
    project, ids = _project()
    text = "a,b\n" + "".join(f"x{i},d1\n" for i in range(150)) + "d0,d1\n"
    report = pairs_add_from_file(project=project, lines=_lines(text), name="many.csv")
    assert (report.added, report.rejected, report.pairs, report.lines) == (1, 150, 1, 152)
    assert len(report.problems) == 100
    assert [p.line for p in report.problems] == list(range(2, 102))
    assert _pairs(project) == {(ids[0], ids[1])}
