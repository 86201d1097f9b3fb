"""The similarity index: built by a step, queried by the document page and the search box."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.test import Client

from curation.models import Document
from pipelines.models import PipelineRun
from pipelines.services.runs import run_create
from pipelines.services.similarity import (
    IndexMissingError,
    index_dir,
    search_documents,
    similar_documents,
)
from pipelines.steps.similarity import build_index, search
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents, make_pipeline, run_all

PAIRS = [
    (
        "The train to Lyon leaves the central station at nine every morning.",
        "Every morning at nine, the Lyon train departs from the central station.",
    ),
    (
        "Knead the dough for ten minutes, then let the bread rise for an hour.",
        "Let the bread rise an hour after kneading the dough for ten minutes.",
    ),
    (
        "The river flooded the lower fields after three days of heavy rain.",
        "After three days of heavy rain the lower fields were flooded by the river.",
    ),
    (
        "Python lists grow by over-allocating memory so appends stay cheap.",
        "Appending to a Python list is cheap because lists over-allocate memory.",
    ),
]
OTHERS = [
    "A violin has four strings tuned in perfect fifths.",
    "The museum opens a new exhibition of medieval maps in May.",
    "Owls hunt at night and can turn their heads very far.",
    "Tax forms are due at the end of April in many countries.",
]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_exact_index_finds_the_true_nearest_and_ivf_finds_most() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((4000, 32)))
    queries = unit(vectors[:200] + 0.05 * rng.standard_normal((200, 32)))
    truth = np.argmax(queries @ vectors.T, axis=1)

    exact = build_index(vectors, exact_below=10_000)
    _, found = search(exact, queries, 1)
    assert (found[:, 0] == truth).all()

    ivf = build_index(vectors, exact_below=1000)
    assert hasattr(ivf, "nprobe")
    _, found = search(ivf, queries, 1, nprobe=8)
    assert (found[:, 0] == truth).mean() >= 0.9


def test_an_empty_set_of_vectors_is_refused() -> None:
    with pytest.raises(ValueError, match="no vectors"):
        build_index(np.zeros((0, 8), dtype=np.float32), exact_below=10)


@pytest.fixture
def indexed(db: None) -> tuple[Any, list[int]]:
    dataset = make_dataset(name="similar")
    texts = [t for pair in PAIRS for t in pair] + OTHERS
    ids = add_documents(dataset, texts)
    run = run_all(
        run_create(pipeline=make_pipeline([{"step": "similarity_index"}]), dataset=dataset)
    )
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")
    assert run.results["similarity_index"]["documents"] == len(texts)
    return dataset, ids


def test_each_paraphrase_is_the_nearest_document_of_its_pair(indexed: Any) -> None:
    dataset, ids = indexed
    for n in range(len(PAIRS)):
        first, second = ids[2 * n], ids[2 * n + 1]
        document = Document.objects.get(pk=first)
        neighbours = similar_documents(dataset=dataset, document=document, k=3)
        assert neighbours[0].document.pk == second
        assert first not in [item.document.pk for item in neighbours]
        assert neighbours[0].score > neighbours[1].score


def test_search_embeds_the_query_and_ranks_the_matching_documents_first(indexed: Any) -> None:
    dataset, ids = indexed
    found = search_documents(dataset=dataset, query="when does the train to Lyon leave?", k=4)
    assert {found[0].document.pk, found[1].document.pk} == {ids[0], ids[1]}


def test_a_rebuild_replaces_the_index_and_takes_new_documents(indexed: Any) -> None:
    dataset, ids = indexed
    new = add_documents(dataset, ["Owls are night hunters that turn their heads far."], "new")
    pipeline = make_pipeline([{"step": "similarity_index"}], "p2")
    run_all(run_create(pipeline=pipeline, dataset=dataset))
    owl = Document.objects.get(pk=ids[len(PAIRS) * 2 + 2])
    assert similar_documents(dataset=dataset, document=owl, k=1)[0].document.pk == new[0]
    directory = index_dir(dataset_id=dataset.pk, model="sentence-transformers/all-MiniLM-L6-v2")
    assert sorted(p.name for p in directory.parent.iterdir()) == [directory.name]


@pytest.mark.django_db
def test_without_an_index_the_pages_say_how_to_build_one(admin_client: Client) -> None:
    dataset = make_dataset(name="bare")
    [pk] = add_documents(dataset, ["alone"])
    with pytest.raises(IndexMissingError, match="similarity_index"):
        search_documents(dataset=dataset, query="x")
    page = admin_client.get(f"/datasets/{dataset.slug}/documents/{pk}/similar/")
    assert "run a pipeline with the similarity_index step" in page.content.decode()
    page = admin_client.get(f"/datasets/{dataset.slug}/search/", {"q": "anything"})
    assert "run a pipeline with the similarity_index step" in page.content.decode()


def test_pages_show_neighbours_and_search_results_escaped(
    indexed: Any, admin_client: Client
) -> None:
    dataset, ids = indexed
    Document.objects.filter(pk=ids[1]).update(external_id="<b>second</b>")
    page = admin_client.get(f"/datasets/{dataset.slug}/documents/{ids[0]}/")
    assert f'hx-get="/datasets/{dataset.slug}/documents/{ids[0]}/similar/"' in page.content.decode()
    fragment = admin_client.get(
        f"/datasets/{dataset.slug}/documents/{ids[0]}/similar/", headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="similar">')
    assert "&lt;b&gt;second&lt;/b&gt;" in fragment and "<b>second" not in fragment
    page = admin_client.get(f"/datasets/{dataset.slug}/search/", {"q": "bread dough"})
    body = page.content.decode()
    assert body.index(f"neighbour-{ids[2]}") < body.index(f"neighbour-{ids[0]}")
    assert admin_client.get(f"/datasets/{dataset.slug}/search/", {"q": ""}).status_code == 200


@pytest.mark.django_db
def test_the_semantic_pipeline_exists_and_validates() -> None:
    from importlib import import_module

    from django.apps import apps

    from pipelines.models import Pipeline
    from pipelines.services.definitions import definition_snapshot

    # Transactional tests flush rows that migrations made: apply it again (idempotent).
    import_module("pipelines.migrations.0010_semantic_pipeline").add(apps, None)
    pipeline = Pipeline.objects.get(slug="semantic")
    steps = [s["step"] for s in definition_snapshot(pipeline.definition)]
    assert steps == ["semantic_dedup", "similarity_index"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_similar_documents_and_search_in_a_browser(page: Any, live_server: Any) -> None:
    from tests.curation.factories import UserFactory

    UserFactory(username="curator")
    dataset = make_dataset(name="Similar in browser")
    texts = [t for pair in PAIRS for t in pair] + OTHERS
    ids = add_documents(dataset, texts)
    run_all(run_create(pipeline=make_pipeline([{"step": "similarity_index"}]), dataset=dataset))

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/datasets/{dataset.slug}/documents/{ids[2]}/")
    # The fragment is loaded by htmx after the page.
    first = page.wait_for_selector("#similar table.neighbours tbody tr")
    assert first.get_attribute("id") == f"neighbour-{ids[3]}"

    page.goto(f"{live_server.url}/datasets/{dataset.slug}/")
    page.fill("#search-q", "what do owls do at night?")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**/search/?q=*")
    first = page.wait_for_selector("#results table.neighbours tbody tr")
    assert first.get_attribute("id") == f"neighbour-{ids[len(PAIRS) * 2 + 2]}"
