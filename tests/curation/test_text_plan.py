"""The explorer's own choice of how to read a text query (curation/explorer/text_plan.py).

Every read (every hit, signals first, a window of ids) must give the pages and the
count Python gives; the plan's thresholds are lowered so that a few hundred
documents take the paths a million do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from curation import explorer
from curation.explorer import (
    Cursor,
    Equals,
    ExplorerQuery,
    Range,
    SignalColumn,
    Sort,
    text_plan,
)
from curation.models import Dataset, Signal
from curation.services.signals import signal_define, signal_rows_write
from tests.curation.factories import UserFactory, make_dataset
from tests.curation.test_explorer import add_documents

pytestmark = pytest.mark.django_db

N = 400


def _words(i: int) -> str:
    words = ["common"] if i % 2 == 0 else []
    if i % 10 == 3:
        words.append("mid")
    if i in (5, 250, 397):
        words.append("rare")
    if i >= N - 30 and i % 3 == 0:
        words.append("late")
    return " ".join(["doc", *words, str(i)])


class TextCorpus:
    """N documents whose words and signal values are functions of their position."""

    def __init__(self) -> None:
        self.dataset = make_dataset("text-plan")
        texts = [_words(i) for i in range(N)]
        self.ids = add_documents(self.dataset, texts)
        self.texts = dict(zip(self.ids, texts, strict=True))
        score = signal_define(name="score", step="test", step_version="1", dtype="float")
        bucket = signal_define(name="bucket", step="test", step_version="1", dtype="text")
        self.score, self.bucket = SignalColumn.of(score), SignalColumn.of(bucket)
        # Every 9th document has no signal row: a signal predicate never matches it.
        self.values: dict[int, tuple[float, str]] = {
            doc_id: ((i * 37 % 100) / 100.0, f"b{i % 10}")
            for i, doc_id in enumerate(self.ids)
            if i % 9 != 4
        }
        signal_rows_write(
            signals=[score, bucket],
            dataset_id=self.dataset.pk,
            rows=[(doc_id, s, b) for doc_id, (s, b) in self.values.items()],
        )
        with connection.cursor() as cursor:  # the block-sample estimate needs statistics
            cursor.execute("ANALYZE curation_signal_row")

    def query(self, word: str, **kwargs: Any) -> ExplorerQuery:
        return ExplorerQuery(dataset_id=self.dataset.pk, text=word, **kwargs)

    def expected(self, query: ExplorerQuery) -> list[int]:
        """The matching ids in the query's order, computed in Python."""
        ids = [d for d in self.ids if query.text in self.texts[d].split()]
        for pred in query.ranges:
            assert pred.signal == self.score  # the ranges here are on the score
            ids = [
                d
                for d in ids
                if d in self.values
                and (pred.lo is None or self.values[d][0] >= pred.lo)
                and (pred.hi is None or self.values[d][0] <= pred.hi)
            ]
        for eq in query.equals:
            ids = [d for d in ids if d in self.values and self.values[d][1] == eq.value]
        sort = query.sort
        if sort.signal is None:
            return sorted(ids, reverse=sort.descending)
        column = 0 if sort.signal == self.score else 1

        def value(d: int) -> Any:
            return self.values[d][column]

        # value in the sort's direction, NULLs (no signal row) last, ties by id the same way
        valued = sorted(
            (d for d in ids if d in self.values),
            key=lambda d: (value(d), d),
            reverse=sort.descending,
        )
        return valued + sorted((d for d in ids if d not in self.values), reverse=sort.descending)


@pytest.fixture
def corpus(monkeypatch: pytest.MonkeyPatch) -> TextCorpus:
    monkeypatch.setattr(text_plan, "PLAN_MIN_DOCUMENTS", 1)
    monkeypatch.setattr(text_plan, "PROBE_DOCUMENTS", 40)
    return TextCorpus()


def force(monkeypatch: pytest.MonkeyPatch, read: str) -> None:
    """Make ``read`` the cheapest whenever it is among the choices."""
    original: Callable[[dict[str, float]], str] = text_plan._cheapest
    monkeypatch.setattr(
        text_plan, "_cheapest", lambda costs: read if read in costs else original(costs)
    )


def walk(
    query: ExplorerQuery, *, exact_count: bool, size: int
) -> Iterator[explorer.ExplorerResults]:
    after: Cursor | None = None
    while True:
        results = explorer.explorer_results(
            query=query, after=after, exact_count=exact_count, size=size
        )
        yield results
        if results.page.next_cursor is None:
            return
        after = Cursor.decode(results.page.next_cursor.encode(query.sort), query.sort)


def queries(c: TextCorpus) -> list[ExplorerQuery]:
    wide = Range(signal=c.score, lo=0.05, hi=0.95)
    narrow = Range(signal=c.score, lo=0.30, hi=0.34)
    return [
        c.query("common"),
        c.query("common", sort=Sort(descending=True)),
        c.query("common", ranges=(wide,)),
        c.query("common", ranges=(wide,), sort=Sort(descending=True)),
        c.query("common", ranges=(narrow,)),
        c.query("mid", ranges=(wide,), equals=(Equals(signal=c.bucket, value="b3"),)),
        c.query("rare", ranges=(wide,)),
        c.query("late", sort=Sort(descending=True)),
        c.query("late"),
        c.query("common", ranges=(wide,), sort=Sort(signal=c.score, descending=True)),
        c.query("common", sort=Sort(signal=c.bucket)),
        c.query("absent", ranges=(wide,)),
    ]


@pytest.mark.parametrize("read", text_plan.READS)
@pytest.mark.parametrize("exact_count", [False, True])
@pytest.mark.parametrize("size", [1, 7, 40])
def test_every_read_pages_and_counts_as_python_does(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch, read: str, exact_count: bool, size: int
) -> None:
    force(monkeypatch, read)
    used: set[str] = set()
    for query in queries(corpus):
        expected = corpus.expected(query)
        seen: list[int] = []
        reads = set()
        for results in walk(query, exact_count=exact_count, size=size):
            seen += [row.id for row in results.page.rows]
            reads.add(results.read)
            if exact_count or results.count is not None:
                assert results.count == len(expected), (query, results.read)
            else:
                assert results.estimate is not None and results.estimate >= 0
        assert seen == expected, (query, reads)
        assert reads <= set(text_plan.READS)
        used |= reads
        if exact_count or query.sort.signal is not None:
            assert "window" not in reads or reads == {"window"}
        assert explorer.explorer_count(query=query) == len(expected)
    if read != "window" or (not exact_count and size < 40):  # 40 a page: no window is small enough
        assert read in used


def test_a_page_by_id_may_come_from_a_window_with_an_estimated_count(
    corpus: TextCorpus,
) -> None:
    query = corpus.query("common", sort=Sort(descending=True))
    results = explorer.explorer_results(query=query, after=None, exact_count=False, size=10)
    expected = corpus.expected(query)
    assert results.read == "window"
    assert [row.id for row in results.page.rows] == expected[:10]
    assert results.count is None
    assert results.estimate == pytest.approx(len(expected), rel=0.15)
    # With the exact count asked for, the count is exact (and read another way).
    exact = explorer.explorer_results(query=query, after=None, exact_count=True, size=10)
    assert exact.count == len(expected) and exact.read in ("all", "signals")
    assert explorer.explorer_count(query=query) == len(expected)


def test_a_window_that_does_not_fill_its_page_is_followed_by_an_exact_read(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "mid" occurs in 1 document of 10, but with bucket 3 only in the first ones: the
    # probe's share promises a full page in a window that then holds too few.
    monkeypatch.setattr(text_plan, "WINDOW_MAX_SHARE", 1.0)
    force(monkeypatch, "window")
    early = {d for d in corpus.ids[:40] if d in corpus.values and corpus.values[d][1] == "b3"}
    for doc_id in corpus.ids[40:]:
        if doc_id in corpus.values and corpus.values[doc_id][1] == "b3":
            corpus.values[doc_id] = (corpus.values[doc_id][0], "b4")
    signal_rows_write(
        signals=[Signal.objects.get(name="bucket")],
        dataset_id=corpus.dataset.pk,
        rows=[(d, v[1]) for d, v in corpus.values.items()],
    )
    query = corpus.query("mid", equals=(Equals(signal=corpus.bucket, value="b3"),))
    expected = corpus.expected(query)
    assert 0 < len(early) and len(expected) < 6
    results = explorer.explorer_results(query=query, after=None, exact_count=False, size=5)
    assert results.read in ("all", "signals")
    assert [row.id for row in results.page.rows] == expected[:5]
    assert results.count == len(expected)


def test_the_cheapest_read_follows_the_costs(corpus: TextCorpus) -> None:
    # A common word and a narrow signal filter: reading the signal matches first wins.
    narrow = corpus.query("common", ranges=(Range(signal=corpus.score, lo=0.30, hi=0.30),))
    assert text_plan.text_count(query=narrow)[1] == "signals"
    # A rare word: its few hits cost less than the signal matches.
    wide = corpus.query("rare", ranges=(Range(signal=corpus.score, lo=0.0, hi=1.0),))
    assert text_plan.text_count(query=wide)[1] == "all"
    assert text_plan._cheapest({"all": 2.0, "signals": 1.0}) == "signals"
    assert text_plan._cheapest({"all": 1.0, "signals": 1.0, "window": 1.0}) == "all"


def test_small_datasets_read_every_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = make_dataset("small-text")
    add_documents(dataset, [f"word {i}" for i in range(30)])
    query = ExplorerQuery(dataset_id=dataset.pk, text="word")
    results = explorer.explorer_results(query=query, after=None, exact_count=False, size=10)
    assert results.read == "all" and results.count == 30


def test_the_htmx_page_shows_the_window_estimate_then_the_exact_count(
    corpus: TextCorpus, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explorer, "COUNT_INLINE_MAX", 10)
    monkeypatch.setattr(text_plan, "PROBE_DOCUMENTS", 60)  # a page of 25 in the probe
    client.force_login(UserFactory.create())
    expected = corpus.expected(corpus.query("common"))
    base = f"/datasets/{corpus.dataset.slug}/explore/"
    fragment = client.get(base, {"q": "common"}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="match-count" hx-get="' in fragment and "≈" in fragment
    first = corpus.texts[expected[0]]
    assert first in fragment
    counted = client.get(
        f"{base}count/", {"q": "common"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert counted.strip() == f'<strong id="match-count">{len(expected)}</strong>'
    assert Dataset.objects.get(pk=corpus.dataset.pk).document_count == N


def test_counts_of_common_words_join_every_hit_by_hash(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text_plan, "HASH_JOIN_MIN_HITS", 1)
    force(monkeypatch, "all")
    used = set()
    for query in queries(corpus):
        count, read = text_plan.text_count(query=query)
        assert count == len(corpus.expected(query)), query
        used.add(read)
        if query.reads_signals and query.text == "common":
            assert read == "hash"
    # "all" for the queries without a signal predicate, and those whose probe found no hit
    assert used == {"hash", "all"}
