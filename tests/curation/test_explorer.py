"""The explorer: the SQL builder against real data, histograms against numpy, views, a browser."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client

from curation import explorer
from curation.explorer import (
    Cursor,
    DedupStatus,
    Equals,
    ExplorerQuery,
    MetaEquals,
    Range,
    SignalColumn,
    Sort,
)
from curation.models import Dataset, Document, Signal
from curation.services.datasets import dataset_recount
from curation.services.search import search_index_sql
from curation.services.signals import signal_define, signal_rows_write
from tests.curation.factories import UserFactory, make_dataset

pytestmark = pytest.mark.django_db

WORDS = ("alpha", "beta", "gamma", "delta")


def add_documents(
    dataset: Dataset, texts: list[str], metas: list[dict[str, Any]] | None = None
) -> list[int]:
    """Documents with these texts, in order; returns their ids."""
    docs = Document.objects.bulk_create(
        Document(
            dataset=dataset,
            external_id=f"doc-{i:03d}",
            text=text,
            meta=(metas or [{}] * len(texts))[i],
            content_hash=i,
            char_count=len(text),
            word_count=len(text.split()),
            line_count=1,
        )
        for i, text in enumerate(texts)
    )
    dataset_recount(dataset=dataset)
    return [d.pk for d in docs]


def define(name: str, dtype: str) -> Signal:
    return signal_define(name=name, step="test", step_version="1", dtype=dtype)


class Corpus:
    """60 documents with known signal values (ties, NULLs), dedup signals, meta and words.

    Documents 50..59 have no signal row at all.
    """

    def __init__(self) -> None:
        self.dataset = make_dataset("explore-me")
        texts = [
            f"{WORDS[i % 4]} text number {i}" + (" rare" if i % 10 == 3 else "") for i in range(60)
        ]
        metas = [{"source": "web" if i % 3 else "books", "n": i} for i in range(60)]
        self.ids = add_documents(self.dataset, texts, metas)
        self.score = define("score", "float")
        self.words = define("words", "int")
        self.flag = define("flag", "bool")
        self.lang = define("lang", "text")
        self.keep = define("exact_dedup_keep", "bool")
        self.size = define("exact_dedup_size", "int")
        rng = np.random.default_rng(3)
        self.values: dict[int, dict[str, Any]] = {}
        rows = []
        for i, doc_id in enumerate(self.ids[:50]):
            score = None if i % 7 == 0 else float(round(rng.random(), 1))  # ties and NULLs
            size = 1 if i % 5 else 3
            keep = True if size == 1 else i % 10 == 0
            v = {
                "score": score,
                "words": int(i % 6),
                "flag": i % 2 == 0,
                "lang": "de" if i % 4 == 1 else "en",
                "exact_dedup_keep": keep,
                "exact_dedup_size": size,
            }
            self.values[doc_id] = v
            rows.append((doc_id, *v.values()))
        signal_rows_write(
            signals=[self.score, self.words, self.flag, self.lang, self.keep, self.size],
            dataset_id=self.dataset.pk,
            rows=rows,
        )
        self.texts = dict(zip(self.ids, texts, strict=True))
        self.metas = dict(zip(self.ids, metas, strict=True))

    def col(self, signal: Signal) -> SignalColumn:
        return SignalColumn.of(signal)

    def value(self, doc_id: int, name: str) -> Any:
        return self.values.get(doc_id, {}).get(name)

    def query(self, **kwargs: Any) -> ExplorerQuery:
        return ExplorerQuery(dataset_id=self.dataset.pk, **kwargs)


@pytest.fixture
def corpus() -> Corpus:
    return Corpus()


def all_pages(query: ExplorerQuery, size: int = 7, *, combined: bool = False) -> Iterator[int]:
    """Every id the pages yield, following each page's cursor through its URL encoding.

    ``combined``: through ``explorer_results`` (one statement for text and meta
    queries), checking its count on every page.
    """
    after: Cursor | None = None
    while True:
        if combined:
            results = explorer.explorer_results(
                query=query, after=after, exact_count=True, size=size
            )
            assert results.count == explorer.explorer_count(query=query)
            page = results.page
        else:
            page = explorer.explorer_page(query=query, after=after, size=size)
        yield from (row.id for row in page.rows)
        if page.next_cursor is None:
            return
        after = Cursor.decode(page.next_cursor.encode(query.sort), query.sort)


def matching(corpus: Corpus, predicate: Any) -> list[int]:
    return [d for d in corpus.ids if predicate(d)]


def check(corpus: Corpus, query: ExplorerQuery, expected: list[int]) -> None:
    assert explorer.explorer_count(query=query) == len(expected)
    assert list(all_pages(query)) == expected
    assert list(all_pages(query, combined=True)) == expected


# ---------------------------------------------------------------------------- SQL builder


def test_each_filter_kind_selects_the_documents_python_selects(corpus: Corpus) -> None:
    score, v = corpus.col(corpus.score), corpus.value
    check(corpus, corpus.query(), corpus.ids)
    check(
        corpus,
        corpus.query(ranges=(Range(signal=score, lo=0.3, hi=0.6),)),
        matching(corpus, lambda d: v(d, "score") is not None and 0.3 <= v(d, "score") <= 0.6),
    )
    check(
        corpus,
        corpus.query(ranges=(Range(signal=corpus.col(corpus.words), lo=4),)),
        matching(corpus, lambda d: (v(d, "words") or -1) >= 4),
    )
    check(
        corpus,
        corpus.query(ranges=(Range(signal=score, hi=0.2),)),
        matching(corpus, lambda d: v(d, "score") is not None and v(d, "score") <= 0.2),
    )
    check(
        corpus,
        corpus.query(equals=(Equals(signal=corpus.col(corpus.flag), value=False),)),
        matching(corpus, lambda d: v(d, "flag") is False),
    )
    check(
        corpus,
        corpus.query(equals=(Equals(signal=corpus.col(corpus.lang), value="de"),)),
        matching(corpus, lambda d: v(d, "lang") == "de"),
    )
    check(
        corpus,
        corpus.query(meta=MetaEquals("source", "books")),
        matching(corpus, lambda d: corpus.metas[d]["source"] == "books"),
    )
    check(
        corpus,
        corpus.query(meta=MetaEquals("n", "7")),
        [corpus.ids[7]],
    )
    check(
        corpus,
        corpus.query(text="gamma rare"),
        matching(corpus, lambda d: "gamma" in corpus.texts[d] and "rare" in corpus.texts[d]),
    )
    check(
        corpus,
        corpus.query(text='beta -rare "text number"'),
        matching(corpus, lambda d: "beta" in corpus.texts[d] and "rare" not in corpus.texts[d]),
    )


@pytest.mark.parametrize(
    ("status", "rule"),
    [
        ("kept", lambda v: v["exact_dedup_keep"] and v["exact_dedup_size"] > 1),
        ("removed", lambda v: not v["exact_dedup_keep"]),
        ("alone", lambda v: v["exact_dedup_keep"] and v["exact_dedup_size"] == 1),
    ],
)
def test_duplicate_status_reads_the_keep_and_size_signals(
    corpus: Corpus, status: str, rule: Any
) -> None:
    dedup = DedupStatus(
        kind="exact", status=status, keep=corpus.col(corpus.keep), size=corpus.col(corpus.size)
    )
    expected = matching(corpus, lambda d: d in corpus.values and rule(corpus.values[d]))
    assert expected
    check(corpus, corpus.query(dedup=(dedup,)), expected)


def test_predicates_combine_with_and(corpus: Corpus) -> None:
    v = corpus.value
    query = corpus.query(
        ranges=(Range(signal=corpus.col(corpus.words), lo=1, hi=4),),
        equals=(Equals(signal=corpus.col(corpus.lang), value="en"),),
        meta=MetaEquals("source", "web"),
        text="alpha OR gamma",
    )
    expected = matching(
        corpus,
        lambda d: (
            v(d, "words") is not None
            and 1 <= v(d, "words") <= 4
            and v(d, "lang") == "en"
            and corpus.metas[d]["source"] == "web"
            and corpus.texts[d].split()[0] in ("alpha", "gamma")
        ),
    )
    assert expected
    check(corpus, query, expected)


def _expected_order(corpus: Corpus, name: str, descending: bool, ids: list[int]) -> list[int]:
    present = [d for d in ids if corpus.value(d, name) is not None]
    missing = [d for d in ids if corpus.value(d, name) is None]
    present.sort(key=lambda d: (corpus.value(d, name), d), reverse=descending)
    return present + sorted(missing, reverse=descending)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("name", ["score", "words", "flag", "lang"])
def test_keyset_pages_cover_every_row_once_with_ties_and_nulls(
    corpus: Corpus, name: str, descending: bool
) -> None:
    signal = Signal.objects.get(name=name)
    sort = Sort(signal=SignalColumn.of(signal), descending=descending)
    # No signal predicate: documents without a signal row come last, as NULLs.
    ids = list(all_pages(corpus.query(sort=sort), size=4))
    assert ids == _expected_order(corpus, name, descending, corpus.ids)
    # The same through the one-statement path of text queries.
    texts = corpus.query(sort=sort, text="text")
    assert list(all_pages(texts, size=4, combined=True)) == ids
    # With one, only rows that have values, still in (value, id) order.
    query = corpus.query(sort=sort, ranges=(Range(signal=corpus.col(corpus.words), lo=1),))
    subset = [d for d in corpus.ids if (corpus.value(d, "words") or 0) >= 1]
    assert list(all_pages(query, size=3)) == _expected_order(corpus, name, descending, subset)


@pytest.mark.parametrize("descending", [False, True])
def test_signal_sort_pages_cross_from_values_to_nulls_at_any_page_size(
    corpus: Corpus, descending: bool
) -> None:
    # A page reads the values, then the NULLs when they do not fill it: every size puts
    # the boundary elsewhere (the last value ends a page, starts one, or is mid-page).
    # islice: a cursor that fails to move on repeats rows instead of paging forever.
    words = Range(signal=corpus.col(corpus.words), lo=1)
    subset = [d for d in corpus.ids if (corpus.value(d, "words") or 0) >= 1]
    for name in ("score", "flag"):
        sort = Sort(signal=SignalColumn.of(Signal.objects.get(name=name)), descending=descending)
        everything = _expected_order(corpus, name, descending, corpus.ids)
        filtered = _expected_order(corpus, name, descending, subset)
        for size in range(1, 46):
            pages = all_pages(corpus.query(sort=sort), size=size)
            assert list(islice(pages, len(everything) + 1)) == everything
            pages = all_pages(corpus.query(sort=sort, ranges=(words,)), size=size)
            assert list(islice(pages, len(filtered) + 1)) == filtered


@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_by_id(corpus: Corpus, descending: bool) -> None:
    query = corpus.query(sort=Sort(descending=descending), text="text")
    assert list(all_pages(query, size=9)) == sorted(corpus.ids, reverse=descending)


def test_page_rows_carry_previews_and_sort_values(corpus: Corpus) -> None:
    query = corpus.query(sort=Sort(signal=corpus.col(corpus.score), descending=True))
    page = explorer.explorer_page(query=query, size=3)
    first = page.rows[0]
    assert first.sort_value == max(
        v["score"] for v in corpus.values.values() if v["score"] is not None
    )
    assert first.preview == corpus.texts[first.id]
    assert page.next_cursor == Cursor(id=page.rows[-1].id, value=page.rows[-1].sort_value)


def test_signal_predicates_read_only_the_signal_partition() -> None:
    column = SignalColumn(name="x", column="s_1", dtype="float")
    statement, params = explorer.count_sql(
        ExplorerQuery(dataset_id=4, ranges=(Range(signal=column, lo=1.5),))
    )
    text = statement.as_string(None)
    assert "curation_document" not in text
    assert '"curation_signal_row" s' in text and "s.dataset_id = 4" in text
    assert params == [1.5]
    statement, _ = explorer.count_sql(
        ExplorerQuery(dataset_id=4, ranges=(Range(signal=column, lo=1.5),), text="w")
    )
    text = statement.as_string(None)
    assert text.startswith('WITH hits AS MATERIALIZED (SELECT d.id FROM "curation_document" d')
    assert 'JOIN "curation_signal_row" s ON s.dataset_id = 4' in text


def test_search_uses_the_dataset_index_when_it_exists(corpus: Corpus) -> None:
    query = corpus.query(text="rare")
    without = list(all_pages(query))
    with connection.cursor() as cursor:
        cursor.execute(
            search_index_sql(dataset_id=corpus.dataset.pk, concurrently=False).as_string(
                cursor.connection
            )
        )
        # The planner would read 60 rows directly; make it show that it can use the index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("ANALYZE curation_document")
        statement, params = explorer.count_sql(query)
        cursor.execute(("EXPLAIN " + statement.as_string(cursor.connection)), params)
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert explorer.search_index_name(corpus.dataset.pk) in plan
    assert list(all_pages(query)) == without and len(without) == 6
    assert explorer.search_index_state(dataset_id=corpus.dataset.pk).status == "ready"


def test_injection_in_values_and_names_is_inert(corpus: Corpus) -> None:
    hostile = "x'; DROP TABLE curation_document; -- %s %(a)s {} \\"
    for query in (
        corpus.query(meta=MetaEquals(hostile, hostile)),
        corpus.query(text=hostile),
        corpus.query(equals=(Equals(signal=corpus.col(corpus.lang), value=hostile),)),
    ):
        assert explorer.explorer_count(query=query) == 0
        assert explorer.explorer_page(query=query).rows == []
        results = explorer.explorer_results(query=query, after=None, exact_count=True)
        assert (results.count, results.page.rows) == (0, [])
    evil = SignalColumn(name="evil", column='s_1" IS NULL OR true; --', dtype="float")
    statement, _ = explorer.count_sql(corpus.query(ranges=(Range(signal=evil, lo=0),)))
    assert 's."s_1"" IS NULL OR true; --" >= %s' in statement.as_string(None)
    assert Document.objects.filter(dataset=corpus.dataset).count() == 60


def test_cursor_round_trips_and_rejects_foreign_cursors() -> None:
    float_sort = Sort(signal=SignalColumn(name="f", column="s_1", dtype="float"))
    text_sort = Sort(signal=SignalColumn(name="t", column="s_2", dtype="text"))
    for sort, cursor in (
        (Sort(), Cursor(id=5)),
        (float_sort, Cursor(id=5, value=0.1 + 0.2)),
        (float_sort, Cursor(id=5, value=None)),
        (text_sort, Cursor(id=5, value="a:b n")),
    ):
        assert Cursor.decode(cursor.encode(sort), sort) == cursor
    for raw, sort in (("5:v1", Sort()), ("x", Sort()), ("5", float_sort), ("5:vabc", float_sort)):
        with pytest.raises(explorer.CursorError):
            Cursor.decode(raw, sort)


# ---------------------------------------------------------------------------- histograms


def _histogram_dataset(values: list[float | None], dtype: str = "float") -> tuple[Dataset, Signal]:
    dataset = make_dataset(f"hist-{dtype}-{len(values)}")
    ids = add_documents(dataset, ["t"] * len(values))
    signal = define(f"h_{dtype}", dtype)
    signal_rows_write(
        signals=[signal], dataset_id=dataset.pk, rows=list(zip(ids, values, strict=True))
    )
    return dataset, signal


def test_histogram_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    values: list[float | None] = [float(x) for x in rng.normal(10, 2, 1000)]
    values += [1e6, -1e6, float("nan"), None, None]  # outliers, NaN, nulls
    dataset, signal = _histogram_dataset(values)
    lo, hi = 9.0, 12.5
    h = explorer.signal_histogram(dataset=dataset, signal=SignalColumn.of(signal), lo=lo, hi=hi)
    x = np.array([v for v in values if v is not None and not math.isnan(v)])
    assert (h.count, h.nulls) == (len(x), 3)
    assert (h.minimum, h.maximum) == (x.min(), x.max())
    assert h.mean == pytest.approx(x.mean())
    for q, value in h.quantiles.items():
        assert value == pytest.approx(np.percentile(x, q * 100))
    p1, p99 = np.percentile(x, [1, 99])
    assert h.edges == pytest.approx(list(np.linspace(p1, p99, 41)))
    inside = x[(x >= p1) & (x <= p99)]
    assert h.counts == list(np.histogram(inside, bins=40, range=(p1, p99))[0])
    assert (h.below, h.above) == ((x < p1).sum(), (x > p99).sum())
    assert (h.under, h.within, h.over) == (
        (x < lo).sum(),
        ((x >= lo) & (x <= hi)).sum(),
        (x > hi).sum(),
    )

    chart = explorer.histogram_chart(h)
    assert len(chart.bars) == 40 and [m.label for m in chart.markers] == ["min 9", "max 12.5"]
    assert max(b.height for b in chart.bars) == pytest.approx(chart.plot_bottom - 8)
    assert [b.selected for b in chart.bars] == [
        lo <= (a + b) / 2 <= hi for a, b in zip(h.edges, h.edges[1:], strict=False)
    ]
    assert dict(chart.summary)["p50"] == f"{np.percentile(x, 50):.4g}"


def test_histogram_of_a_narrow_integer_signal_has_a_bin_per_integer() -> None:
    values: list[float | None] = [1, 1, 2, 3, 3, 3, 5, None]
    dataset, signal = _histogram_dataset(values, "int")
    h = explorer.signal_histogram(dataset=dataset, signal=SignalColumn.of(signal), lo=2)
    assert h.edges == [1, 2, 3, 4, 5, 6] and h.counts == [2, 1, 3, 0, 1]
    assert (h.under, h.within, h.over, h.nulls) == (2, 5, 0, 1)


def test_histogram_of_a_constant_and_of_an_empty_signal() -> None:
    dataset, signal = _histogram_dataset([2.5, 2.5, 2.5])
    h = explorer.signal_histogram(dataset=dataset, signal=SignalColumn.of(signal))
    assert h.counts == [3] and h.edges == [2.0, 3.0]
    empty = make_dataset("no-values")
    add_documents(empty, ["a", "b"])
    h = explorer.signal_histogram(dataset=empty, signal=SignalColumn.of(signal))
    assert (h.count, h.nulls, h.counts) == (0, 2, [])
    assert explorer.histogram_chart(h).description == "No values in this dataset."


# ---------------------------------------------------------------------------- views


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def url(corpus: Corpus) -> str:
    return f"/datasets/{corpus.dataset.slug}/explore/"


def test_explore_page_filters_from_the_url_and_round_trips_them(
    user_client: Client, corpus: Corpus
) -> None:
    assert (
        'id="explore-link"' in user_client.get(corpus.dataset.get_absolute_url()).content.decode()
    )
    response = user_client.get(
        url(corpus), {"min.score": "0.5", "lang": "en", "order": "", "q": ""}
    )
    page = response.content.decode()
    expected = [
        d
        for d in corpus.ids
        if (corpus.value(d, "score") or -1) >= 0.5 and corpus.value(d, "lang") == "en"
    ]
    assert f'id="match-count">{len(expected)}<' in page
    assert 'name="min.score" value="0.5"' in page and 'name="lang" value="en"' in page
    assert f'id="result-{expected[0]}"' in page
    fragment = user_client.get(
        url(corpus), {"min.score": "0.5", "lang": "en", "order": ""}, headers={"HX-Request": "true"}
    )
    assert fragment.content.decode().lstrip().startswith('<div id="explorer">')
    assert fragment["HX-Push-Url"] == f"{url(corpus)}?min.score=0.5&lang=en"


def test_explore_pages_with_next_links(user_client: Client, corpus: Corpus) -> None:
    first = user_client.get(url(corpus), {"sort": "score", "order": "desc"}).content.decode()
    assert 'id="match-count">60<' in first
    expected = _expected_order(corpus, "score", True, corpus.ids)
    assert f'id="result-{expected[24]}"' in first and f'id="result-{expected[25]}"' not in first
    cursor = Cursor(id=expected[24], value=corpus.value(expected[24], "score"))
    encoded = cursor.encode(Sort(signal=corpus.col(corpus.score), descending=True))
    assert f"after={encoded.replace(':', '%3A')}" in first
    second = user_client.get(
        url(corpus), {"sort": "score", "order": "desc", "after": encoded}
    ).content.decode()
    assert f'id="result-{expected[25]}"' in second and f'id="result-{expected[24]}"' not in second
    assert 'id="first-page"' in second


def test_explore_reports_errors_per_field_not_500(user_client: Client, corpus: Corpus) -> None:
    response = user_client.get(
        url(corpus),
        {
            "min.score": "0.8",
            "max.score": "0.2",
            "min.nope": "1",
            "eq.score": "1",
            "sort": "missing",
            "minhash": "kept",
            "meta_key": "source",
            "min.words": "1.5",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The maximum is below the minimum" in page
    assert "min.nope: there is no signal named &#x27;nope&#x27;" in page
    assert "eq.score: signal &#x27;score&#x27; holds float" in page
    assert 'id="error-sort">Unknown signal &#x27;missing&#x27;' in page
    assert 'id="error-minhash">No minhash dedup signals yet' in page
    assert 'id="error-meta_value"' in page
    assert "Enter a whole number." in page
    assert 'id="match-count-missing"' in page
    bad_cursor = user_client.get(url(corpus), {"sort": "score", "after": "12"}).content.decode()
    assert 'id="error-after">Bad page link' in bad_cursor


def test_text_search_refused_on_a_big_dataset_without_its_index(
    user_client: Client, corpus: Corpus
) -> None:
    Dataset.objects.filter(pk=corpus.dataset.pk).update(document_count=50_000)
    page = user_client.get(url(corpus), {"q": "alpha"}).content.decode()
    assert 'id="error-q">This dataset has no search index yet' in page
    assert 'id="build-search-index"' in page
    small = user_client.get(url(corpus), {"q": "..."}).content.decode()
    assert 'id="error-q">Search for at least one word.' in small


def test_build_search_index_button_queues_the_build(
    user_client: Client, corpus: Corpus, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(
            f"/datasets/{corpus.dataset.slug}/explore/search-index/",
            {"next_query": "q=alpha&x=<b>"},
        )
    assert len(callbacks) == 1
    assert response["Location"] == f"{url(corpus)}?q=alpha&x=%3Cb%3E"


def test_previews_and_histograms_are_escaped(user_client: Client) -> None:
    dataset = make_dataset("hostile")
    ids = add_documents(dataset, ['<script>alert("x")</script> & <img src=x onerror=alert(1)>'])
    signal = define("hostile_score", "float")
    Signal.objects.filter(pk=signal.pk).update(description='<svg onload="alert(1)">')
    signal_rows_write(signals=[signal], dataset_id=dataset.pk, rows=[(ids[0], 0.5)])
    page = user_client.get(f"/datasets/{dataset.slug}/explore/").content.decode()
    assert (
        "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    )
    assert "<svg onload" not in page
    fragment = user_client.get(
        f"/datasets/{dataset.slug}/explore/histogram/hostile_score/",
        {"min.hostile_score": "0.1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert fragment.lstrip().startswith('<figure class="histogram"')
    assert f'aria-labelledby="hist-title-{signal.pk} hist-desc-{signal.pk}"' in fragment
    assert "<title" in fragment and "<desc" in fragment and 'class="marker"' in fragment
    assert user_client.get(f"/datasets/{dataset.slug}/explore/histogram/nope/").status_code == 404


def test_explorer_requires_login(client: Client, corpus: Corpus) -> None:
    response = client.get(url(corpus))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_big_dataset_swaps_in_an_estimate_then_fetches_the_exact_count(
    user_client: Client, corpus: Corpus
) -> None:
    Dataset.objects.filter(pk=corpus.dataset.pk).update(document_count=500_000)
    params = {"min.words": "2"}
    expected = len([d for d in corpus.ids if (corpus.value(d, "words") or 0) >= 2])
    fragment = user_client.get(url(corpus), params, headers={"HX-Request": "true"}).content.decode()
    assert 'id="match-count" hx-get="' in fragment and "≈" in fragment
    count_url = f"/datasets/{corpus.dataset.slug}/explore/count/?min.words=2"
    assert f'hx-get="{count_url}"' in fragment
    counted = user_client.get(count_url, headers={"HX-Request": "true"}).content.decode()
    assert counted.strip() == f'<strong id="match-count">{expected}</strong>'
    # Without JavaScript the page counts exactly.
    page = user_client.get(url(corpus), params).content.decode()
    assert f'id="match-count">{expected}<' in page
    estimate = explorer.explorer_count_estimate(
        query=corpus.query(ranges=(Range(signal=corpus.col(corpus.words), lo=2),))
    )
    assert estimate > 0


# ---------------------------------------------------------------------------- browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_threshold_changes_count_and_histogram_and_back_restores_it(
    page: Any, live_server: Any
) -> None:
    UserFactory(username="curator")
    dataset = make_dataset("Browse me")
    ids = add_documents(dataset, [f"<b>doc</b> {i}" for i in range(120)])
    quality = define("quality", "float")
    signal_rows_write(
        signals=[quality], dataset_id=dataset.pk, rows=[(d, i / 120) for i, d in enumerate(ids)]
    )
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/datasets/{dataset.slug}/")
    page.click("#explore-link")
    page.wait_for_url("**/explore/")
    assert page.inner_text("#match-count") == "120"
    assert page.locator("#explorer-results b").count() == 0  # previews are escaped

    histogram = f"#hist-{quality.pk} figure"
    threshold = page.locator('[name="min.quality"]')
    threshold.fill("0.5")
    threshold.press("Tab")
    page.wait_for_function("document.querySelector('#match-count').innerText === '60'")
    page.wait_for_selector(f"{histogram} .under")
    assert page.inner_text(f"{histogram} .under") == "60"
    assert page.inner_text(f"{histogram} .within") == "60"
    assert page.locator(f"{histogram} svg > title").text_content().startswith("Histogram")
    assert page.url.endswith("/explore/?min.quality=0.5")

    threshold = page.locator('[name="min.quality"]')
    threshold.fill("0.75")
    threshold.press("Tab")
    page.wait_for_function("document.querySelector('#match-count').innerText === '30'")
    page.wait_for_function(f"document.querySelector('{histogram} .under')?.innerText === '90'")

    page.go_back()
    page.wait_for_function("document.querySelector('#match-count').innerText === '60'")
    assert page.url.endswith("/explore/?min.quality=0.5")
    assert page.locator('[name="min.quality"]').input_value() == "0.5"
    page.wait_for_function(f"document.querySelector('{histogram} .under')?.innerText === '60'")


@pytest.mark.django_db(transaction=True)
def test_search_index_builds_once_drops_for_big_imports_and_goes_with_its_dataset() -> None:
    from curation.services.datasets import dataset_delete
    from curation.services.search import search_index_before_import, search_index_build
    from curation.tasks import search_index_build as task

    dataset = make_dataset("indexed")
    add_documents(dataset, ["alpha beta", "gamma"])
    state = explorer.search_index_state
    assert state(dataset_id=dataset.pk).status == "missing"
    task(dataset.pk)  # the task calls the service
    assert state(dataset_id=dataset.pk).status == "ready"
    assert search_index_build(dataset_id=dataset.pk) is False  # idempotent
    assert not search_index_before_import(dataset_id=dataset.pk, source_bytes=1000)
    assert state(dataset_id=dataset.pk).status == "ready"
    assert search_index_before_import(dataset_id=dataset.pk, source_bytes=1 << 30)
    assert state(dataset_id=dataset.pk).status == "missing"
    assert search_index_build(dataset_id=dataset.pk) is True
    dataset_id = dataset.pk
    dataset_delete(dataset=dataset)
    assert state(dataset_id=dataset_id).status == "missing"
    assert search_index_build(dataset_id=dataset_id) is False  # a build queued before the delete


def test_an_integer_signal_range_is_compared_as_integers() -> None:
    """Fractional bounds on an integer signal are rounded inwards (the same documents), so
    the column is compared as bigint and its index can serve the range."""
    dataset = make_dataset("int-bounds")
    ids = add_documents(dataset, [f"doc {i}" for i in range(10)])
    words = define("int_words", "int")
    signal_rows_write(
        signals=[words], dataset_id=dataset.pk, rows=[(d, i) for i, d in enumerate(ids)]
    )
    column = SignalColumn.of(words)
    query = ExplorerQuery(dataset_id=dataset.pk, ranges=(Range(signal=column, lo=2.5, hi=6.5),))
    _, params = explorer.count_sql(query)
    assert params == [3, 6] and all(type(p) is int for p in params)
    assert explorer.explorer_count(query=query) == 4
    assert [row.id for row in explorer.explorer_page(query=query).rows] == ids[3:7]
    exact = ExplorerQuery(dataset_id=dataset.pk, ranges=(Range(signal=column, lo=3, hi=3.0),))
    assert explorer.explorer_count(query=exact) == 1
    wide = ExplorerQuery(
        dataset_id=dataset.pk, ranges=(Range(signal=column, lo=-math.inf, hi=math.inf),)
    )
    assert explorer.explorer_count(query=wide) == 10
