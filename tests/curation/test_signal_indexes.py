"""Signal indexes built on use, and the explorer's sampled count on big datasets."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

import numpy as np
import orjson
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from curation import explorer
from curation.explorer import Equals, ExplorerQuery, Range, SignalColumn
from curation.explorer.estimate import sampled_count
from curation.models import Dataset, Signal
from curation.services import signal_indexes
from curation.services.datasets import dataset_delete, dataset_recount
from curation.services.signal_indexes import (
    signal_index_build,
    signal_index_name,
    signal_indexes_request,
    signal_indexes_state,
)
from curation.services.signals import partition_name, signal_define, signal_rows_write
from tests.conftest import wait_for
from tests.curation.factories import UserFactory, make_dataset
from tests.curation.test_signals import add_documents

pytestmark = pytest.mark.django_db(transaction=True)


def corpus(n: int, seed: int = 0) -> tuple[Dataset, Signal, Signal]:
    """``n`` documents with a uniform ``quality`` in [0, 1) and a ``lang`` (en 70 %, de 30 %)."""
    dataset = make_dataset(f"ix-{n}-{seed}")
    ids = add_documents(dataset.pk, n)
    dataset_recount(dataset=dataset)
    quality = signal_define(name="quality", step="test", step_version="1", dtype="float")
    lang = signal_define(name="lang", step="test", step_version="1", dtype="text")
    rng = np.random.default_rng(seed)
    values = rng.random(n)
    signal_rows_write(
        dataset_id=dataset.pk,
        signals=[quality, lang],
        rows=[
            (pk, float(v), "en" if v * 10 % 1 < 0.7 else "de")
            for pk, v in zip(ids, values, strict=True)
        ],
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition_name(dataset.pk)}")
    return dataset, quality, lang


def query(dataset: Dataset, quality: Signal, lang: Signal, lo: float, hi: float) -> ExplorerQuery:
    return ExplorerQuery(
        dataset_id=dataset.pk,
        ranges=(Range(signal=SignalColumn.of(quality), lo=lo, hi=hi),),
        equals=(Equals(signal=SignalColumn.of(lang), value="en"),),
    )


def plan(q: ExplorerQuery) -> str:
    statement, params = explorer.page_sql(q)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + statement.as_string(cursor.connection), params)
            return "\n".join(r[0] for r in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")


def test_an_index_is_built_once_used_by_the_planner_and_goes_with_its_dataset() -> None:
    from curation.tasks import signal_index_build as task

    dataset, quality, lang = corpus(400)
    q = query(dataset, quality, lang, 0.1, 0.2)
    before = [r.id for r in explorer.explorer_page(query=q, size=500).rows]
    name = signal_index_name(dataset_id=dataset.pk, signal_id=quality.pk)
    assert name not in plan(q)
    assert signal_indexes_state(dataset_id=dataset.pk) == {}

    task(dataset.pk, quality.pk)  # the task calls the service
    assert signal_indexes_state(dataset_id=dataset.pk) == {quality.pk: True}
    assert signal_index_build(dataset_id=dataset.pk, signal_id=quality.pk) is False  # idempotent
    assert name in plan(q)
    assert [r.id for r in explorer.explorer_page(query=q, size=500).rows] == before
    assert explorer.explorer_count(query=q) == len(before) > 0

    dataset_id = dataset.pk
    dataset_delete(dataset=dataset)
    assert signal_indexes_state(dataset_id=dataset_id) == {}
    # A build queued before the delete does nothing.
    assert signal_index_build(dataset_id=dataset_id, signal_id=quality.pk) is False


def test_a_killed_build_is_dropped_and_rebuilt() -> None:
    dataset, quality, _ = corpus(50)
    name = signal_index_name(dataset_id=dataset.pk, signal_id=quality.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX {name} ON {partition_name(dataset.pk)} ({quality.column_name})"
        )
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an invalid index.
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert signal_indexes_state(dataset_id=dataset.pk) == {quality.pk: False}
    assert signal_index_build(dataset_id=dataset.pk, signal_id=quality.pk) is True
    assert signal_indexes_state(dataset_id=dataset.pk) == {quality.pk: True}


def test_json_signals_get_no_index() -> None:
    from curation.errors import PermanentError

    dataset, _, _ = corpus(10)
    spans = signal_define(name="spans", step="test", step_version="1", dtype="json")
    with pytest.raises(PermanentError, match="cannot have a B-tree index"):
        signal_index_build(dataset_id=dataset.pk, signal_id=spans.pk)
    Dataset.objects.filter(pk=dataset.pk).update(document_count=10**6)
    dataset.refresh_from_db()
    cache.clear()
    assert signal_indexes_request(dataset=dataset, signals=[spans]) == []


def test_the_explorer_asks_for_indexes_on_big_datasets_and_a_worker_builds_them(
    start_worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, quality, lang = corpus(300)
    cache.clear()
    user = UserFactory.create()
    client = Client()
    client.force_login(user)
    url = f"/datasets/{dataset.slug}/explore/"
    params = {"min.quality": "0.5", "eq.lang": "en"}

    # A small dataset scans fast enough: no index is asked for.
    assert client.get(url, params).status_code == 200
    assert signal_indexes_state(dataset_id=dataset.pk) == {}

    start_worker()
    monkeypatch.setattr(signal_indexes, "INDEX_MIN_DOCUMENTS", 100)
    response = client.get(url, params)
    assert response.status_code == 200
    wait_for(
        lambda: signal_indexes_state(dataset_id=dataset.pk) == {quality.pk: True, lang.pk: True}
    )
    # Asked once: the next page view queues nothing more.
    assert signal_indexes_request(dataset=dataset, signals=[quality, lang]) == []


def test_sampled_count_is_close_repeatable_and_exact_on_small_partitions() -> None:
    dataset, quality, lang = corpus(6000, seed=3)
    wide = query(dataset, quality, lang, 0.2, 0.8)
    exact = explorer.explorer_count(query=wide)

    small = sampled_count(query=wide)  # 6,000 rows <= 2 x SAMPLE_ROWS: counted exactly
    assert small is not None and small.exact and small.estimate == exact

    sampled = sampled_count(query=wide, rows=1500)
    assert sampled is not None and not sampled.exact
    assert 0 < sampled.sampled < 6000
    # ~1,500 rows read, a filter keeping ~42 %: relative error ~3 %; allow 20 %.
    assert abs(sampled.estimate - exact) <= 0.2 * exact
    assert sampled_count(query=wide, rows=1500) == sampled  # REPEATABLE: the same sample

    # Queries over documents, or with no signal predicate, are not sampled.
    text = ExplorerQuery(dataset_id=dataset.pk, text="doc")
    assert sampled_count(query=text) is None
    assert sampled_count(query=ExplorerQuery(dataset_id=dataset.pk)) is None


def test_a_sample_is_read_once_while_the_partition_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The htmx page's count asks the sample its first response read: kept in the cache,
    keyed by the statement and the partition's write counters (estimate._sample)."""
    from curation.explorer import estimate

    dataset, quality, lang = corpus(6000, seed=7)
    cache.clear()
    wide = query(dataset, quality, lang, 0.2, 0.8)
    samples: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "TABLESAMPLE" in sql:
            samples.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        first = sampled_count(query=wide, rows=1500)
        assert first is not None and not first.exact
        assert sampled_count(query=wide, rows=1500) == first
        assert len(samples) == 1
        narrow = query(dataset, quality, lang, 0.2, 0.3)  # another statement: its own sample
        assert sampled_count(query=narrow, rows=1500) != first
        assert len(samples) == 2
        monkeypatch.setattr(estimate, "partition_version", lambda cursor, dataset_id: "written")
        assert sampled_count(query=wide, rows=1500) == first  # read again, the same rows
        assert len(samples) == 3


def test_the_estimate_on_a_big_dataset_comes_from_the_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from curation.explorer import estimate

    dataset, quality, lang = corpus(3000, seed=4)
    monkeypatch.setattr(estimate, "SAMPLE_ROWS", 600)
    q = query(dataset, quality, lang, 0.0, 0.5)
    exact = explorer.explorer_count(query=q)
    guess = explorer.explorer_count_estimate(query=q)
    assert guess == sampled_count(query=q, rows=600).estimate  # type: ignore[union-attr]
    assert abs(guess - exact) <= 0.25 * exact


def test_a_selective_filter_is_counted_exactly_rather_than_guessed() -> None:
    dataset, quality, lang = corpus(6000, seed=5)
    narrow = query(dataset, quality, lang, 0.5, 0.503)  # ~13 documents: ~3 in the sample
    counted = sampled_count(query=narrow, rows=1500)
    assert counted is not None and counted.exact
    assert counted.matched < 20 and counted.estimate == explorer.explorer_count(query=narrow)


def test_a_page_sorted_by_an_indexed_signal_walks_the_index_in_order() -> None:
    from curation.explorer import Sort

    dataset, quality, lang = corpus(400, seed=6)
    q = ExplorerQuery(
        dataset_id=dataset.pk,
        equals=(Equals(signal=SignalColumn.of(lang), value="en"),),
        sort=Sort(signal=SignalColumn.of(quality), descending=True),
    )
    before = [(r.id, r.sort_value) for r in explorer.explorer_page(query=q, size=30).rows]
    signal_index_build(dataset_id=dataset.pk, signal_id=quality.pk)
    name = signal_index_name(dataset_id=dataset.pk, signal_id=quality.pk)
    statement, params = explorer.page_sql(q)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
        try:
            cursor.execute("EXPLAIN " + statement.as_string(cursor.connection), params)
            shown = "\n".join(r[0] for r in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_sort")
    # A forward walk gives (value DESC NULLS LAST, id DESC): the page's own order.
    walks = [line for line in shown.splitlines() if name in line]
    assert walks and all("Index Scan using" in w and "Backward" not in w for w in walks), shown
    after = [(r.id, r.sort_value) for r in explorer.explorer_page(query=q, size=30).rows]
    assert after == before and len(before) == 30
    assert [v for _, v in before] == sorted((v for _, v in before), reverse=True)


def index_walks(
    node: dict[str, Any], name: str, sorted_above: bool = False
) -> list[dict[str, Any]]:
    """The plan's scans of index ``name``, each with ``sorted_above``: a Sort of its rows.

    CTEs hang under the statement's top node as InitPlans: that node's Sort is not theirs.
    """
    walks = [{**node, "sorted_above": sorted_above}] if node.get("Index Name") == name else []
    for child in node.get("Plans", []):
        own = child.get("Parent Relationship") not in ("InitPlan", "SubPlan")
        walks += index_walks(child, name, own and (sorted_above or node["Node Type"] == "Sort"))
    return walks


@pytest.mark.parametrize("descending", [False, True])
def test_pages_sorted_either_way_walk_the_index_and_keep_values_then_nulls(
    descending: bool,
) -> None:
    from curation.explorer import Cursor, Sort
    from tests.curation.test_explorer import all_pages

    dataset, quality, lang = corpus(400, seed=7)
    column = quality.column_name
    with connection.cursor() as cursor:
        # Ties (one decimal) and NULLs, which an ascending sort shows last.
        cursor.execute(
            f"UPDATE {partition_name(dataset.pk)} SET {column} = CASE "
            f"WHEN document_id % 8 = 0 THEN NULL ELSE round({column}::numeric, 1) END"
        )
        cursor.execute(f"ANALYZE {partition_name(dataset.pk)}")
        cursor.execute(
            f"SELECT document_id, {column} FROM {partition_name(dataset.pk)} "
            f"WHERE {lang.column_name} = 'en'"
        )
        rows = cursor.fetchall()
    valued = sorted(((v, d) for d, v in rows if v is not None), reverse=descending)
    nulls = sorted((d for d, v in rows if v is None), reverse=descending)
    expected = [d for _, d in valued] + nulls
    q = ExplorerQuery(
        dataset_id=dataset.pk,
        equals=(Equals(signal=SignalColumn.of(lang), value="en"),),
        sort=Sort(signal=SignalColumn.of(quality), descending=descending),
    )
    signal_index_build(dataset_id=dataset.pk, signal_id=quality.pk)
    name = signal_index_name(dataset_id=dataset.pk, signal_id=quality.pk)
    middle = valued[len(valued) // 2]
    with connection.cursor() as cursor:
        # Sorting 400 rows is cheaper than walking an index: forbid it to see the walk (and
        # JIT, which the cost of a forbidden sort, the page's own 26 rows, would turn on).
        cursor.execute("SET enable_sort = off")
        cursor.execute("SET jit = off")
        try:
            # The first page, one in the values, one in the NULLs.
            for after in (None, Cursor(id=middle[1], value=middle[0]), Cursor(id=nulls[2])):
                statement, params = explorer.page_sql(q, after=after)
                cursor.execute(
                    "EXPLAIN (FORMAT JSON) " + statement.as_string(cursor.connection), params
                )
                shown = cursor.fetchone()[0]  # type: ignore[index]
                plan = orjson.loads(shown) if isinstance(shown, str) else shown
                walks = index_walks(plan[0]["Plan"], name)
                # Both parts, the values and the NULLs, walk it; past the values, the NULLs.
                assert len(walks) == (1 if after is not None and after.value is None else 2), plan
                for walk in walks:
                    assert walk["Node Type"] == "Index Scan" and not walk["sorted_above"], plan
                    assert walk["Scan Direction"] == ("Forward" if descending else "Backward")
            assert list(islice(all_pages(q, size=30), len(expected) + 1)) == expected
        finally:
            cursor.execute("RESET enable_sort")
            cursor.execute("RESET jit")
