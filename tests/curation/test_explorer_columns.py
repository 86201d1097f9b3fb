"""Exact counts from a big dataset's signal columns in memory (curation/explorer/columns.py).

``COLUMNS_MIN_ROWS`` is lowered so that a few hundred documents take the path a million
do. Each count must be the one PostgreSQL gives for the same query (NULLs, NaN,
infinities, rounded integer bounds, values never seen, documents without a signal row,
ids shared with another dataset), and a column must never be read at another set of
signal writes than the one it was read at.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any

import numpy as np
import pytest
from django.db import transaction
from django.test import Client

from curation import explorer
from curation.explorer import (
    DedupStatus,
    Equals,
    ExplorerQuery,
    Range,
    SignalColumn,
    column_pages,
    column_store,
    columns,
    text_hits,
    text_plan,
)
from curation.explorer import query as explorer_query
from curation.explorer.filters import Cursor, HitBits, Sort
from curation.explorer.query import ExplorerPage, ExplorerRow, _execute
from curation.models import Dataset, Document, Signal, SignalWrite
from curation.services.datasets import dataset_delete, dataset_recount
from curation.services.signals import (
    signal_defaults_write,
    signal_rows_write,
    signal_values_clear,
    signal_values_write,
    signal_writes_compact,
    signal_writes_seen,
)
from tests.curation.factories import UserFactory, make_dataset
from tests.curation.test_explorer import define
from tests.curation.test_text_plan import TextCorpus, queries

pytestmark = pytest.mark.django_db

N = 400


@pytest.fixture(autouse=True)
def every_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns for datasets of any size (reltuples is -1 before the first ANALYZE)."""
    monkeypatch.setattr(columns, "COLUMNS_MIN_ROWS", -1)
    columns.clear()


def sql_count(query: ExplorerQuery) -> int:
    """PostgreSQL's count of ``query``, never the columns'."""
    statement, params = explorer.count_sql(query)
    return int(_execute(statement, params, query=query)[0][0])


def documents(dataset: Dataset, numbers: range) -> list[int]:
    created = Document.objects.bulk_create(
        Document(
            dataset=dataset,
            external_id=f"doc-{i}",
            text=f"doc {i}",
            content_hash=i,
            char_count=5,
            word_count=2,
            line_count=1,
        )
        for i in numbers
    )
    dataset_recount(dataset=dataset)
    return [d.pk for d in created]


class Signals:
    """N documents of a dataset whose ids interleave with another's, 10 without a signal
    row, and a signal of each kind with NULLs, ties, NaN, infinities and big integers."""

    def __init__(self) -> None:
        self.dataset = make_dataset("columns")
        other = make_dataset("columns-other")
        self.ids: list[int] = []
        for start in range(0, N, 50):  # the other dataset's documents between each 50
            self.ids += documents(self.dataset, range(start, start + 50))
            documents(other, range(start, start + 7))
        rng = np.random.default_rng(11)
        self.score = define("col_score", "float")
        self.words = define("col_words", "int")
        self.flag = define("col_flag", "bool")
        self.lang = define("col_lang", "text")
        self.keep = define("exact_dedup_keep", "bool")
        self.size = define("exact_dedup_size", "int")
        specials = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300]
        self.rows: dict[int, tuple[Any, ...]] = {}
        for i, doc_id in enumerate(self.ids[:-10]):
            score: float | None = round(float(rng.normal()), 1)
            if i % 11 == 0:
                score = None
            elif i % 17 == 0:
                score = specials[(i // 17) % len(specials)]
            words = None if i % 13 == 0 else int(rng.integers(-5, 40))
            if i % 97 == 5:
                words = 2**62
            size = None if i % 19 == 0 else int(rng.choice([1, 1, 2, 3]))
            self.rows[doc_id] = (
                score,
                words,
                None if i % 23 == 0 else bool(i % 3),
                None if i % 7 == 0 else ("en", "de", "fr", "")[i % 4],
                None if i % 29 == 0 else bool(size is None or size == 1 or i % 2),
                size,
            )
        signal_rows_write(
            signals=[self.score, self.words, self.flag, self.lang, self.keep, self.size],
            dataset_id=self.dataset.pk,
            rows=[(d, *v) for d, v in self.rows.items()],
        )

    def col(self, signal: Signal) -> SignalColumn:
        return SignalColumn.of(signal)

    def query(self, **kwargs: Any) -> ExplorerQuery:
        return ExplorerQuery(dataset_id=self.dataset.pk, **kwargs)

    def bits(self, rng: np.random.Generator) -> HitBits:
        """A text's hits: a random third of the documents, over the dataset's id range."""
        first, last = min(self.ids), max(self.ids)
        chosen = [d for d in self.ids if rng.random() < 0.33]
        packed = bytearray((last - first + 8) // 8)
        for d in chosen:
            packed[(d - first) // 8] |= 1 << ((d - first) % 8)
        return HitBits(first_id=first, last_id=last, hits=len(chosen), bits=bytes(packed))


@pytest.fixture
def signals(db: Any) -> Signals:
    return Signals()


def random_queries(s: Signals, n: int, seed: int) -> list[ExplorerQuery]:
    rng = np.random.default_rng(seed)
    bounds: list[float | int | None] = [
        None,
        -1.5,
        -0.0,
        0.0,
        0.5,
        2,
        2.5,
        17,
        30.25,
        math.inf,
        -math.inf,
        math.nan,
        1e300,
        2**62,
        2**63 + 5,
        -(2**64),
    ]
    out = []
    for _ in range(n):
        ranges = []
        for signal in (s.score, s.words):
            if rng.random() < 0.7:
                lo, hi = (bounds[int(k)] for k in rng.integers(0, len(bounds), 2))
                ranges.append(Range(signal=s.col(signal), lo=lo, hi=hi))
        equals = []
        if rng.random() < 0.4:
            equals.append(Equals(signal=s.col(s.flag), value=bool(rng.random() < 0.5)))
        if rng.random() < 0.4:
            value = ["en", "de", "fr", "", "xx", "EN"][int(rng.integers(0, 6))]
            equals.append(Equals(signal=s.col(s.lang), value=value))
        dedup = []
        if rng.random() < 0.3:
            status = ("kept", "removed", "alone")[int(rng.integers(0, 3))]
            dedup.append(
                DedupStatus(kind="exact", status=status, keep=s.col(s.keep), size=s.col(s.size))
            )
        query = s.query(ranges=tuple(ranges), equals=tuple(equals), dedup=tuple(dedup))
        if not query.reads_signals:
            query = s.query(ranges=(Range(signal=s.col(s.score)),))
        if rng.random() < 0.3:
            query = dataclasses.replace(query, text="word", text_hits=s.bits(rng))
        out.append(query)
    return out


def test_columns_count_what_postgresql_counts(signals: Signals) -> None:
    nonzero = 0
    for query in random_queries(signals, 300, seed=5):
        expected = sql_count(query)
        assert columns.columns_count(query=query, read=True) == expected, query
        nonzero += expected > 0
    assert nonzero > 50  # the queries are not all empty (83 of these 300 match something)


def comparable(row: ExplorerRow) -> tuple[Any, ...]:
    """A row's fields, NaN as a string (NaN equals nothing)."""
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in vars(row).values())


def sql_page(query: ExplorerQuery, after: Cursor | None, size: int) -> ExplorerPage:
    """PostgreSQL's page (``page_sql``), never the columns'."""
    return explorer_query.sql_page(query=query, after=after, size=size)


def walk(query: ExplorerQuery, size: int, *, columns_read: bool) -> list[tuple[Any, ...]]:
    """Every row of every page, following each page's cursor through its URL encoding."""
    rows: list[tuple[Any, ...]] = []
    after: Cursor | None = None
    while True:
        if columns_read:
            found = column_pages.columns_results(query=query, after=after, size=size, read=True)
            assert found is not None and found.count == sql_count(query), query
            page = found.page
        else:
            page = sql_page(query, after, size)
        rows += [comparable(row) for row in page.rows]
        assert len(rows) <= N, query  # a cursor that does not advance repeats its page
        if page.next_cursor is None:
            return rows
        after = Cursor.decode(page.next_cursor.encode(query.sort), query.sort)


@pytest.mark.parametrize("chunk", [3, column_pages.WALK_CHUNK])
def test_pages_from_the_columns_are_postgresql_pages(
    signals: Signals, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(column_pages, "WALK_CHUNK", chunk)  # a walk of several chunks
    rng = np.random.default_rng(8)
    sorts = [None, signals.score, signals.words, signals.flag, signals.lang, signals.size]
    walked = 0
    for n, query in enumerate(random_queries(signals, 48, seed=9)):
        signal = sorts[n % len(sorts)]
        sort = Sort(
            signal=None if signal is None else SignalColumn.of(signal),
            descending=bool(rng.random() < 0.5),
        )
        query = dataclasses.replace(query, sort=sort)
        for size in (1, 7, 40) if n < 6 else (7, 40):
            expected = walk(query, size, columns_read=False)
            assert walk(query, size, columns_read=True) == expected, (query, size)
            walked += len(expected)
    assert walked > 1_000
    # Every row of each sort, both ways, through NaN, the infinities, ties and NULLs.
    for signal in sorts[1:]:
        assert signal is not None
        for descending in (False, True):
            sort = Sort(signal=SignalColumn.of(signal), descending=descending)
            query = signals.query(ranges=(Range(signal=signals.col(signals.words)),), sort=sort)
            expected = walk(query, 3, columns_read=False)
            assert walk(query, 3, columns_read=True) == expected, query


def test_a_cursor_value_the_columns_do_not_hold_pages_in_postgresql(signals: Signals) -> None:
    sort = Sort(signal=signals.col(signals.lang))
    query = signals.query(ranges=(Range(signal=signals.col(signals.score)),), sort=sort)
    after = Cursor(id=signals.ids[3], value="dz")  # between "de" and "en": in no row
    assert column_pages.columns_results(query=query, after=after, size=5, read=True) is None
    assert [comparable(r) for r in explorer.explorer_page(query=query, after=after).rows] == [
        comparable(r) for r in sql_page(query, after, explorer.PAGE_SIZE).rows
    ]


def test_queries_the_columns_cannot_answer_count_in_postgresql(signals: Signals) -> None:
    from curation.explorer import MetaEquals

    score = Range(signal=signals.col(signals.score), lo=0.0)
    for query in (
        signals.query(),  # no signal predicate: the count of documents
        signals.query(ranges=(score,), meta=MetaEquals("source", "web")),
        signals.query(ranges=(score,), text="doc"),  # text without its bits
        signals.query(equals=(Equals(signal=signals.col(signals.flag), value="true"),)),
    ):
        assert columns.columns_count(query=query, read=True) is None, query
        assert explorer.explorer_count(query=query) == sql_count(query)


def test_a_text_signal_of_too_many_values_is_not_kept(
    signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(column_store, "TEXT_CODES_MAX", 3)  # it has en, de, fr and ""
    query = signals.query(equals=(Equals(signal=signals.col(signals.lang), value="de"),))
    assert columns.columns_count(query=query, read=True) is None
    assert explorer.explorer_count(query=query) == sql_count(query) > 0


def test_a_small_dataset_counts_in_postgresql(
    signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columns, "COLUMNS_MIN_ROWS", 100_000)
    query = signals.query(ranges=(Range(signal=signals.col(signals.score), lo=0.0),))
    assert columns.columns_count(query=query, read=True) is None


def test_text_counts_through_bits_read_the_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_plan, "PLAN_MIN_DOCUMENTS", 1)
    monkeypatch.setattr(text_plan, "PROBE_DOCUMENTS", 40)
    monkeypatch.setattr(text_hits, "BITS_MIN_HITS", 1)
    corpus = TextCorpus()
    read: list[ExplorerQuery] = []
    real = columns.columns_count

    def spy(**kwargs: Any) -> int | None:  # the columns read at once, as if kept
        read.append(kwargs["query"])
        return real(**{**kwargs, "read": True})

    monkeypatch.setattr(columns, "columns_count", spy)
    for query in queries(corpus):
        expected = len(corpus.expected(query))
        assert explorer.explorer_count(query=query) == expected, query
        assert explorer.explorer_count(query=query) == expected, query
    assert any(q.text_hits is not None for q in read)  # the bits' counts went through them


# ------------------------------------------------------------- kept columns and writes


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = column_store._read

    def spy(dataset_id: int, wanted: list[SignalColumn]) -> Any:
        reads.append(len(wanted))
        return real(dataset_id, wanted)

    monkeypatch.setattr(column_store, "_read", spy)
    return reads


@pytest.mark.django_db(transaction=True)
def test_kept_columns_are_read_again_after_every_kind_of_signal_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Signals()
    reads = count_reads(monkeypatch)
    score = s.col(s.score)
    query = s.query(
        ranges=(Range(signal=score, lo=0.0),),
        equals=(Equals(signal=s.col(s.lang), value="en"),),
    )

    def counted() -> int:
        """PostgreSQL's count while the columns are not kept, then theirs."""
        n = explorer.explorer_count(query=query)
        assert n == sql_count(query)
        columns.wait()
        assert columns.columns_count(query=query) == n
        return n

    counted()
    assert reads == [2]  # both columns in one read, in the background
    counted()
    assert reads == [2]  # kept
    assert columns.kept_bytes() > 0
    writes = [
        lambda: signal_values_write(
            signal=s.score, dataset_id=s.dataset.pk, values=[(d, 5.0) for d in s.ids[:30]]
        ),
        lambda: signal_defaults_write(signals=[s.lang], dataset_id=s.dataset.pk, values=["en"]),
        lambda: signal_values_clear(signal=s.score, dataset=s.dataset),
        lambda: signal_rows_write(
            signals=[s.score], dataset_id=s.dataset.pk, rows=[(d, 1.0) for d in s.ids[::3]]
        ),
    ]
    seen = [counted()]
    for write in writes:
        before = signal_writes_seen(s.dataset.pk)[0]
        write()
        assert signal_writes_seen(s.dataset.pk)[0] == before + 1
        seen.append(counted())
    assert len(reads) == 1 + len(writes)
    signal_writes_compact(dataset_id=s.dataset.pk)  # the same writes: the columns stay
    counted()
    assert len(reads) == 1 + len(writes)
    assert len(set(seen)) == len(seen)  # each write changed the count, and each was seen


@pytest.mark.django_db(transaction=True)
def test_a_write_that_commits_during_the_read_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Signals()
    query = s.query(ranges=(Range(signal=s.col(s.score), lo=0.0),))
    real = column_store._read

    def racing(dataset_id: int, wanted: list[SignalColumn]) -> Any:
        read = real(dataset_id, wanted)
        signal_values_write(signal=s.score, dataset_id=dataset_id, values=[(s.ids[0], 9.0)])
        return read

    monkeypatch.setattr(column_store, "_read", racing)
    assert columns.columns_count(query=query, read=True) is None
    assert columns.kept_bytes() == 0
    monkeypatch.setattr(column_store, "_read", real)
    assert explorer.explorer_count(query=query) == sql_count(query)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_wrote_signals_keeps_no_column() -> None:
    s = Signals()
    query = s.query(ranges=(Range(signal=s.col(s.score), lo=100.0),))
    before = sql_count(query)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        signal_values_write(
            signal=s.score, dataset_id=s.dataset.pk, values=[(d, 500.0) for d in s.ids[:20]]
        )
        assert columns.columns_count(query=query, read=True) == sql_count(query) > before
        assert columns.kept_bytes() == 0
        raise Undo
    assert explorer.explorer_count(query=query) == before


@pytest.mark.django_db(transaction=True)
def test_columns_past_the_memory_budget_are_dropped_oldest_first(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    s = Signals()
    reads = count_reads(monkeypatch)
    one = s.query(ranges=(Range(signal=s.col(s.score), lo=0.0),))
    other = s.query(ranges=(Range(signal=s.col(s.words), lo=3),))
    assert columns.columns_count(query=one, read=True) == sql_count(one)
    size = columns.kept_bytes()
    assert size > 0
    settings.WINNOW_EXPLORER_COLUMNS_MB = size / 2**20 * 1.5  # room for one column
    columns.columns_count(query=other, read=True)
    assert columns.kept_bytes() == size  # the score column went
    assert columns.columns_count(query=one) is None
    assert columns.columns_count(query=other) == sql_count(other)
    assert reads == [1, 1]
    settings.WINNOW_EXPLORER_COLUMNS_MB = 0  # a column read now is used once, not kept
    assert columns.columns_count(query=one, read=True) == sql_count(one)
    assert columns.kept_bytes() == 0
    assert not columns.columns_read_ahead(query=one)  # nothing to keep them in


def test_every_writer_notes_its_write(signals: Signals) -> None:
    writes = SignalWrite.objects.filter(dataset=signals.dataset)
    assert writes.count() == 1  # the corpus' own write
    signal_values_write(signal=signals.score, dataset_id=signals.dataset.pk, values=[])
    signal_defaults_write(signals=[signals.flag], dataset_id=signals.dataset.pk, values=[True])
    signal_values_clear(signal=signals.flag, dataset=signals.dataset)
    assert writes.count() == 4
    for _ in range(2):  # one row of the same sum; compacting that changes nothing
        signal_writes_compact(dataset_id=signals.dataset.pk)
        assert list(writes.values_list("writes", flat=True)) == [4]
        assert signal_writes_seen(signals.dataset.pk)[0] == 4
    signal_values_clear(signal=signals.flag, dataset=signals.dataset)
    assert signal_writes_seen(signals.dataset.pk)[0] == 5
    dataset_delete(dataset=signals.dataset)
    assert not writes.exists()


# ------------------------------------------------------------- the page's first response


@pytest.mark.django_db(transaction=True)
def test_once_the_columns_are_kept_the_first_response_carries_the_exact_count() -> None:
    s = Signals()
    Dataset.objects.filter(pk=s.dataset.pk).update(document_count=500_000)
    query = s.query(ranges=(Range(signal=s.col(s.words), lo=2),))
    expected = sql_count(query)
    assert expected > 0
    estimated = explorer.explorer_results(query=query, after=None, exact_count=False)
    assert estimated.count is None and estimated.estimate is not None
    client = Client()
    client.force_login(UserFactory.create())
    url = f"/datasets/{s.dataset.slug}/explore/"
    params = {f"min.{s.words.name}": "2"}
    fragment = client.get(url, params, headers={"HX-Request": "true"}).content.decode()
    assert "≈" in fragment and 'hx-get="' in fragment  # nothing kept yet: an estimate
    count_url = f"/datasets/{s.dataset.slug}/explore/count/?min.{s.words.name}=2"
    counted = client.get(count_url, headers={"HX-Request": "true"}).content.decode()
    assert counted.strip() == f'<strong id="match-count">{expected}</strong>'
    columns.wait()
    # The count read the column: the next response counts exactly, with no second request.
    fragment = client.get(url, params, headers={"HX-Request": "true"}).content.decode()
    assert f'<strong id="match-count">{expected}</strong>' in fragment
    assert "≈" not in fragment
    exact = explorer.explorer_results(query=query, after=None, exact_count=False)
    assert (exact.count, exact.estimate, exact.read) == (expected, None, "columns")
    assert [comparable(r) for r in exact.page.rows] == [
        comparable(r) for r in sql_page(query, None, explorer.PAGE_SIZE).rows
    ]


@pytest.mark.django_db(transaction=True)
def test_a_count_reads_the_sorts_column_too_so_the_next_page_comes_from_the_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Signals()
    reads = count_reads(monkeypatch)
    sort = Sort(signal=s.col(s.lang), descending=True)
    query = s.query(ranges=(Range(signal=s.col(s.words), lo=2),), sort=sort)
    assert explorer.explorer_results(query=query, after=None, exact_count=False).read == ""
    assert explorer.explorer_count(query=query) == sql_count(query)
    columns.wait()
    assert reads == [2]  # once, for the range's column and the sort's
    results = explorer.explorer_results(query=query, after=None, exact_count=False)
    assert (results.read, results.count) == ("columns", sql_count(query))
    assert [comparable(r) for r in results.page.rows] == [
        comparable(r) for r in sql_page(query, None, explorer.PAGE_SIZE).rows
    ]


def test_no_read_ahead_from_inside_a_transaction(signals: Signals) -> None:
    query = signals.query(ranges=(Range(signal=signals.col(signals.score), lo=0.0),))
    assert not columns.columns_read_ahead(query=query)
    assert explorer.explorer_count(query=query) == sql_count(query)
    columns.wait()
    assert columns.kept_bytes() == 0


@pytest.mark.django_db(transaction=True)
def test_a_datasets_columns_are_read_by_one_thread_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Signals()
    query = s.query(ranges=(Range(signal=s.col(s.score), lo=0.0),))
    release, reads = threading.Event(), []
    real = column_store._read

    def slow(dataset_id: int, wanted: list[SignalColumn]) -> Any:
        reads.append(dataset_id)
        assert release.wait(30)
        return real(dataset_id, wanted)

    monkeypatch.setattr(column_store, "_read", slow)
    assert columns.columns_read_ahead(query=query)
    assert not columns.columns_read_ahead(query=query)  # the first is still reading
    other = s.query(ranges=(Range(signal=s.col(s.words), lo=0),))
    assert not columns.columns_read_ahead(query=other)  # the same dataset: one at a time
    release.set()
    columns.wait()
    assert reads == [s.dataset.pk]
    assert columns.columns_count(query=query) == sql_count(query)


@pytest.mark.django_db(transaction=True)
def test_the_datasets_other_signals_are_read_ahead_once_its_writes_are_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import connection

    from curation.services.signals import partition_name

    s = Signals()
    define("col_empty", "float")  # no values in this dataset: never read ahead
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition_name(s.dataset.pk)}")
    one = s.query(ranges=(Range(signal=s.col(s.score), lo=0.0),))
    other = s.query(equals=(Equals(signal=s.col(s.lang), value="de"),))
    reads = count_reads(monkeypatch)
    explorer.explorer_count(query=one)
    columns.wait()
    assert reads == [1]  # the signals were written a moment ago: the query's column only
    assert columns.columns_count(query=other) is None
    monkeypatch.setattr(columns, "READ_AHEAD_QUIET_SECONDS", 0)
    columns.clear()
    explorer.explorer_count(query=one)
    columns.wait()
    assert reads == [1, 1, 5]  # then the five others with values, in one read
    assert columns.columns_count(query=other) == sql_count(other)


@pytest.mark.django_db(transaction=True)
def test_a_sort_not_yet_in_order_pages_in_postgresql_while_it_is_sorted() -> None:
    s = Signals()
    query = s.query(ranges=(Range(signal=s.col(s.words), lo=2),))
    assert columns.columns_count(query=query, read=True) is not None  # kept, never sorted
    by_words = dataclasses.replace(query, sort=Sort(signal=s.col(s.words), descending=True))
    first = explorer.explorer_results(query=by_words, after=None, exact_count=False)
    assert (first.read, first.count) == ("", sql_count(query))  # the count is the columns'
    columns.wait()
    again = explorer.explorer_results(query=by_words, after=None, exact_count=False)
    assert again.read == "columns"
    assert [comparable(r) for r in again.page.rows] == [comparable(r) for r in first.page.rows]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_a_big_datasets_counts_come_exact_at_once_after_its_columns_are_read(
    page: Any, live_server: Any
) -> None:
    UserFactory(username="curator")
    s = Signals()
    Dataset.objects.filter(pk=s.dataset.pk).update(document_count=500_000)
    counts: list[str] = []
    page.on("request", lambda r: counts.append(r.url) if "/explore/count/" in r.url else None)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/datasets/{s.dataset.slug}/explore/")

    def expect(lo: float) -> str:
        query = s.query(ranges=(Range(signal=s.col(s.score), lo=lo),))
        return str(sql_count(query))

    threshold = page.locator(f'[name="min.{s.score.name}"]')
    threshold.fill("0.5")
    threshold.press("Tab")  # an estimate first, then the count request reads PostgreSQL
    wanted = expect(0.5)
    page.wait_for_function(f"document.querySelector('#match-count').innerText === '{wanted}'")
    assert len(counts) == 1
    columns.wait()  # that count started reading the columns in the server's process
    threshold.fill("-0.5")
    threshold.press("Tab")
    wanted = expect(-0.5)
    page.wait_for_function(f"document.querySelector('#match-count').innerText === '{wanted}'")
    assert page.locator("#match-count[hx-get]").count() == 0
    assert len(counts) == 1  # exact in the first response: no count request followed
