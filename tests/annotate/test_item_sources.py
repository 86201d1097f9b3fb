"""Items from a recipe slice and from the borderline band of a score (active learning)."""

from __future__ import annotations

import pytest

from annotate.errors import ProjectError
from annotate.models import AnnotationProject, Item
from annotate.services.item_sources import items_add, items_add_borderline, items_add_from_recipe
from curation.models import DuplicateGroup, DuplicateMember, RecipeVersion, Signal
from curation.services.recipes import recipe_create, recipe_version_save
from curation.services.signals import signal_define, signal_values_write
from tests.annotate.factories import make_project

pytestmark = pytest.mark.django_db


def _project(values: list[float | None], name: str = "src") -> tuple[AnnotationProject, list[int]]:
    """A project without items over documents whose signal ``qc_quality`` is ``values``."""
    project = make_project(texts=[f"t{i}" for i in range(len(values))], add_items=False, name=name)
    ids = list(project.dataset.documents.order_by("id").values_list("id", flat=True))
    signal = _signal()
    signal_values_write(
        signal=signal, dataset_id=project.dataset_id, values=list(zip(ids, values, strict=True))
    )
    return project, ids


def _signal() -> Signal:
    return signal_define(name="qc_quality", step="classifier", step_version="1", dtype="float")


def _items(project: AnnotationProject) -> list[int]:
    return sorted(
        Item.objects.filter(project=project, second_document__isnull=True).values_list(
            "document_id", flat=True
        )
    )


def _version(
    project: AnnotationProject, rules: list[dict[str, object]], **dedup: bool
) -> RecipeVersion:
    recipe = recipe_create(dataset=project.dataset, name=f"r{RecipeVersion.objects.count()}")
    return recipe_version_save(recipe=recipe, rules=rules, dedup=dedup, user=None)


def test_recipe_slice_adds_exactly_the_kept_documents_and_nothing_twice() -> None:
    project, ids = _project([0.1, 0.9, 0.8, None, 0.7, 0.2])
    group = DuplicateGroup.objects.create(
        dataset=project.dataset, kind="exact", step="x", step_version="1", run_key="r1", size=2
    )
    DuplicateMember.objects.create(group=group, document_id=ids[1], is_representative=True)
    DuplicateMember.objects.create(group=group, document_id=ids[2], is_representative=False)
    version = _version(project, [{"signal": "qc_quality", "op": ">=", "value": 0.5}], exact=True)
    # Kept: values >= 0.5 (1, 2, 4) minus the exact duplicate 2; the unvalued 3 fails.
    assert items_add_from_recipe(project=project, version=version).added == 2
    assert _items(project) == [ids[1], ids[4]]
    assert items_add_from_recipe(project=project, version=version).added == 0
    project.refresh_from_db()
    assert project.item_count == 2


def test_recipe_slice_with_n_takes_n_new_ones_each_time_fixed_by_the_seed() -> None:
    project, ids = _project([float(i) for i in range(20)])
    version = _version(project, [{"signal": "qc_quality", "op": ">=", "value": 5}])
    first = items_add_from_recipe(project=project, version=version, n=4, seed=3)
    assert first.added == 4
    picked = _items(project)
    assert all(ids.index(d) >= 5 for d in picked)
    # Again: four more, none of them the first four.
    assert items_add_from_recipe(project=project, version=version, n=4, seed=3).added == 4
    assert len(set(_items(project))) == 8 and set(picked) < set(_items(project))
    # Starting again with the same seed picks the same first four.
    Item.objects.filter(project=project).delete()
    items_add_from_recipe(project=project, version=version, n=4, seed=3)
    assert _items(project) == picked
    items_add_from_recipe(project=project, version=version, n=4, seed=3)
    # Until the slice (15 documents) runs out.
    assert items_add_from_recipe(project=project, version=version, n=100).added == 7
    assert len(_items(project)) == 15


def test_recipe_of_another_dataset_is_refused() -> None:
    project, _ = _project([0.5])
    other, _ = _project([0.5], name="other")
    version = _version(other, [{"signal": "qc_quality", "op": ">=", "value": 0}])
    with pytest.raises(ProjectError, match="over another dataset"):
        items_add_from_recipe(project=project, version=version)


def test_borderline_takes_the_n_nearest_the_threshold_then_the_next_n() -> None:
    values = [0.05, 0.48, 0.95, None, 0.53, 0.3, 0.61, 0.5, 0.9]
    project, ids = _project(values)
    signal = _signal()
    assert items_add_borderline(project=project, signal=signal, threshold=0.5, n=3).added == 3
    # |v - 0.5|: 0.5 -> 0, 0.48 -> .02, 0.53 -> .03, 0.61 -> .11, 0.3 -> .2, ...
    assert _items(project) == sorted([ids[7], ids[1], ids[4]])
    # Another round skips what is already in the project.
    assert items_add_borderline(project=project, signal=signal, threshold=0.5, n=2).added == 2
    assert set(_items(project)) == {ids[7], ids[1], ids[4], ids[6], ids[5]}
    # The unvalued document is never taken, even when asking for everything.
    items_add_borderline(project=project, signal=signal, threshold=0.5, n=100)
    assert ids[3] not in _items(project) and len(_items(project)) == 8


def test_borderline_needs_a_numeric_signal_and_n() -> None:
    project, _ = _project([0.5])
    text = signal_define(name="lang", step="x", step_version="1", dtype="text")
    with pytest.raises(ProjectError, match="not scores"):
        items_add_borderline(project=project, signal=text, threshold=0.5, n=1)
    with pytest.raises(ProjectError, match="n >= 1"):
        items_add_borderline(project=project, signal=_signal(), threshold=0.5, n=0)
    with pytest.raises(ProjectError, match="signal and a threshold"):
        items_add(project=project, sample="borderline", signal=_signal(), n=1)
    with pytest.raises(ProjectError, match="pick the recipe version"):
        items_add(project=project, sample="recipe")


def test_items_add_still_runs_the_dataset_samplers() -> None:
    project, ids = _project([0.1, 0.2, 0.3])
    assert items_add(project=project, sample="all").added == 3
    assert _items(project) == ids
