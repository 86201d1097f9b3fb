from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from curation.errors import PermanentError
from curation.models import Document, DuplicateGroup, DuplicateMember
from curation.services.vectors import vector_dir, vector_shards
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.corpus import semantic_dedup_phase
from pipelines.services.runs import run_create
from pipelines.steps.base import Document as StepDocument
from pipelines.steps.base import StepParamError
from pipelines.steps.semantic import (
    Pairs,
    SemanticDedup,
    cluster_count,
    clusters,
    components,
    duplicate_pairs,
    eps_table,
    kept_members,
    kmeans,
    semdedup,
)
from tests.curation.factories import UserFactory, make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """torch's OpenMP threads spin while they wait: on a busy two-core machine every
    small per-cluster operation then costs ~100x. One thread keeps these tests fast."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _vectors_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path


def clustered_vectors(
    n: int = 3000, dim: int = 64, centres: int = 30, duplicates: int = 300, seed: int = 0
) -> np.ndarray:
    """Unit float16 vectors around ``centres`` topics, plus near-copies at cosine ~0.9-0.999."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, dim))
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    base = centre[rng.integers(0, centres, n - duplicates)]
    base = base + rng.standard_normal(base.shape) * (1.5 / np.sqrt(dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    source = rng.integers(0, n - duplicates, duplicates)
    noise = rng.uniform(0.05, 0.45, (duplicates, 1))
    copies = base[source] + rng.standard_normal((duplicates, dim)) * (noise / np.sqrt(dim))
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    vectors = np.concatenate([base, copies])[rng.permutation(n)]
    return vectors.astype(np.float16)


def brute_force_pairs(vectors: np.ndarray, threshold: float) -> dict[tuple[int, int], float]:
    x = vectors.astype(np.float32)
    sims = x @ x.T
    i, j = np.triu_indices(len(x), 1)
    hit = sims[i, j] >= threshold
    pairs = zip(i[hit].tolist(), j[hit].tolist(), strict=True)
    return dict(zip(pairs, sims[i, j][hit].tolist(), strict=True))


def found(pairs: Pairs) -> dict[tuple[int, int], float]:
    keys = zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)
    return dict(zip(keys, pairs.sim.tolist(), strict=True))


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_pairs_inside_clusters_find_most_brute_force_pairs_with_exact_cosines(
    backend: str,
) -> None:
    vectors = clustered_vectors()
    result = semdedup(vectors, clusters=15, eps=0.05, backend=backend, seed=1)
    assert result.clusters == 15 and len(set(result.assignment.tolist())) == 15
    for eps in (0.05, 0.2):
        truth = brute_force_pairs(vectors, 1 - eps)
        ours = found(result.pairs.at(1 - eps))
        assert len(truth) >= 150
        recall = len(ours.keys() & truth.keys()) / len(truth)
        assert recall >= 0.9, (eps, recall)
        assert ours.keys() <= truth.keys()  # precision 1.0: every pair is a real one
        assert all(abs(ours[pair] - truth[pair]) < 1e-5 for pair in ours)


def test_eps_table_counts_groups_and_removals_and_grows_with_eps() -> None:
    vectors = clustered_vectors(seed=2)
    result = semdedup(vectors, clusters=10, eps=0.05, eps_report=(0.2, 0.01, 0.1))
    assert [row["eps"] for row in result.table] == [0.01, 0.05, 0.1, 0.2]
    removed = [row["removed"] for row in result.table]
    assert removed == sorted(removed) and removed[0] < removed[-1]
    at_eps = next(row for row in result.table if row["eps"] == 0.05)
    groups = result.groups()
    assert at_eps["groups"] == len(groups) > 20
    assert at_eps["removed"] == sum(len(g) - 1 for g in groups)
    for group in groups:
        assert len(set(result.assignment[group].tolist())) == 1  # pairs stay inside a cluster


def test_groups_are_transitive() -> None:
    # a~b and b~c above 0.95, a~c below it: one group {a, b, c}; d alone.
    pairs = Pairs(
        np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0.97, 0.96, 0.9], np.float32), 0.8
    )
    labels = components(4, pairs.at(0.95).i, pairs.at(0.95).j)
    assert labels.tolist() == [0, 0, 0, 3]
    assert eps_table(4, pairs, [0.01, 0.05]) == [
        {"eps": 0.01, "removed": 0, "groups": 0},
        {"eps": 0.05, "removed": 2, "groups": 1},
    ]


def test_components_match_a_plain_union_find_on_a_random_graph() -> None:
    rng = np.random.default_rng(5)
    n = 500
    i, j = rng.integers(0, n, 400), rng.integers(0, n, 400)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    assert components(n, i, j).tolist() == [find(x) for x in range(n)]


def test_huge_cluster_is_cut_into_blocks_and_neighbours_are_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vectors = clustered_vectors(n=600, centres=3, duplicates=100, seed=3)
    assignment = np.zeros(len(vectors), dtype=np.int64)  # one cluster of 600
    whole = duplicate_pairs(vectors, assignment, 0.9)
    monkeypatch.setitem(clusters.BLOCK_ELEMENTS, "cpu", 1000)  # one row or so per block
    blocked = duplicate_pairs(vectors, assignment, 0.9)
    assert found(blocked) == found(whole) and len(whole) > 50

    rng = np.random.default_rng(0)
    copies = np.repeat(rng.standard_normal((1, 32)), 60, axis=0) + rng.normal(0, 1e-3, (60, 32))
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    capped = duplicate_pairs(copies, np.zeros(60, dtype=np.int64), 0.95, max_neighbors=4)
    assert len(capped) <= 60 * 4 < 60 * 59 // 2
    assert set(components(60, capped.i, capped.j).tolist()) == {0}


def test_cluster_count_is_about_one_per_thousand_within_one_and_n() -> None:
    assert [cluster_count(n) for n in (0, 1, 300, 1499, 1_000_000)] == [0, 1, 1, 1, 1000]
    assert cluster_count(50, 80) == 50 and cluster_count(5000, 7) == 7
    with pytest.raises(ValueError, match="1 <= k <= n"):
        kmeans(clustered_vectors(n=20, duplicates=0), 21)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_kmeans_recovers_well_separated_clusters(backend: str) -> None:
    rng = np.random.default_rng(4)
    centres = np.eye(16)[:4]
    truth = rng.integers(0, 4, 800)
    vectors = centres[truth] + rng.normal(0, 0.05, (800, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids, assignment = kmeans(vectors.astype(np.float32), 8, seed=0, backend=backend)
    assert centroids.shape == (8, 16)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-4)
    # Every found cluster holds one true cluster's points only (8 found, 4 true).
    pairs = set(zip(assignment.tolist(), truth.tolist(), strict=True))
    assert len({found for found, _ in pairs}) == len(pairs) >= 4


def test_keep_rules_pick_first_nearest_or_farthest_from_the_centroid() -> None:
    labels = np.array([0, 0, 0, 3, 4, 4])
    score = np.array([0.5, 0.9, 0.2, 0.7, 0.6, 0.6], dtype=np.float32)
    assert kept_members(labels, rule="first").tolist() == [0, 0, 0, 3, 4, 4]
    assert kept_members(labels, rule="centroid_nearest", score=score).tolist() == [
        1,
        1,
        1,
        3,
        4,
        4,
    ]
    assert kept_members(labels, rule="centroid_farthest", score=score).tolist() == [
        2,
        2,
        2,
        3,
        4,
        4,
    ]


def test_step_params_are_checked() -> None:
    step = SemanticDedup(eps_report=[0.2, 0.01, 0.2])
    assert step.config["eps_report"] == (0.01, 0.2)
    assert step.config["keep"] == "centroid_farthest" and step.device == "gpu"
    assert step.vector_model() == "sentence-transformers/all-MiniLM-L6-v2"
    assert [s.name for s in step.corpus_signals()] == [
        "semantic_dedup_size",
        "semantic_dedup_keep",
        "semantic_dedup_similarity",
        "semantic_dedup_cluster",
    ]
    with pytest.raises(StepParamError, match=r"\[0, 1\]"):
        SemanticDedup(eps_report=(0.1, 2.0))
    with pytest.raises(StepParamError, match="keep_signal"):
        SemanticDedup(keep="best_signal")
    with pytest.raises(StepParamError, match="not one of"):
        SemanticDedup(keep="random")


def pydoc_paragraphs(count: int) -> list[str]:
    """Distinct English paragraphs of the Python Language Reference (shipped with Python)."""
    from pydoc_data.topics import topics

    paragraphs: list[str] = []
    for key in sorted(topics):
        for paragraph in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(paragraph.split())
            if 200 <= len(text) <= 500 and text[0].isupper() and ">>>" not in text:
                if text not in paragraphs:
                    paragraphs.append(text)
    return paragraphs[:: max(1, len(paragraphs) // count)][:count]


SYNONYMS = {
    "object": "item",
    "must": "has to",
    "may": "might",
    "value": "result",
    "called": "invoked",
}


def paraphrase(text: str, kind: int) -> str:
    if kind == 0:
        return re.sub(r"[^\w\s]", "", text).lower()
    if kind == 1:
        return " ".join(SYNONYMS.get(word, word) for word in text.split())
    if kind == 2:
        sentences = re.split(r"(?<=[.!?]) ", text)
        return " ".join(sentences[:-1]) if len(sentences) > 1 else text[: len(text) * 3 // 4]
    return "In other words: " + text


def members_by_group(dataset_id: int) -> list[list[tuple[int, bool]]]:
    return sorted(
        sorted(g.members.values_list("document_id", "is_representative"))
        for g in DuplicateGroup.objects.filter(dataset_id=dataset_id, kind="semantic")
    )


@pytest.mark.django_db
def test_semantic_dedup_run_embeds_groups_paraphrases_and_reruns_cleanly(client: Client) -> None:
    """The real runner and the packaged all-MiniLM-L6-v2 on ~300 documents, on the CPU."""
    rng = random.Random(3)
    texts = pydoc_paragraphs(200)
    for base in range(0, 200, 4):
        texts.extend(paraphrase(texts[base], kind) for kind in rng.sample(range(4), 2))
    dataset = make_dataset()
    ids = add_documents(dataset, texts)
    params = {"device": "cpu", "clusters": 4, "keep": "first"}
    pipeline = make_pipeline([{"step": "semantic_dedup", "params": params}], batch_size=100)
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.exclude(error="").first()

    model = SemanticDedup().vector_model()
    stored = {
        int(i): vector
        for shard_ids, shard in vector_shards(dataset_id=dataset.pk, model=model)
        for i, vector in zip(shard_ids, np.asarray(shard), strict=True)
    }
    assert sorted(stored) == ids
    vectors = np.stack([stored[i] for i in ids])
    truth = {(ids[a], ids[b]) for a, b in brute_force_pairs(vectors, 0.95)}
    grouped = {
        (a, b)
        for group in members_by_group(dataset.pk)
        for x, (a, _) in enumerate(group)
        for b, _ in group[x + 1 :]
    }
    assert len(truth) >= 40
    assert len(truth & grouped) / len(truth) >= 0.9

    summary = run.results["semantic_dedup"]
    assert summary["documents"] == 300 and summary["clusters"] == 4 and summary["eps_used"] == 0.05
    at_eps = next(row for row in summary["eps"] if row["eps"] == 0.05)
    groups = members_by_group(dataset.pk)
    assert at_eps["groups"] == len(groups)
    keep = signal_values(dataset.pk, "semantic_dedup_keep")
    size = signal_values(dataset.pk, "semantic_dedup_size")
    similarity = signal_values(dataset.pk, "semantic_dedup_similarity")
    cluster = signal_values(dataset.pk, "semantic_dedup_cluster")
    assert at_eps["removed"] == sum(not keep[i] for i in ids)
    assert set(cluster.values()) == {0, 1, 2, 3}
    for group in groups:
        (kept,) = [d for d, representative in group if representative]
        assert kept == group[0][0] and keep[kept] is True and similarity[kept] == 1.0
        assert {size[d] for d, _ in group} == {len(group)}
        assert len({cluster[d] for d, _ in group}) == 1
        for d, _ in group[1:]:
            assert keep[d] is False and 0.5 < similarity[d] < 1.0001
            assert similarity[d] == pytest.approx(
                float(vectors[ids.index(d)].astype(np.float32) @ vectors[ids.index(kept)]), abs=1e-4
            )

    # The corpus phase again: the same groups, replaced rather than added.
    spec = run.definition[0]
    semantic_dedup_phase(run, spec)
    assert members_by_group(dataset.pk) == groups
    assert DuplicateMember.objects.filter(group__dataset=dataset).count() == sum(map(len, groups))

    # A new run embeds nothing again: every document has its vector.
    shards = sorted(vector_dir(dataset_id=dataset.pk, model=model).iterdir())
    again = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert again.status == PipelineRun.Status.SUCCEEDED
    assert sorted(vector_dir(dataset_id=dataset.pk, model=model).iterdir()) == shards

    client.force_login(UserFactory.create())
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Semantic dedup: documents removed by eps" in page
    chosen = re.search(r'<tr class="chosen" aria-current="true">(.*?)</tr>', page, re.S)
    assert chosen and re.findall(r"<td[^>]*>(.*?)</td>", chosen[1])[:2] == [
        "<strong>0.05</strong> (used)",
        str(at_eps["groups"]),
    ]


def planted_embed(self: SemanticDedup, batch: list[StepDocument]) -> np.ndarray:
    """Vectors by the text's first word: documents starting alike are duplicates."""
    directions = {"alpha": 0, "beta": 1, "gamma": 2}
    out = np.zeros((len(batch), 8), dtype=np.float32)
    for row, document in enumerate(batch):
        out[row, directions[document.text.split()[0]]] = 1.0
        out[row, 7] = 0.002 * len(document.text)  # distinct, yet cosine > 0.99
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ({"keep": "longest"}, "alpha is the longest text of all"),
        ({"keep": "first"}, "alpha one"),
        (
            {"keep": "best_signal", "keep_signal": "test_chars", "keep_lowest": True},
            "alpha one",
        ),
    ],
)
def test_keep_rules_that_read_the_database(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, Any], kept: str
) -> None:
    monkeypatch.setattr(SemanticDedup, "embed", planted_embed)
    texts = ["alpha one", "beta", "alpha is the longest text of all", "alpha two!", "gamma"]
    dataset = make_dataset()
    ids = add_documents(dataset, texts)
    steps: list[dict[str, Any]] = [
        {"step": "test_text_length"},
        {"step": "semantic_dedup", "params": params},
    ]
    run = run_all(run_create(pipeline=make_pipeline(steps), dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert members_by_group(dataset.pk) == [
        [(ids[0], texts[0] == kept), (ids[2], texts[2] == kept), (ids[3], texts[3] == kept)]
    ]
    keep = signal_values(dataset.pk, "semantic_dedup_keep")
    assert [keep[i] for i in ids] == [t == kept or not t.startswith("alpha") for t in texts]


@pytest.mark.django_db
def test_documents_without_a_vector_stop_the_phase_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SemanticDedup, "embed", planted_embed)
    dataset = make_dataset()
    add_documents(dataset, ["alpha a", "alpha b"])
    run = run_all(run_create(pipeline=make_pipeline([{"step": "semantic_dedup"}]), dataset=dataset))
    assert run.batches.get(phase=RunBatch.Phase.CORPUS).status == RunBatch.Status.DONE
    late = Document.objects.create(
        dataset=dataset,
        external_id="late",
        text="beta late",
        content_hash=9,
        char_count=9,
        word_count=2,
        line_count=1,
    )
    with pytest.raises(
        PermanentError, match=rf"1 of 3 documents have no stored vector.*\[{late.pk}\].*new run"
    ):
        semantic_dedup_phase(run, run.definition[0])


@pytest.mark.django_db
def test_run_page_shows_the_eps_table_with_the_used_eps_marked(client: Client) -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a"])
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    client.force_login(UserFactory.create())
    assert "Semantic dedup" not in client.get(f"/runs/{run.pk}/").content.decode()
    run.results = {
        "semantic_dedup": {
            "clusters": 12,
            "documents": 2000,
            "eps": [
                {"eps": 0.01, "removed": 10, "groups": 9},
                {"eps": 0.05, "removed": 400, "groups": 150},
                {"eps": 0.1, "removed": 1200, "groups": 300},
            ],
            "eps_used": 0.05,
        }
    }
    run.save(update_fields=["results"])
    page = client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    table = page[page.index('id="semantic-eps"') :]
    assert table.count("<tr") == 4 and table.count('aria-current="true"') == 1
    chosen = re.search(r'<tr class="chosen" aria-current="true">(.*?)</tr>', table, re.S)
    assert chosen and "<strong>0.05</strong> (used)" in chosen[1] and "400" in chosen[1]
    assert "1,200" in table and "60%" in table and "2,000 documents in 12" in page
