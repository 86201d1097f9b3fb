"""A text query's hits cached as bits (curation/explorer/text_hits.py).

The thresholds are lowered so that the 400 documents of ``TextCorpus`` take the paths a
million do: the exact count that reads every hit keeps them, and every later exact count
of the same words with other signal predicates tests a bit per signal row. Each must
give what Python gives (pages too, which never read the bits), and bits of another
version of the dataset must never be read.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection
from django.test import Client

from curation import explorer
from curation.explorer import ExplorerQuery, MetaEquals, Range, Sort, text_hits, text_plan
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
    return list(
        TextHits.objects.filter(dataset=dataset)
        .order_by("created_at", "pk")
        .values_list("text", flat=True)
    )


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
