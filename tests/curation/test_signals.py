from __future__ import annotations

import pytest
from django.db import connection

from curation.errors import PermanentError
from curation.models import Document
from curation.selectors import document_signals
from curation.services.datasets import dataset_delete
from curation.services.signals import (
    partition_name,
    signal_define,
    signal_rows_write,
    signal_table_compact,
    signal_values_clear,
    signal_values_write,
)
from tests.curation.factories import make_dataset

pytestmark = pytest.mark.django_db


def add_documents(dataset_id: int, n: int) -> list[int]:
    docs = Document.objects.bulk_create(
        Document(
            dataset_id=dataset_id,
            external_id=str(i),
            text=f"doc {i}",
            content_hash=i,
            char_count=5,
            word_count=2,
            line_count=1,
        )
        for i in range(n)
    )
    return [d.pk for d in docs]


def column_values(dataset_id: int, column: str) -> dict[int, object]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT document_id, {column} FROM curation_signal_row WHERE dataset_id = %s",
            [dataset_id],
        )
        return dict(cursor.fetchall())


def test_writing_a_signal_twice_keeps_one_value_per_document() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset.pk, 50)
    signal = signal_define(name="word_ratio", step="stats", step_version="1", dtype="float")

    signal_values_write(signal=signal, dataset_id=dataset.pk, values=[(i, 0.5) for i in ids])
    signal_values_write(
        signal=signal, dataset_id=dataset.pk, values=[(i, float(n)) for n, i in enumerate(ids)]
    )

    values = column_values(dataset.pk, signal.column_name)
    assert len(values) == 50
    assert values[ids[7]] == 7.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM curation_signal_row WHERE dataset_id = %s", [dataset.pk]
        )
        assert cursor.fetchone() == (50,)


def test_signals_of_each_dtype_round_trip_to_the_document_page() -> None:
    dataset = make_dataset()
    (doc_id,) = add_documents(dataset.pk, 1)
    written = {
        signal_define(name="f", step="s", step_version="1", dtype="float"): 0.25,
        signal_define(name="i", step="s", step_version="1", dtype="int"): 12,
        signal_define(name="b", step="s", step_version="1", dtype="bool"): True,
        signal_define(name="lang", step="s", step_version="1", dtype="text"): "fr",
        signal_define(name="spans", step="s", step_version="1", dtype="json"): [[0, 5, "email"]],
    }
    for signal, value in written.items():
        signal_values_write(signal=signal, dataset_id=dataset.pk, values=[(doc_id, value)])

    shown = {v.signal.name: v.value for v in document_signals(document=Document.objects.get())}
    assert shown == {"f": 0.25, "i": 12, "b": True, "lang": "fr", "spans": [[0, 5, "email"]]}


def test_a_signal_cannot_change_dtype() -> None:
    signal_define(name="score", step="s", step_version="1", dtype="float")
    with pytest.raises(PermanentError, match="another name"):
        signal_define(name="score", step="s", step_version="2", dtype="text")


def test_redefining_records_the_new_step_version() -> None:
    first = signal_define(name="ppl", step="perplexity", step_version="1", dtype="float")
    again = signal_define(name="ppl", step="perplexity", step_version="2", dtype="float")
    assert again.pk == first.pk
    assert again.step_version == "2"


def test_values_stay_within_their_dataset_and_clear() -> None:
    one, two = make_dataset("one"), make_dataset("two")
    ids_one, ids_two = add_documents(one.pk, 3), add_documents(two.pk, 3)
    signal = signal_define(name="x", step="s", step_version="1", dtype="int")
    signal_values_write(signal=signal, dataset_id=one.pk, values=[(i, 1) for i in ids_one])
    signal_values_write(signal=signal, dataset_id=two.pk, values=[(i, 2) for i in ids_two])

    signal_values_clear(signal=signal, dataset=one)
    assert set(column_values(one.pk, signal.column_name).values()) == {None}
    assert set(column_values(two.pk, signal.column_name).values()) == {2}


def test_deleting_a_dataset_drops_its_signal_partition() -> None:
    dataset = make_dataset()
    add_documents(dataset.pk, 2)
    name = partition_name(dataset.pk)
    dataset_delete(dataset=dataset)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        assert cursor.fetchone() == (None,)
    assert not Document.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_compacting_reclaims_the_space_of_rewritten_values() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset.pk, 3000)
    signal = signal_define(name="length", step="s", step_version="1", dtype="float")

    def size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size(%s)", [partition_name(dataset.pk)])
            return int(cursor.fetchone()[0])

    signal_values_write(signal=signal, dataset_id=dataset.pk, values=[(i, 1.0) for i in ids])
    once = size()
    signal_values_write(signal=signal, dataset_id=dataset.pk, values=[(i, 2.0) for i in ids])
    assert size() > once
    signal_table_compact(dataset_id=dataset.pk)
    assert size() <= once
    assert set(column_values(dataset.pk, signal.column_name).values()) == {2.0}


def test_several_signals_are_written_in_one_upsert() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset.pk, 4)
    a = signal_define(name="a", step="s", step_version="1", dtype="int")
    b = signal_define(name="b", step="s", step_version="1", dtype="text")
    c = signal_define(name="c", step="s", step_version="1", dtype="json")
    signal_rows_write(
        signals=[a, b, c],
        dataset_id=dataset.pk,
        rows=[(i, n, None if n == 2 else f"t{n}", {"n": n}) for n, i in enumerate(ids)],
    )
    shown = {
        v.signal.name: v.value for v in document_signals(document=Document.objects.get(pk=ids[2]))
    }
    assert shown == {"a": 2, "c": {"n": 2}}
    assert column_values(dataset.pk, b.column_name)[ids[3]] == "t3"
