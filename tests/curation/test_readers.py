from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curation.services.readers import (
    FORMATS,
    Record,
    Rejection,
    SourceError,
    count_bytes,
    detect_format,
    iter_records,
)


def jsonl(*rows: Any) -> bytes:
    """One line per row; bytes rows are written verbatim, anything else as JSON."""
    lines = [row if isinstance(row, bytes) else orjson.dumps(row) for row in rows]
    return b"\n".join(lines) + b"\n"


def records(items: list[Record | Rejection]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def rejections(items: list[Record | Rejection]) -> list[Rejection]:
    return [item for item in items if isinstance(item, Rejection)]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_jsonl_round_trips_text_id_and_meta(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl",
        jsonl(
            {"id": "a", "text": "hello", "lang": "en", "tags": ["x", {"y": 1}]},
            {"id": "b", "text": "world", "score": 0.5, "extra": None},
        ),
    )

    items = list(iter_records(path, id_field="id"))

    first_end = path.read_bytes().index(b"\n") + 1
    assert items == [
        Record("data.jsonl", 1, first_end, "hello", "a", {"lang": "en", "tags": ["x", {"y": 1}]}),
        Record("data.jsonl", 2, path.stat().st_size, "world", "b", {"score": 0.5, "extra": None}),
    ]


def test_jsonl_without_id_field_uses_source_and_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a"}, {"text": "b"}))

    ids = [item.external_id for item in records(list(iter_records(path)))]

    assert ids == ["data.jsonl:1", "data.jsonl:2"]


def test_offsets_point_just_after_each_line(tmp_path: Path) -> None:
    data = jsonl({"text": "a"}, b"", {"text": "bé"}, {"text": "c"})
    path = write(tmp_path / "data.jsonl", data)

    offsets = [item.offset for item in records(list(iter_records(path)))]

    ends = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    assert offsets == [ends[0], ends[2], ends[3]]


def test_custom_text_field_is_read_and_kept_out_of_meta(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"content": "hi", "text": "other"}))

    (item,) = list(iter_records(path, text_field="content"))

    assert isinstance(item, Record)
    assert item.text == "hi"
    assert item.meta == {"text": "other"}


def test_gzip_jsonl_round_trips(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl.gz", gzip.compress(jsonl({"text": "a", "k": 1}, {"text": "b"}))
    )

    items = list(iter_records(path))

    assert items == [
        Record("data.jsonl.gz", 1, None, "a", "data.jsonl.gz:1", {"k": 1}),
        Record("data.jsonl.gz", 2, None, "b", "data.jsonl.gz:2", {}),
    ]


def test_gzip_with_several_members_is_read_to_the_end(tmp_path: Path) -> None:
    data = gzip.compress(jsonl({"text": "a"})) + gzip.compress(jsonl({"text": "b"}))
    path = write(tmp_path / "data.json.gz", data)

    texts = [item.text for item in records(list(iter_records(path)))]

    assert texts == ["a", "b"]


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.zstd"])
def test_zstd_jsonl_round_trips_across_frames(tmp_path: Path, suffix: str) -> None:
    compressor = zstandard.ZstdCompressor()
    data = compressor.compress(jsonl({"text": "a", "n": 1})) + compressor.compress(
        jsonl({"text": "b", "n": 2})
    )
    path = write(tmp_path / f"data{suffix}", data)

    items = records(list(iter_records(path)))

    assert [(item.number, item.text, item.meta, item.offset) for item in items] == [
        (1, "a", {"n": 1}, None),
        (2, "b", {"n": 2}, None),
    ]


BAD_LINES: list[tuple[str, bytes, list[str], str | None]] = [
    ("invalid_json", b'{"text": "a" "b"}', ["invalid JSON", "column 14"], None),
    ("not_an_object", b'["text", "a"]', ["an array", "not a JSON object"], None),
    ("scalar_line", b"42", ["an integer", "not a JSON object"], None),
    (
        "missing_text",
        b'{"body": "a", "title": "t"}',
        ["missing text field 'text'", "'body'", "'title'"],
        "text",
    ),
    ("text_not_string", b'{"text": ["a"]}', ["'text' is an array", "not a string"], "text"),
    ("text_null", b'{"text": null}', ["'text' is null"], "text"),
    ("nul_in_text", b'{"text": "ab\\u0000c"}', ["NUL", "character 2", "PostgreSQL"], "text"),
    ("nul_in_meta_value", b'{"text": "ok", "m": {"k": ["x\\u0000"]}}', ["NUL", "m.k[0]"], "m"),
    ("nul_in_meta_key", b'{"text": "ok", "k\\u0000": 1}', ["NUL", "PostgreSQL"], "k\\x00"),
    ("raw_nul_byte", b'{"text": "a\x00b"}', ["NUL byte at byte 11", "PostgreSQL"], None),
    ("invalid_utf8", b'{"text": "ab\xffc"}', ["invalid UTF-8 at byte 12"], None),
]


@pytest.mark.parametrize(
    ("line", "expected", "field"),
    [case[1:] for case in BAD_LINES],
    ids=[case[0] for case in BAD_LINES],
)
def test_bad_jsonl_line_is_rejected_at_its_exact_line(
    tmp_path: Path, line: bytes, expected: list[str], field: str | None
) -> None:
    path = write(
        tmp_path / "data.jsonl", jsonl({"text": "first"}, b"", b"  ", line, {"text": "last"})
    )

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [1, 5]
    (rejection,) = rejections(items)
    assert rejection.source == "data.jsonl"
    assert rejection.number == 4
    assert rejection.field == field
    for fragment in expected:
        assert fragment in rejection.reason


def test_missing_text_field_lists_at_most_ten_fields(tmp_path: Path) -> None:
    row = {f"f{index:02}": index for index in range(15)}
    path = write(tmp_path / "data.jsonl", jsonl(row))

    (rejection,) = list(iter_records(path))

    assert isinstance(rejection, Rejection)
    assert "'f09'" in rejection.reason
    assert "'f10'" not in rejection.reason
    assert "and 5 more" in rejection.reason


def test_oversize_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    limit = 1024 * 1024
    big = b'{"text": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a"}, big, {"text": "b"}))
    size = len(big)
    del big

    tracemalloc.start()
    try:
        items = list(iter_records(path, max_record_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # readline(n) briefly holds about 2n bytes; the 5 MB line itself is never held.
    assert peak < 3 * limit
    assert [(item.number, item.text) for item in records(items)] == [(1, "a"), (3, "b")]
    (rejection,) = rejections(items)
    assert rejection.number == 2
    assert f"{size:,} bytes" in rejection.reason
    assert f"{limit:,} bytes" in rejection.reason
    assert "WINNOW_MAX_RECORD_BYTES" in rejection.reason
    assert records(items)[1].offset == path.stat().st_size


def test_oversize_line_in_gzip_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    limit = 1024 * 1024
    big = b'{"text": "' + b"y" * (5 * 1024 * 1024) + b'"}'
    path = write(tmp_path / "data.jsonl.gz", gzip.compress(jsonl(big, {"text": "b"})))
    del big

    tracemalloc.start()
    try:
        items = list(iter_records(path, max_record_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 3 * limit
    assert [(type(item).__name__, item.number) for item in items] == [
        ("Rejection", 1),
        ("Record", 2),
    ]


def test_line_of_exactly_the_limit_is_kept(tmp_path: Path) -> None:
    line = b'{"text": "' + b"z" * 90 + b'"}'
    path = write(tmp_path / "data.jsonl", line + b"\r\n" + line + b"x\n")

    items = list(iter_records(path, max_record_bytes=len(line)))

    assert [type(item).__name__ for item in items] == ["Record", "Rejection"]
    assert items[1].number == 2
    assert f"{len(line) + 1:,} bytes" in items[1].reason  # type: ignore[union-attr]


def test_blank_lines_are_neither_records_nor_rejections(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", b"\n\n" + jsonl({"text": "a"}) + b"   \n\t\n")

    items = list(iter_records(path))

    assert items == [Record("data.jsonl", 3, 15, "a", "data.jsonl:3", {})]


def test_final_line_without_newline_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", b'{"text": "a"}\n{"text": "b"}')

    items = records(list(iter_records(path)))

    assert [(item.text, item.offset) for item in items] == [("a", 14), ("b", 27)]


def test_empty_text_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": ""}, {"text": "   "}))

    assert [item.text for item in records(list(iter_records(path)))] == ["", "   "]


def test_byte_order_mark_on_first_line_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", b"\xef\xbb\xbf" + jsonl({"text": "a"}))

    assert [item.text for item in records(list(iter_records(path)))] == ["a"]


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", b'{"text": "a"}\r\n\r\n{"text": "b"}\r\n')

    assert [(i.number, i.text) for i in records(list(iter_records(path)))] == [(1, "a"), (3, "b")]


def test_integer_ids_become_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"id": 7, "text": "a"}, {"id": -2, "text": "b"}))

    items = records(list(iter_records(path, id_field="id")))

    assert [item.external_id for item in items] == ["7", "-2"]
    assert all("id" not in item.meta for item in items)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "a boolean"),
        (1.5, "float"),
        (3.0, "float"),
        ([1], "an array"),
        ({"a": 1}, "an object"),
        (None, "null"),
        ("", "empty"),
        ("  ", "empty"),
    ],
)
def test_bad_id_types_are_rejected_naming_the_field(
    tmp_path: Path, value: Any, expected: str
) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"doc": value, "text": "a"}))

    (rejection,) = list(iter_records(path, id_field="doc"))

    assert isinstance(rejection, Rejection)
    assert rejection.field == "doc"
    assert "'doc'" in rejection.reason
    assert expected in rejection.reason


def test_missing_id_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a"}))

    (rejection,) = list(iter_records(path, id_field="doc"))

    assert isinstance(rejection, Rejection)
    assert rejection.field == "doc"
    assert "missing id field 'doc'" in rejection.reason


def test_same_text_and_id_field_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a"}))

    with pytest.raises(SourceError, match="choose a different id field"):
        iter_records(path, id_field="text")


def test_csv_round_trips_text_id_and_meta(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b'id,text,lang\n1,hello,en\n2,"a, b",fr\n')

    items = list(iter_records(path, id_field="id"))

    assert items == [
        Record("data.csv", 2, None, "hello", "1", {"lang": "en"}),
        Record("data.csv", 3, None, "a, b", "2", {"lang": "fr"}),
    ]


def test_csv_multiline_quoted_fields_keep_physical_line_numbers(tmp_path: Path) -> None:
    data = b'text,n\n"one\ntwo\nthree",1\nsingle,2\n\n"x\r\ny",3\nlast,4\n'
    path = write(tmp_path / "data.csv", data)

    items = records(list(iter_records(path)))

    assert [(item.number, item.text, item.meta["n"]) for item in items] == [
        (2, "one\ntwo\nthree", "1"),
        (5, "single", "2"),
        (7, "x\r\ny", "3"),
        (9, "last", "4"),
    ]


def test_csv_row_with_wrong_field_count_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"text,a\nok,1\ntoo,many,fields\nshort\nfine,2\n")

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [2, 5]
    assert [(r.number, "3 fields" in r.reason) for r in rejections(items)][0] == (3, True)
    assert [r.number for r in rejections(items)] == [3, 4]
    assert "header has 2" in rejections(items)[1].reason


def test_csv_invalid_utf8_is_rejected_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b'text,a\nok,1\n"multi\nb\xffad",2\nfine,3\n')

    items = list(iter_records(path))

    assert [item.text for item in records(items)] == ["ok", "fine"]
    (rejection,) = rejections(items)
    assert rejection.number == 3
    assert "invalid UTF-8 at byte 1 of line 4" in rejection.reason


def test_csv_nul_in_text_and_meta_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"text,a\nx\x00y,1\nok,m\x00\nfine,2\n")

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [4]
    first, second = rejections(items)
    assert (first.number, first.field) == (2, "text")
    assert "character 1" in first.reason
    assert (second.number, second.field) == (3, "a")


def test_csv_oversize_records_are_skipped_and_numbering_stays_right(tmp_path: Path) -> None:
    limit = 64 * 1024
    one_line = b"x" * (4 * 1024 * 1024)
    many_lines = b"\n".join([b"y" * 1000] * 4000)
    data = (
        b"text,n\n"
        + one_line
        + b",1\n"
        + b'"'
        + many_lines
        + b'",2\n'
        + b'"'
        + one_line
        + b'\nrest",3\n'
        + b"ok,4\n"
    )
    path = write(tmp_path / "data.csv", data)
    del data, one_line, many_lines

    tracemalloc.start()
    try:
        items = list(iter_records(path, max_record_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Bounded by a small multiple of the limit, far below the 4 MB records.
    assert peak < 24 * limit
    assert [(item.number, item.text) for item in records(items)] == [(4005, "ok")]
    assert [r.number for r in rejections(items)] == [2, 3, 4003]
    assert all("WINNOW_MAX_RECORD_BYTES" in r.reason for r in rejections(items))


def test_csv_gz_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv.gz", gzip.compress(b"text,k\na,1\nb,2\n"))

    items = list(iter_records(path))

    assert [(item.number, item.text, item.meta) for item in records(items)] == [
        (2, "a", {"k": "1"}),
        (3, "b", {"k": "2"}),
    ]


def test_csv_without_text_column_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"body,n\na,1\n")

    with pytest.raises(SourceError, match="no column 'text'.*'body', 'n'"):
        list(iter_records(path))


def test_csv_with_header_only_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"text,n\n\n")

    with pytest.raises(SourceError, match="no data rows"):
        list(iter_records(path))


def write_parquet(path: Path, table: pa.Table, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return path


def test_parquet_round_trips_text_id_and_meta(tmp_path: Path) -> None:
    table = pa.table({"id": [10, 11], "text": ["a", "b"], "lang": ["en", None]})
    path = write_parquet(tmp_path / "data.parquet", table)

    items = list(iter_records(path, id_field="id"))

    assert items == [
        Record("data.parquet", 1, None, "a", "10", {"lang": "en"}),
        Record("data.parquet", 2, None, "b", "11", {"lang": None}),
    ]


def test_parquet_meta_is_converted_to_json_safe_values(tmp_path: Path) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    table = pa.table(
        {
            "text": ["a", "b"],
            "ts": pa.array([when, None], pa.timestamp("us", tz="UTC")),
            "day": pa.array([dt.date(2024, 1, 2), None], pa.date32()),
            "blob": pa.array([b"\x00\x01", None], pa.binary()),
            "price": pa.array([Decimal("1.25"), None], pa.decimal128(5, 2)),
            "score": pa.array([math.nan, math.inf], pa.float64()),
            "ratio": pa.array([0.5, None], pa.float32()),
            "tags": pa.array([["x", "y"], []], pa.list_(pa.string())),
            "info": pa.array(
                [{"k": 1, "s": "v"}, None], pa.struct([("k", pa.int64()), ("s", pa.string())])
            ),
            "attrs": pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int64())),
            "flag": [True, False],
        }
    )
    path = write_parquet(tmp_path / "data.parquet", table)

    first, second = records(list(iter_records(path)))

    assert first.meta == {
        "ts": "2024-05-06T07:08:09+00:00",
        "day": "2024-01-02",
        "blob": "AAE=",
        "price": "1.25",
        "score": None,
        "ratio": 0.5,
        "tags": ["x", "y"],
        "info": {"k": 1, "s": "v"},
        "attrs": {"a": 1},
        "flag": True,
    }
    assert second.meta["score"] is None
    assert second.meta["tags"] == []
    json.dumps([first.meta, second.meta], allow_nan=False)


def test_parquet_null_text_and_invalid_utf8_are_rejected(tmp_path: Path) -> None:
    bad = pa.Array.from_buffers(
        pa.string(),
        3,
        [
            None,
            pa.py_buffer(b"\x00\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00\x07\x00\x00\x00"),
            pa.py_buffer(b"oka\xffcok"),
        ],
    )
    table = pa.table({"text": pa.array(["x", "y", None]), "note": bad})
    path = write_parquet(tmp_path / "data.parquet", table)

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [1]
    bad_utf8, null_text = rejections(items)
    assert (null_text.number, null_text.field) == (3, "text")
    assert "null" in null_text.reason
    assert bad_utf8.number == 2
    assert "column 'note'" in bad_utf8.reason
    assert "byte 1" in bad_utf8.reason


def test_parquet_nul_in_meta_string_is_rejected(tmp_path: Path) -> None:
    table = pa.table({"text": ["a", "b"], "note": ["fine", "bad\x00"]})
    path = write_parquet(tmp_path / "data.parquet", table)

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [1]
    (rejection,) = rejections(items)
    assert (rejection.number, rejection.field) == (2, "note")


def test_parquet_oversize_text_is_rejected(tmp_path: Path) -> None:
    table = pa.table({"text": ["short", "é" * 600]})
    path = write_parquet(tmp_path / "data.parquet", table)

    items = list(iter_records(path, max_record_bytes=1000))

    assert [type(item).__name__ for item in items] == ["Record", "Rejection"]
    assert "1,200 bytes" in items[1].reason  # type: ignore[union-attr]


def test_parquet_with_non_string_text_column_is_a_source_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "data.parquet", pa.table({"text": [1, 2]}))

    with pytest.raises(SourceError, match="type int64"):
        list(iter_records(path))


def test_parquet_float_id_column_is_a_source_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "data.parquet", pa.table({"text": ["a"], "id": [1.0]}))

    with pytest.raises(SourceError, match="ids must be strings or integers"):
        list(iter_records(path, id_field="id"))


def test_hf_dataset_save_to_disk_is_read(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    directory = tmp_path / "ds"
    datasets.Dataset.from_dict(
        {"text": ["a", "b", "c"], "uid": [5, 6, 7], "x": [1.5, 2.5, 3.5]}
    ).save_to_disk(directory)

    assert detect_format(directory) == "hf"
    items = list(iter_records(directory, id_field="uid"))

    shard = "data-00000-of-00001.arrow"
    assert items == [
        Record(shard, 1, None, "a", "5", {"x": 1.5}),
        Record(shard, 2, None, "b", "6", {"x": 2.5}),
        Record(shard, 3, None, "c", "7", {"x": 3.5}),
    ]


def test_hf_dataset_dict_save_to_disk_reads_every_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    directory = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["t1", "t2"]}),
            "test": datasets.Dataset.from_dict({"text": ["e1"]}),
        }
    ).save_to_disk(directory)

    assert detect_format(directory) == "hf"
    items = records(list(iter_records(directory)))

    shard = "data-00000-of-00001.arrow"
    assert [(item.source, item.number, item.text, item.external_id) for item in items] == [
        (f"train/{shard}", 1, "t1", f"train/{shard}:1"),
        (f"train/{shard}", 2, "t2", f"train/{shard}:2"),
        (f"test/{shard}", 1, "e1", f"test/{shard}:1"),
    ]
    assert count_bytes(directory) == sum(p.stat().st_size for p in directory.rglob("*.arrow"))

    resumed = list(iter_records(directory, start_after=(f"train/{shard}", 1, None)))
    assert [item.text for item in records(resumed)] == ["t2", "e1"]


def test_hf_dataset_with_several_shards_reads_them_in_state_order(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    directory = tmp_path / "ds"
    texts = [f"t{index}" for index in range(10)]
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(directory, num_shards=3)

    items = records(list(iter_records(directory)))

    assert [item.text for item in items] == texts
    assert len({item.source for item in items}) == 3


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b.jsonl", jsonl({"text": "b"}))
    write(tmp_path / "a" / "z.csv", b"text\naz\n")
    write(tmp_path / "a" / "b.jsonl.gz", gzip.compress(jsonl({"text": "ab"})))
    write_parquet(tmp_path / "c" / "d.parquet", pa.table({"text": ["cd"]}))
    write(tmp_path / ".hidden.jsonl", jsonl({"text": "hidden"}))
    write(tmp_path / ".git" / "x.jsonl", jsonl({"text": "hidden dir"}))
    write(tmp_path / "notes.txt", b"hello")
    write(tmp_path / "empty.jsonl", b"")

    items = list(iter_records(tmp_path))

    assert [(item.source, item.number) for item in items] == [
        ("a/b.jsonl.gz", 1),
        ("a/z.csv", 2),
        ("b.jsonl", 1),
        ("c/d.parquet", 1),
        ("empty.jsonl", 0),
        ("notes.txt", 0),
    ]
    assert [item.text for item in records(items)] == ["ab", "az", "b", "cd"]
    empty, unknown = rejections(items)
    assert "is empty" in empty.reason
    assert "unsupported extension" in unknown.reason
    assert count_bytes(tmp_path) == sum(
        (tmp_path / name).stat().st_size
        for name in ["b.jsonl", "a/z.csv", "a/b.jsonl.gz", "c/d.parquet", "empty.jsonl"]
    )


def test_directory_file_without_text_column_is_a_rejection(tmp_path: Path) -> None:
    write(tmp_path / "good.csv", b"text\na\n")
    write(tmp_path / "labels.csv", b"label,score\nx,1\n")

    items = list(iter_records(tmp_path))

    assert [item.source for item in records(items)] == ["good.csv"]
    (rejection,) = rejections(items)
    assert (rejection.source, rejection.number, rejection.field) == ("labels.csv", 0, "text")


def test_directory_holding_an_hf_dataset_reads_it_in_place(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["hf"]}).save_to_disk(tmp_path / "m" / "ds")
    write(tmp_path / "a.jsonl", jsonl({"text": "a"}))
    write(tmp_path / "z.jsonl", jsonl({"text": "z"}))

    items = list(iter_records(tmp_path))

    assert [(item.source, item.text) for item in records(items)] == [
        ("a.jsonl", "a"),
        ("m/ds/data-00000-of-00001.arrow", "hf"),
        ("z.jsonl", "z"),
    ]
    assert rejections(items) == []


def test_directory_without_supported_files_is_a_source_error(tmp_path: Path) -> None:
    write(tmp_path / "readme.md", b"hi")

    with pytest.raises(SourceError, match="no supported data files"):
        iter_records(tmp_path)


@pytest.mark.parametrize(
    ("name", "data"),
    [("data.jsonl", b""), ("blank.jsonl", b"\n  \n\n"), ("data.csv", b""), ("data.parquet", b"")],
)
def test_empty_file_is_a_source_error(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path / name, data)

    with pytest.raises(SourceError, match="is empty"):
        list(iter_records(path))


def test_parquet_without_rows_is_a_source_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "data.parquet", pa.table({"text": pa.array([], pa.string())}))

    with pytest.raises(SourceError, match="has no rows"):
        list(iter_records(path))


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        iter_records(tmp_path / "nope.jsonl")


def test_unknown_extension_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", b"[]")

    with pytest.raises(SourceError, match="rename it to .jsonl"):
        iter_records(path)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("data.parquet", b'{"text": "a"}\n', "looks like text starting with"),
        (
            "data.jsonl.gz",
            jsonl({"text": "a"}),
            "says gzip-compressed data but the content looks like text",
        ),
        ("data.csv.gz", b"text\na\n", "says gzip-compressed data"),
        ("data.jsonl.zst", gzip.compress(b"x"), "looks like gzip-compressed data"),
        ("data.jsonl", gzip.compress(jsonl({"text": "a"})), "add .gz to its name"),
        ("data.csv", b"PAR1\x00\x00", "looks like a Parquet file"),
    ],
)
def test_content_that_does_not_match_the_extension_is_a_source_error(
    tmp_path: Path, name: str, data: bytes, expected: str
) -> None:
    path = write(tmp_path / name, data)

    with pytest.raises(SourceError, match=name.replace(".", r"\.")) as error:
        list(iter_records(path))

    assert expected in str(error.value)


def test_truncated_gzip_is_a_source_error_naming_the_last_row(tmp_path: Path) -> None:
    data = gzip.compress(jsonl(*({"text": f"row {index}"} for index in range(2000))))
    path = write(tmp_path / "data.jsonl.gz", data[: len(data) // 2])

    seen: list[Record | Rejection] = []
    with pytest.raises(SourceError, match=r"data\.jsonl\.gz could not be read after row \d+"):
        for item in iter_records(path):
            seen.append(item)

    assert seen
    assert seen[-1].number == len(seen)


def test_truncated_parquet_is_a_source_error(tmp_path: Path) -> None:
    full = write_parquet(tmp_path / "full.parquet", pa.table({"text": ["a"] * 100}))
    path = write(tmp_path / "cut.parquet", full.read_bytes()[:-20])

    with pytest.raises(SourceError, match="truncated"):
        list(iter_records(path))


def test_resume_by_offset_seeks_without_rereading(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl(*({"text": f"t{index}"} for index in range(1, 6))))
    first_two = records(list(iter_records(path)))[:2]
    resume_at = first_two[1]
    # Spoil the lines already imported: a resume that re-read them would reject them.
    data = path.read_bytes()
    assert resume_at.offset is not None
    path.write_bytes(b"X" * (resume_at.offset - 1) + b"\n" + data[resume_at.offset :])

    items = list(iter_records(path, start_after=("data.jsonl", 2, resume_at.offset)))

    assert [(item.number, item.text) for item in records(items)] == [
        (3, "t3"),
        (4, "t4"),
        (5, "t5"),
    ]
    assert rejections(items) == []


def test_resume_by_rereading_gzip_skips_up_to_the_record(tmp_path: Path) -> None:
    lines = [{"text": f"t{index}"} for index in range(1, 6)]
    path = write(tmp_path / "data.jsonl.gz", gzip.compress(jsonl(lines[0], b"{bad", *lines[1:])))

    items = list(iter_records(path, start_after=("data.jsonl.gz", 3, None)))

    assert [(item.number, item.text) for item in records(items)] == [
        (4, "t3"),
        (5, "t4"),
        (6, "t5"),
    ]


def test_resume_in_directory_skips_earlier_files(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", jsonl({"text": "a1"}, {"text": "a2"}))
    write(tmp_path / "b.csv", b"text\nb1\nb2\nb3\n")
    write(tmp_path / "c.jsonl", jsonl({"text": "c1"}))

    items = list(iter_records(tmp_path, start_after=("b.csv", 3, None)))

    assert [(item.source, item.text) for item in records(items)] == [
        ("b.csv", "b3"),
        ("c.jsonl", "c1"),
    ]


def test_resume_parquet_skips_whole_row_groups(tmp_path: Path) -> None:
    texts = [f"t{index}" for index in range(1, 101)]
    path = write_parquet(tmp_path / "data.parquet", pa.table({"text": texts}), row_group_size=30)

    items = records(list(iter_records(path, start_after=("data.parquet", 65, None))))

    assert [item.number for item in items] == list(range(66, 101))
    assert [item.text for item in items] == texts[65:]


def test_resume_from_unknown_source_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "a"}))

    with pytest.raises(SourceError, match="cannot resume"):
        iter_records(path, start_after=("other.jsonl", 1, None))


def test_resume_at_an_offset_inside_a_line_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", jsonl({"text": "abc"}, {"text": "def"}))

    with pytest.raises(SourceError, match="not the start of a line"):
        list(iter_records(path, start_after=("data.jsonl", 1, 5)))


def test_explicit_format_reads_an_unusual_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", jsonl({"text": "a"}))

    assert [item.text for item in records(list(iter_records(path, fmt="jsonl")))] == ["a"]
    with pytest.raises(SourceError, match="unknown format"):
        iter_records(path, fmt="xml")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.json.gz", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("a.jsonl.zstd", "jsonl"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
    ],
)
def test_detect_format_by_extension(tmp_path: Path, name: str, expected: str) -> None:
    assert detect_format(write(tmp_path / name, b"x")) == expected
    assert expected in FORMATS


@pytest.mark.parametrize("name", ["a.txt", "a.json", "a.gz", "a.arrow", ".jsonl"])
def test_detect_format_rejects_unknown_files(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError):
        detect_format(write(tmp_path / name, b"x"))


def test_detect_format_of_directories(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    hf = tmp_path / "hf"
    write(hf / "dataset_info.json", b"{}")
    write(hf / "data-00000-of-00001.arrow", b"")
    dataset_dict = tmp_path / "dd"
    write(dataset_dict / "dataset_dict.json", b'{"splits": []}')
    lone_state = tmp_path / "state_only"
    write(lone_state / "state.json", b"{}")

    assert detect_format(plain) == "dir"
    assert detect_format(hf) == "hf"
    assert detect_format(dataset_dict) == "hf"
    assert detect_format(lone_state) == "dir"
    with pytest.raises(SourceError, match="does not exist"):
        detect_format(tmp_path / "missing")


def test_csv_byte_order_mark_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"\xef\xbb\xbftext,n\na,1\n")

    assert [item.text for item in records(list(iter_records(path)))] == ["a"]


def test_csv_oversize_header_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"text," + b"h" * 5000 + b"\na,1\n")

    with pytest.raises(SourceError, match="unusable header row"):
        list(iter_records(path, max_record_bytes=1000))


def test_parquet_nul_inside_nested_meta_is_rejected(tmp_path: Path) -> None:
    table = pa.table(
        {
            "text": ["a", "b", "c", "d"],
            "tags": pa.array([["x"], ["y", "z\x00"], None, []], pa.list_(pa.string())),
            "attrs": pa.array(
                [[("k", "v")], None, [("k", "v\x00")], None],
                pa.map_(pa.string(), pa.string()),
            ),
        }
    )
    path = write_parquet(tmp_path / "data.parquet", table)

    items = list(iter_records(path))

    assert [item.number for item in records(items)] == [1, 4]
    tags, attrs = rejections(items)
    assert (tags.number, tags.field) == (2, "tags")
    assert "tags[1]" in tags.reason
    assert (attrs.number, attrs.field) == (3, "attrs")


def test_arrow_file_format_shards_are_read_too(tmp_path: Path) -> None:
    directory = tmp_path / "ds"
    directory.mkdir()
    write(directory / "dataset_info.json", b"{}")
    table = pa.table({"text": ["a", "b"], "n": [1, 2]})
    with pa.OSFile(str(directory / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    items = records(list(iter_records(directory)))

    assert [(item.number, item.text, item.meta) for item in items] == [
        (1, "a", {"n": 1}),
        (2, "b", {"n": 2}),
    ]


def test_explicit_format_in_a_directory_skips_other_formats(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", jsonl({"text": "a"}))
    write(tmp_path / "b.csv", b"text\nb\n")

    items = list(iter_records(tmp_path, fmt="csv"))

    assert [item.text for item in records(items)] == ["b"]
    (skipped,) = rejections(items)
    assert (skipped.source, skipped.number) == ("a.jsonl", 0)
    assert "import format is csv" in skipped.reason


def test_count_bytes_of_a_single_file_is_its_size(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl.gz", gzip.compress(jsonl({"text": "a"})))

    assert count_bytes(path) == path.stat().st_size


def test_truncated_zstd_is_a_source_error_not_a_silent_prefix(tmp_path: Path) -> None:
    data = zstandard.ZstdCompressor().compress(
        jsonl(*({"text": f"row {index} " * 20} for index in range(5000)))
    )
    path = write(tmp_path / "data.jsonl.zst", data[: len(data) // 2])

    with pytest.raises(SourceError, match=r"data\.jsonl\.zst ends inside a zstd frame"):
        list(iter_records(path))


def test_zstd_skippable_frames_are_ignored(tmp_path: Path) -> None:
    compressor = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False)
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"notes"
    data = (
        compressor.compress(jsonl({"text": "a"}))
        + skippable
        + compressor.compress(jsonl({"text": "b"}))
    )
    path = write(tmp_path / "data.jsonl.zst", data)

    assert [item.text for item in records(list(iter_records(path)))] == ["a", "b"]
