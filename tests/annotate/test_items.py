from __future__ import annotations

import pytest

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Item
from annotate.services.items import items_add_from_dataset, items_add_pairs
from curation.models import Document
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.factories import make_project

pytestmark = pytest.mark.django_db


def _doc_ids(project_id: int) -> list[int]:
    return list(
        Item.objects.filter(project_id=project_id)
        .order_by("document_id")
        .values_list("document_id", flat=True)
    )


def _with_signal(n: int) -> tuple[AnnotationProject, list[int]]:
    project = make_project(texts=[f"t{i}" for i in range(n)], add_items=False)
    ids = list(
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    signal = signal_define(name="score", step="test", step_version="1", dtype="float")
    # Scores 0..n-1; the last document has no value.
    signal_values_write(
        signal=signal,
        dataset_id=project.dataset_id,
        values=[(d, float(i) if i < n - 1 else None) for i, d in enumerate(ids)],
    )
    return project, ids


def test_all_adds_every_document_once_even_when_run_twice() -> None:
    project = make_project(texts=["a", "b", "c"], add_items=False)
    assert items_add_from_dataset(project=project).added == 3
    assert items_add_from_dataset(project=project).added == 0
    assert set(Item.objects.filter(project=project).values_list("status", flat=True)) == {"pending"}


def test_random_sample_is_fixed_by_its_seed() -> None:
    project = make_project(texts=[f"t{i}" for i in range(40)], add_items=False, name="r1")
    items_add_from_dataset(project=project, sample="random", n=10, seed=7)
    first = _doc_ids(project.pk)
    assert len(first) == 10
    Item.objects.filter(project=project).delete()
    items_add_from_dataset(project=project, sample="random", n=10, seed=7)
    assert _doc_ids(project.pk) == first
    Item.objects.filter(project=project).delete()
    items_add_from_dataset(project=project, sample="random", n=10, seed=8)
    assert _doc_ids(project.pk) != first


def test_band_takes_documents_between_lo_and_hi_inclusive() -> None:
    project, ids = _with_signal(10)
    signal = signal_define(name="score", step="test", step_version="1", dtype="float")
    added = items_add_from_dataset(project=project, sample="band", signal=signal, lo=2, hi=5)
    assert added.added == 4
    assert _doc_ids(project.pk) == ids[2:6]


def test_stratified_takes_from_every_bin_of_a_skewed_signal() -> None:
    project, ids = _with_signal(10)
    signal = signal_define(name="score", step="test", step_version="1", dtype="float")
    # Nine valued documents (0..8), three equal-width bins [0,8/3) [8/3,16/3) [16/3,8]:
    # three per bin; n=3 must take one from each, never the unvalued document.
    items_add_from_dataset(project=project, sample="stratified", signal=signal, bins=3, n=3)
    picked = [ids.index(d) for d in _doc_ids(project.pk)]
    assert len(picked) == 3
    assert sorted(p // 3 for p in picked) == [0, 1, 2]
    assert 9 not in picked


def test_sampling_errors_say_what_is_missing() -> None:
    project = make_project(add_items=False)
    with pytest.raises(ProjectError, match="needs n >= 1"):
        items_add_from_dataset(project=project, sample="random")
    with pytest.raises(ProjectError, match="needs a numeric signal"):
        items_add_from_dataset(project=project, sample="band", lo=1)
    text = signal_define(name="lang", step="t", step_version="1", dtype="text")
    with pytest.raises(ProjectError, match="not numbers"):
        items_add_from_dataset(project=project, sample="band", signal=text, lo=1)


def test_pairs_must_come_from_the_project_dataset() -> None:
    project = make_project(texts=["a", "b", "c"], add_items=False)
    a, b, c = _doc_ids_of_dataset(project.dataset_id)
    assert items_add_pairs(project=project, pairs=[(a, b), (b, c), (a, b)]).added == 2
    item = Item.objects.get(project=project, document_id=a)
    assert item.second_document_id == b
    with pytest.raises(ProjectError, match="both documents must be in dataset"):
        items_add_pairs(project=project, pairs=[(a, 10**12)])


def _doc_ids_of_dataset(dataset_id: int) -> list[int]:
    return list(
        Document.objects.filter(dataset_id=dataset_id).order_by("id").values_list("id", flat=True)
    )
