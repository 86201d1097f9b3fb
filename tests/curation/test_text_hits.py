"""A text query's hits cached as bits (curation/explorer/text_hits.py).

The thresholds are lowered so that the 400 documents of ``TextCorpus`` take the paths a
million do: the exact count that reads every hit keeps them, and every later exact count
of the same words with other signal predicates tests a bit per signal row. Each must
give what Python gives (pages too, which never read the bits), and bits of another
version of the dataset must never be read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client

from curation import explorer
from curation.explorer import ExplorerQuery, MetaEquals, Range, Sort, text_hits, text_plan
from curation.explorer.filters import HitBits
from curation.models import Dataset, Document, Signal, TextHits
from curation.services.datasets import dataset_delete, dataset_recount
from curation.services.signals import signal_rows_write
from tests.curation.factories import UserFactory
from tests.curation.test_text_plan import TextCorpus, force, queries, walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(monkeypatch: pytest.MonkeyPatch) -> TextCorpus:
    monkeypatch.setattr(text_plan, "PLAN_MIN_DOCUMENTS", 1)
    monkeypatch.setattr(text_plan, "PROBE_DOCUMENTS", 40)
    monkeypatch.setattr(text_hits, "BITS_MIN_HITS", 1)
    return TextCorpus()


def kept(dataset: Dataset) -> list[str]:
    """The words whose bits are kept, oldest first (keys are tsquery texts: "'common'")."""
    keys = (
        TextHits.objects.filter(dataset=dataset)
        .order_by("created_at", "pk")
        .values_list("text", flat=True)
    )
    return [" & ".join(t.strip("'") for t in key.split(" & ")) for key in keys]


def test_the_first_exact_count_keeps_the_hits_and_later_reads_test_them(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    force(monkeypatch, "all")  # read every hit, so the count keeps them
    for query in queries(corpus):
        expected = corpus.expected(query)
        first, read = text_plan.text_count(query=query)
        assert first == len(expected), query
        if query.text == "absent":
            assert read in ("all", "window")  # the probe found no hit: nothing to keep
            continue
        assert read in ("built", "bits"), (query, read)
        again, read = text_plan.text_count(query=query)
        assert (again, read) == (len(expected), "bits"), query
        assert explorer.explorer_count(query=query) == len(expected)
        for size in (1, 7, 40):
            for exact_count in (False, True):
                seen: list[int] = []
                for results in walk(query, exact_count=exact_count, size=size):
                    seen += [row.id for row in results.page.rows]
                    assert results.read in (*text_plan.READS, "bits")
                    if results.count is not None:
                        assert results.count == len(expected), query
                    else:
                        assert results.estimate is not None and results.estimate >= 0
                assert seen == expected, (query, size, exact_count)
    assert set(kept(corpus.dataset)) == {"common", "mid", "rare", "late"}


@pytest.mark.parametrize("size", [1, 7, 40])
def test_pages_read_through_the_bits_are_those_python_gives(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    force(monkeypatch, "all")
    for word in ("common", "mid", "rare", "late"):
        assert text_hits.text_hits_build(query=corpus.query(word)) is not None
    force(monkeypatch, "bits")
    used = set()
    for query in queries(corpus):
        expected = corpus.expected(query)
        for exact_count in (False, True):
            seen: list[int] = []
            for results in walk(query, exact_count=exact_count, size=size):
                seen += [row.id for row in results.page.rows]
                used.add(results.read)
                if results.read == "bits":
                    assert results.count == len(expected), query
            assert seen == expected, (query, exact_count)
    assert "bits" in used


def test_the_bits_hold_exactly_the_hits(corpus: TextCorpus) -> None:
    query = corpus.query("mid", ranges=(Range(signal=corpus.score, lo=0.0, hi=1.0),))
    built = text_hits.text_hits_build(query=query)
    assert built is not None
    hits = sorted(d for d in corpus.ids if "mid" in corpus.texts[d].split())
    set_bits = [
        built.first_id + n
        for n in range(built.last_id - built.first_id + 1)
        if built.bits[n // 8] >> (n % 8) & 1
    ]
    assert set_bits == hits and built.hits == len(hits)
    assert (built.first_id, built.last_id) == (min(corpus.ids), max(corpus.ids))
    ids = text_plan.dataset_ids(corpus.dataset.pk)
    assert ids is not None and text_hits.cached_hits(query, ids) == built


def test_bits_of_another_version_of_the_dataset_are_not_read(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    force(monkeypatch, "all")
    wide = Range(signal=corpus.score, lo=0.0, hi=1.0)
    query = corpus.query("rare", ranges=(wide,))
    assert text_plan.text_count(query=query) == (3, "built")
    # An import appends a document with the word: the kept bits no longer hold every hit.
    new = Document.objects.create(
        dataset=corpus.dataset,
        external_id="appended",
        text="doc rare appended",
        content_hash=1,
        char_count=17,
        word_count=3,
        line_count=1,
    ).pk
    dataset_recount(dataset=corpus.dataset)
    signal_rows_write(
        signals=[Signal.objects.get(name="score")], dataset_id=corpus.dataset.pk, rows=[(new, 0.5)]
    )
    ids = text_plan.dataset_ids(corpus.dataset.pk)
    assert ids is not None and text_hits.cached_hits(query, ids) is None
    assert text_plan.text_count(query=query) == (4, "built")
    assert text_plan.text_count(query=query) == (4, "bits")
    results = explorer.explorer_results(query=query, after=None, exact_count=True, size=10)
    assert results.count == 4 and results.page.rows[-1].id == new
    assert kept(corpus.dataset) == ["rare"]  # the old version's bits were dropped


def test_only_the_newest_bits_are_kept(corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_hits, "KEEP_PER_DATASET", 2)
    for word in ("common", "mid", "late"):
        assert text_hits.text_hits_build(query=corpus.query(word)) is not None
    assert kept(corpus.dataset) == ["mid", "late"]
    # The same bits kept twice (two requests at once): the second is not an error.
    assert text_hits.text_hits_build(query=corpus.query("late")) is not None
    assert kept(corpus.dataset) == ["mid", "late"]


def test_a_meta_predicate_or_a_small_dataset_keeps_nothing(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    force(monkeypatch, "all")
    meta = dataclasses.replace(corpus.query("common"), meta=MetaEquals(key="k", value="v"))
    assert text_plan.text_count(query=meta)[0] == 0
    monkeypatch.setattr(text_plan, "PLAN_MIN_DOCUMENTS", 10_000)
    wide = Range(signal=corpus.score, lo=0.0, hi=1.0)
    count, read = text_plan.text_count(query=corpus.query("common", ranges=(wide,)))
    assert count == len(corpus.expected(corpus.query("common", ranges=(wide,))))
    assert read == "all"
    assert kept(corpus.dataset) == []


def test_bits_need_a_signal_predicate_beside_them(corpus: TextCorpus) -> None:
    built = text_hits.text_hits_build(query=corpus.query("common"))
    assert built is not None
    query = corpus.query("common", sort=Sort(descending=True))
    # Text alone counts the bits themselves.
    assert text_plan.text_count(query=query) == (len(corpus.expected(query)), "bits")
    with pytest.raises(ValueError, match="signal predicate"):
        explorer.count_sql(dataclasses.replace(query, text_hits=built))


def test_deleting_the_dataset_deletes_its_bits(corpus: TextCorpus) -> None:
    assert text_hits.text_hits_build(query=corpus.query("common")) is not None
    dataset_delete(dataset=corpus.dataset)
    assert not TextHits.objects.exists()


def test_the_table_is_unlogged() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'curation_texthits'")
        assert cursor.fetchone() == ("u",)


def test_the_htmx_count_keeps_the_bits_and_the_next_count_reads_them(
    corpus: TextCorpus, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explorer, "COUNT_INLINE_MAX", 10)
    force(monkeypatch, "all")
    client.force_login(UserFactory.create())
    base = f"/datasets/{corpus.dataset.slug}/explore/"
    params = {"q": "common", f"min.{corpus.score.name}": "0.2"}
    query = ExplorerQuery(
        dataset_id=corpus.dataset.pk,
        text="common",
        ranges=(Range(signal=corpus.score, lo=0.2, hi=None),),
    )
    expected = corpus.expected(query)
    counted = client.get(f"{base}count/", params, headers={"HX-Request": "true"})
    assert counted.content.decode().strip() == f'<strong id="match-count">{len(expected)}</strong>'
    assert kept(corpus.dataset) == ["common"]
    params[f"min.{corpus.score.name}"] = "0.5"
    moved = ExplorerQuery(
        dataset_id=corpus.dataset.pk,
        text="common",
        ranges=(Range(signal=corpus.score, lo=0.5, hi=None),),
    )
    page = client.get(base, params, headers={"HX-Request": "true"}).content.decode()
    assert corpus.texts[corpus.expected(moved)[0]] in page
    recount = client.get(f"{base}count/", params, headers={"HX-Request": "true"})
    assert f">{len(corpus.expected(moved))}</strong>" in recount.content.decode()
    assert text_plan.text_count(query=moved) == (len(corpus.expected(moved)), "bits")


def test_bits_are_keyed_by_the_query_as_postgresql_reads_it(corpus: TextCorpus) -> None:
    built = text_hits.text_hits_build(query=corpus.query("common"))
    assert built is not None and kept(corpus.dataset) == ["common"]
    ids = text_plan.dataset_ids(corpus.dataset.pk)
    assert ids is not None
    # Typed otherwise, the same lexeme: the same bits.
    assert text_hits.cached_hits(corpus.query("COMMON"), ids) == built
    assert text_hits.cached_hits(corpus.query("Common."), ids) == built
    assert text_hits.cached_hits(corpus.query("commons"), ids) is None
    assert text_hits.cached_hits(corpus.query("mid"), ids) is None
    # No word at all: the query matches nothing, and no bits stand for it.
    assert text_hits.tsquery_key("-- !") == ""
    assert text_hits.text_hits_build(query=corpus.query("-- !")) is None


@pytest.mark.parametrize(
    ("key", "terms"),
    [
        ("'common'", ["'common'"]),
        ("'common' & 'mid'", ["'common'", "'mid'"]),
        ("'it''s' & 'b\\\\c'", ["'it''s'", "'b\\\\c'"]),
        ("'common' | 'mid'", []),
        ("'common' & !'mid'", []),
        ("'common' <-> 'mid'", []),
        ("'common':*", []),
        ("'common' & 'mid':A", []),
        ("", []),
    ],
)
def test_and_terms_only_splits_an_and_of_plain_lexemes(key: str, terms: list[str]) -> None:
    assert text_hits.and_terms(key) == terms


def test_words_anded_read_the_and_of_their_bits(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for word in ("doc", "common", "late"):
        assert text_hits.text_hits_build(query=corpus.query(word)) is not None
    ids = text_plan.dataset_ids(corpus.dataset.pk)
    assert ids is not None
    wide = Range(signal=corpus.score, lo=0.35, hi=1.0)
    both = [d for d in corpus.ids if {"common", "late"} <= set(corpus.texts[d].split())]
    with_range = [d for d in corpus.expected(corpus.query("late", ranges=(wide,))) if d in both]
    assert len(both) == 5 and 0 < len(with_range) < 5
    for text in ("common late", "late common", "Late DOC Common"):
        bits = text_hits.cached_hits(corpus.query(text), ids)
        assert bits is not None and bits.hits == len(both), text
        assert text_plan.text_count(query=corpus.query(text)) == (len(both), "bits")
        query = corpus.query(text, ranges=(wide,))
        assert text_plan.text_count(query=query) == (len(with_range), "bits")
        with monkeypatch.context() as forced:
            force(forced, "bits")
            results = explorer.explorer_results(query=query, after=None, exact_count=True, size=500)
        assert [row.id for row in results.page.rows] == with_range
        assert (results.read, results.count) == ("bits", len(with_range))
    # A word without bits, NOT, OR or a phrase: the AND of the bits does not stand for them.
    for text in ("common mid", "common -late", "common or late", '"common late"'):
        assert text_hits.cached_hits(corpus.query(text), ids) is None, text
    assert kept(corpus.dataset) == ["doc", "common", "late"]  # the AND itself is not kept


@pytest.mark.django_db(transaction=True)
def test_the_search_index_task_keeps_the_common_words_ahead_of_any_query(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curation.services.search import search_index_drop
    from curation.tasks import search_index_build

    dataset = corpus.dataset
    # "doc" is in every document, "common" in half, "mid" in a tenth: with 150 hits at
    # least, the first two are common words, most common first.
    monkeypatch.setattr(text_hits, "COMMON_MIN_HITS", 150)
    ids = text_plan.dataset_ids(dataset.pk)
    assert ids is not None
    try:
        # Without the search index each word would scan every document: nothing is built.
        assert text_hits.common_words_build(dataset_id=dataset.pk) == []
        assert text_hits.common_words(dataset_id=dataset.pk, ids=ids) == [
            ("'doc'", len(corpus.ids)),
            ("'common'", len(corpus.ids) // 2),
        ]
        with monkeypatch.context() as sampled:  # a sample of the documents: shares estimated
            sampled.setattr(text_hits, "COMMON_SAMPLE_DOCUMENTS", 200)
            (doc, everywhere), (common, estimate) = text_hits.common_words(
                dataset_id=dataset.pk, ids=ids
            )
            assert (doc, everywhere, common) == ("'doc'", len(corpus.ids), "'common'")
            assert 150 <= estimate <= 250
        search_index_build(dataset.pk)  # the index, then the common words' bits
        assert kept(dataset) == ["doc", "common"]
        assert set(TextHits.objects.values_list("common", flat=True)) == {True}
        wide = Range(signal=corpus.score, lo=0.05, hi=0.95)
        query = corpus.query("common", ranges=(wide,))
        # The first count of a common word reads its bits: nothing to build.
        assert text_plan.text_count(query=query) == (len(corpus.expected(query)), "bits")
        assert text_plan.text_count(query=corpus.query("Doc")) == (len(corpus.ids), "bits")
        # Bits built by counts are trimmed to the newest few; the common words' stay.
        monkeypatch.setattr(text_hits, "KEEP_PER_DATASET", 1)
        for word in ("mid", "late", "rare"):
            assert text_hits.text_hits_build(query=corpus.query(word)) is not None
        assert kept(dataset) == ["doc", "common", "rare"]
        # A count that built a common word's bits first: the task marks them common.
        TextHits.objects.filter(text="'common'").update(common=False)
        search_index_build(dataset.pk)
        assert TextHits.objects.get(text="'common'").common
        assert text_hits.common_words_build(dataset_id=dataset.pk) == []  # all kept already
        # An import appends: the task keeps them for the new version of the dataset,
        # reading only the new documents (the earlier bits hold the rest).
        builds: list[str] = []  # the words whose every hit was read
        build = text_hits._build

        def spy(dataset_id: int, key: str, *args: Any, **kwargs: Any) -> HitBits:
            builds.append(key)
            return build(dataset_id, key, *args, **kwargs)

        monkeypatch.setattr(text_hits, "_build", spy)
        monkeypatch.setattr(text_hits, "APPENDED_CHUNK", 1)  # one statement per new id

        def append(text: str, **fields: int) -> int:
            doc = Document.objects.create(
                dataset=dataset,
                external_id=text,
                text=text,
                content_hash=1,
                char_count=len(text),
                word_count=3,
                line_count=1,
                **fields,
            )
            dataset_recount(dataset=dataset)
            return int(doc.pk)

        def bit(bits: HitBits, doc_id: int) -> bool:
            offset = doc_id - bits.first_id
            return bool(bits.bits[offset // 8] >> (offset % 8) & 1)

        new = append("doc common appended")
        append("doc appended too")
        search_index_build(dataset.pk)
        assert kept(dataset) == ["doc", "common"]
        assert builds == []
        new += 1  # the second appended document has the last id
        ids = text_plan.dataset_ids(dataset.pk)
        assert ids is not None and ids.last == new
        halves = text_hits.cached_hits(corpus.query("common"), ids)
        every = text_hits.cached_hits(corpus.query("doc"), ids)
        assert halves is not None and every is not None
        assert (halves.hits, every.hits) == (len(corpus.ids) // 2 + 1, len(corpus.ids) + 2)
        for doc_id in corpus.ids:
            assert bit(halves, doc_id) == ("common" in corpus.texts[doc_id].split())
            assert bit(every, doc_id)
        assert bit(halves, new - 1) and not bit(halves, new)
        assert bit(every, new - 1) and bit(every, new)
        # A document below the first id (not an append): every word is read again.
        builds.clear()
        below = append("doc below", id=ids.first - 1)
        search_index_build(dataset.pk)
        assert builds == ["'doc'", "'common'"]
        ids = text_plan.dataset_ids(dataset.pk)
        assert ids is not None and ids.first == below
        every = text_hits.cached_hits(corpus.query("doc"), ids)
        assert every is not None and every.hits == len(corpus.ids) + 3 and bit(every, below)
    finally:
        search_index_drop(dataset_id=dataset.pk)


def test_bits_count_the_hits_of_any_window() -> None:
    rng = np.random.default_rng(3)
    flags = rng.random(203) < 0.3
    bits = HitBits(
        first_id=1000,
        last_id=1202,
        hits=int(flags.sum()),
        bits=np.packbits(flags, bitorder="little").tobytes(),
    )
    for lo, hi in [(1000, 1203), (990, 1500), (1003, 1011), (1008, 1016), (1201, 1203), (5, 9)]:
        expected = sum(1 for n in range(203) if flags[n] and lo <= 1000 + n < hi)
        assert text_plan._bits_in(bits, (lo, hi)) == expected, (lo, hi)
    for _ in range(200):
        lo = int(rng.integers(990, 1210))
        hi = int(rng.integers(lo, 1215))
        expected = sum(1 for n in range(203) if flags[n] and lo <= 1000 + n < hi)
        assert text_plan._bits_in(bits, (lo, hi)) == expected, (lo, hi)


def test_windows_test_the_kept_bits_instead_of_reading_the_search_index(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = text_hits.text_hits_build(query=corpus.query("common"))
    assert built is not None
    wide = Range(signal=corpus.score, lo=0.05, hi=0.95)
    query = corpus.query("common", ranges=(wide,))
    statement, _ = explorer.results_sql(
        dataclasses.replace(query, text_hits=built), window=(min(corpus.ids), max(corpus.ids))
    )
    assert "to_tsvector" not in statement.as_string(connection.connection)
    runs: list[ExplorerQuery] = []
    run = text_plan._run

    def spy(q: ExplorerQuery, **kwargs: Any) -> list[tuple[Any, ...]]:
        runs.append(q)
        return run(q, **kwargs)

    monkeypatch.setattr(text_plan, "_run", spy)
    force(monkeypatch, "window")
    for size in (1, 7, 40):
        seen: list[int] = []
        for results in walk(query, exact_count=False, size=size):
            seen += [row.id for row in results.page.rows]
            assert results.read in ("window", "bits")
        assert seen == corpus.expected(query), size
    assert runs and all(q.text_hits == built for q in runs)


def test_only_few_hits_beside_more_signal_matches_look_each_signal_row_up() -> None:
    few = ("enable_hashjoin = off", "enable_mergejoin = off")
    assert text_plan._join_settings("all", 1_000, 6_000) == few
    assert text_plan._join_settings("all", 3_000, 400) == ()  # the ranges match fewer
    assert text_plan._join_settings("all", 10_000, 60_000) == ()  # too many hits
    assert text_plan._join_settings("all", 1_000, None) == ()  # no signal predicate
    assert text_plan._join_settings("signals", 1_000, 6_000) == ()


def test_counts_of_broad_signal_predicates_scan_instead_of_a_bitmap(
    corpus: TextCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``count_settings``: bitmap scans off when the signal predicates alone match at least
    SEQ_SCAN_MIN_SHARE of the signal rows (the text left out: its bits are not sampled),
    nothing for narrow ones or small datasets; the counts are Python's either way."""
    from curation.explorer import estimate as explorer_estimate
    from curation.explorer import query as explorer_query

    broad = corpus.query("common", ranges=(Range(signal=corpus.score, lo=0.0, hi=0.9),))
    narrow = corpus.query("common", ranges=(Range(signal=corpus.score, lo=0.5, hi=0.5),))
    plain = dataclasses.replace(broad, text="")
    assert explorer_estimate.count_settings(plain) == ("enable_bitmapscan = off",)
    assert explorer_estimate.count_settings(dataclasses.replace(narrow, text="")) == ()
    assert explorer_estimate.count_settings(broad) == ()  # reads documents: not its call
    ran: list[tuple[str, ...]] = []
    execute = explorer_query._execute

    def spy(*args: Any, settings: tuple[str, ...] = (), **kwargs: Any) -> Any:
        ran.append(settings)
        return execute(*args, settings=settings, **kwargs)

    monkeypatch.setattr(explorer_query, "_execute", spy)
    force(monkeypatch, "all")
    for query in (broad, narrow):
        assert text_plan.text_count(query=query)[0] == len(corpus.expected(query))  # keeps bits
        ran.clear()
        n, read = text_plan.text_count(query=query)
        assert (n, read) == (len(corpus.expected(query)), "bits")
        bitmap_off = ("enable_bitmapscan = off",) in ran
        assert bitmap_off == (query is broad), ran
    ran.clear()
    assert explorer.explorer_count(query=plain) == sum(
        1 for s, _ in corpus.values.values() if s <= 0.9
    )
    assert ran == [("enable_bitmapscan = off",)]
    monkeypatch.setattr(text_plan, "PLAN_MIN_DOCUMENTS", 10_000)
    assert explorer_estimate.count_settings(plain) == ()
