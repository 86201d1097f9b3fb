"""source_dedup: documents that copy a document of the source (or other) datasets."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.urls import reverse

from curation.models import Dataset
from pipelines.models import PipelineRun
from pipelines.services import overlap
from pipelines.services.pairs import jaccard
from pipelines.services.runs import run_create
from pipelines.steps.overlap import SourceDedup
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all

pytestmark = pytest.mark.django_db

rng = random.Random(7)
VOCABULARY = [f"w{i}" for i in range(3000)]


def words(count: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(count))


def edited(text: str, edits: int) -> str:
    tokens = text.split()
    for position in rng.sample(range(len(tokens)), edits):
        tokens[position] = f"edit{rng.randint(0, 10**9)}"
    return " ".join(tokens)


def similarity(a: str, b: str, step: SourceDedup | None = None) -> float:
    minhash = (step or SourceDedup()).minhash()
    return jaccard(minhash.shingles(a), minhash.shingles(b))


def derived(parent: Dataset, name: str = "generated") -> Dataset:
    return make_dataset(name=name, parent=parent)


def run_source_dedup(dataset: Dataset, **params: Any) -> PipelineRun:
    pipeline = make_pipeline([{"step": "source_dedup", "params": params}], name=f"sd{params}")
    return run_all(run_create(pipeline=pipeline, dataset=dataset))


def test_copies_of_the_parent_are_flagged_with_their_match_and_similarity() -> None:
    source = make_dataset(name="seeds")
    seeds = [words(200) for _ in range(40)]
    seed_ids = add_documents(source, seeds, prefix="s")
    generated = derived(source)
    texts = [
        "  ".join(seeds[3].upper().split()),  # 0: the same text, case and spacing aside
        edited(seeds[5], 2),  # 1: a near copy
        edited(seeds[9], 60),  # 2: a loose rewrite, well under the threshold
        words(150),  # 3: new
        "",  # 4: empty
    ]
    ids = add_documents(generated, texts, prefix="g")
    assert similarity(texts[1], seeds[5]) > 0.9 and similarity(texts[2], seeds[9]) < 0.4

    run = run_source_dedup(generated)

    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")
    flags = signal_values(generated.pk, "source_dedup_flag")
    assert flags == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False, ids[4]: False}
    sims = signal_values(generated.pk, "source_dedup_similarity")
    assert sims[ids[0]] == 1.0
    assert sims[ids[1]] == pytest.approx(similarity(texts[1], seeds[5]))
    assert sims[ids[3]] is None and sims[ids[4]] is None
    matches: dict[int, Any] = {
        pk: None if v is None else json.loads(v)
        for pk, v in signal_values(generated.pk, "source_dedup_match").items()
    }
    assert matches[ids[0]] == {"dataset": "seeds", "external_id": "s3", "id": seed_ids[3]}
    assert matches[ids[1]]["external_id"] == "s5" and matches[ids[3]] is None
    assert run.results["source_dedup"] == {
        "against": [{"name": "seeds", "slug": "seeds"}],
        "documents": 5,
        "candidates": len([s for s in sims.values() if s is not None]),
        "flagged": 2,
        "threshold": 0.7,
    }
    # Nothing is written to the datasets compared with.
    assert signal_values(source.pk, "source_dedup_flag") == {}


def test_flags_follow_exact_jaccard_over_planted_copies_and_a_rerun_clears_old_values() -> None:
    source = make_dataset(name="corpus")
    seeds = [words(rng.randint(120, 300)) for _ in range(150)]
    add_documents(source, seeds, prefix="s")
    generated = derived(source)
    picks = rng.sample(range(len(seeds)), 60)
    texts = [edited(seeds[p], rng.choice([1, 3, 6, 12, 25, 60])) for p in picks]
    texts += [words(200) for _ in range(20)]
    ids = add_documents(generated, texts, prefix="g")
    truth = {
        pk: max(similarity(text, seed) for seed in seeds)
        for pk, text in zip(ids, texts, strict=True)
    }

    run_source_dedup(generated, threshold=0.8)

    flags = signal_values(generated.pk, "source_dedup_flag")
    sims = signal_values(generated.pk, "source_dedup_similarity")
    # Precision is exact (every flag is verified); recall at Jaccard >= 0.85 is
    # 1 - (1 - 0.85**8)**14 > 0.99 per pair, and here, with the seed fixed, complete.
    assert all(truth[pk] >= 0.8 for pk, flag in flags.items() if flag)
    assert all(flags[pk] for pk, value in truth.items() if value >= 0.85)
    assert all(sims[pk] == pytest.approx(truth[pk]) for pk, flag in flags.items() if flag)
    assert sum(value >= 0.85 for value in truth.values()) >= 15
    assert any(0.5 < value < 0.8 for value in truth.values())

    # A rerun after the source lost the copied documents: the old flags go.
    source.documents.all().delete()
    run_source_dedup(generated, threshold=0.8, seed=1)
    assert set(signal_values(generated.pk, "source_dedup_flag").values()) == {False}


def test_against_names_other_datasets_and_boilerplate_buckets_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlap, "CANDIDATES_PER_BUCKET", 3)
    other = make_dataset(name="eval")
    boilerplate = words(120)
    # Ten near copies of one text share most buckets: only three per bucket are
    # candidates, and the exact copy (the lowest id) is among them.
    add_documents(other, [boilerplate] + [edited(boilerplate, 1) for _ in range(10)], prefix="e")
    unrelated = make_dataset(name="web")
    ids = add_documents(unrelated, [boilerplate, words(100)], prefix="w")

    run = run_source_dedup(unrelated, against=["eval"])

    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")
    assert signal_values(unrelated.pk, "source_dedup_flag") == {ids[0]: True, ids[1]: False}
    match = json.loads(signal_values(unrelated.pk, "source_dedup_match")[ids[0]])
    assert match["external_id"] == "e0"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "was not generated from another dataset; name the datasets to compare with"),
        ({"against": ["nope"]}, "no dataset with slug 'nope'"),
        ({"against": ["alone"]}, "'against' names the dataset itself"),
    ],
)
def test_a_phase_without_datasets_to_compare_fails_saying_what_to_do(
    params: dict[str, Any], message: str
) -> None:
    alone = make_dataset(name="alone")
    add_documents(alone, ["some words here"])
    run = run_source_dedup(alone, **params)
    assert run.status == PipelineRun.Status.FAILED
    assert message in run.batches.get(phase="corpus").error


def test_the_run_page_reports_the_overlap(client: Any, admin_user: Any) -> None:
    source = make_dataset(name="seeds")
    seeds = [words(80) for _ in range(3)]
    add_documents(source, seeds, prefix="s")
    generated = derived(source)
    add_documents(generated, [seeds[0], words(80)], prefix="g")
    run = run_source_dedup(generated)
    client.force_login(admin_user)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert 'id="source-dedup"' in page
    assert "1 of 2 documents duplicate a document of" in page
    assert reverse("dataset_detail", args=["seeds"]) in page
