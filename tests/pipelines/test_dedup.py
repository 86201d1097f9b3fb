from __future__ import annotations

import pytest
from django.db import connection

from curation.models import DuplicateGroup, DuplicateMember, Signal
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_batch_execute, run_create
from pipelines.steps.base import Document
from pipelines.steps.dedup import ExactDedup
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = pytest.mark.django_db

TEXTS = [
    "The quick brown fox.",  # 0: group A, first
    "the   QUICK brown\nfox.",  # 1: group A (case, whitespace)
    "Something else entirely, and longer than the rest of them.",  # 2: unique
    "The quick brown fox!",  # 3: group A only when punctuation is ignored
    "Version 2 of the text",  # 4: group B
    "version 2 of the text",  # 5: group B, same length
]


def signal_values(dataset_id: int, name: str) -> dict[int, object]:
    column = Signal.objects.get(name=name).column_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT document_id, {column} FROM curation_signal_row WHERE dataset_id = %s",
            [dataset_id],
        )
        return dict(cursor.fetchall())


def run_all(run: PipelineRun) -> PipelineRun:
    for batch_id in run.batches.order_by("id").values_list("pk", flat=True):
        run_batch_execute(batch_id=batch_id)
    run.refresh_from_db()
    return run


def test_normalisation_follows_the_parameters() -> None:
    docs = [Document(id=i, text=t) for i, t in enumerate(TEXTS)]
    plain = ExactDedup().run(docs)["exact_dedup_hash"]
    assert plain[0] == plain[1] != plain[3]
    loose = ExactDedup(strip_punctuation=True).run(docs)["exact_dedup_hash"]
    assert loose[0] == loose[1] == loose[3]
    strict = ExactDedup(lowercase=False).run(docs)["exact_dedup_hash"]
    assert strict[0] != strict[1]


def test_exact_dedup_groups_the_dataset_keeps_one_and_reruns_cleanly() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, TEXTS)
    pipeline = make_pipeline([{"step": "exact_dedup"}], batch_size=4)
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))

    assert run.status == PipelineRun.Status.SUCCEEDED
    assert run.batches.filter(phase=RunBatch.Phase.CORPUS, status="done").count() == 1
    groups = {
        g.pk: sorted(g.members.values_list("document_id", "is_representative"))
        for g in DuplicateGroup.objects.filter(dataset=dataset, kind="exact")
    }
    assert sorted(groups.values()) == sorted(
        [[(ids[0], True), (ids[1], False)], [(ids[4], True), (ids[5], False)]]
    )
    assert signal_values(dataset.pk, "exact_dedup_size") == {
        ids[0]: 2,
        ids[1]: 2,
        ids[2]: 1,
        ids[3]: 1,
        ids[4]: 2,
        ids[5]: 2,
    }
    keep = signal_values(dataset.pk, "exact_dedup_keep")
    assert [keep[i] for i in ids] == [True, False, True, True, True, False]

    again = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert again.status == PipelineRun.Status.SUCCEEDED
    # Each run keeps its own groups; a rerun of the same run would replace them.
    assert DuplicateGroup.objects.filter(dataset=dataset).count() == 4
    assert DuplicateMember.objects.filter(group__dataset=dataset).count() == 8


def test_keep_longest_picks_the_longest_member() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, ["Same words here", "same   words   here  "])
    pipeline = make_pipeline([{"step": "exact_dedup", "params": {"keep": "longest"}}])
    run_all(run_create(pipeline=pipeline, dataset=dataset))
    keep = signal_values(dataset.pk, "exact_dedup_keep")
    assert (keep[ids[0]], keep[ids[1]]) == (False, True)


def test_the_corpus_phase_waits_for_the_document_batches() -> None:
    dataset = make_dataset()
    add_documents(dataset, TEXTS)
    run = run_create(
        pipeline=make_pipeline([{"step": "exact_dedup"}], batch_size=2), dataset=dataset
    )
    corpus = run.batches.get(phase=RunBatch.Phase.CORPUS)
    assert run_batch_execute(batch_id=corpus.pk) is None
    corpus.refresh_from_db()
    assert corpus.status == RunBatch.Status.PENDING
