from __future__ import annotations

import pytest

from curation.models import DuplicateGroup, DuplicateMember
from pipelines.errors import PipelineDefinitionError
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_batch_execute, run_create
from pipelines.steps.base import Document
from pipelines.steps.dedup import ExactDedup
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import add_documents, make_pipeline, run_all

pytestmark = pytest.mark.django_db

TEXTS = [
    "The quick brown fox.",  # 0: group A, first
    "the   QUICK brown\nfox.",  # 1: group A (case, whitespace)
    "Something else entirely, and longer than the rest of them.",  # 2: unique
    "The quick brown fox!",  # 3: group A only when punctuation is ignored
    "Version 2 of the text",  # 4: group B
    "version 2 of the text",  # 5: group B, same length
]


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


def planted_near_duplicates(seed: int = 7) -> tuple[list[str], list[tuple[int, int, float]]]:
    """Distinct base texts, plus edited copies at Jaccard 0.5-0.95 (word 5-gram shingles)."""
    import random

    from pipelines.steps.dedup import MinHashDedup

    step = MinHashDedup()
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(20_000)]
    texts = [
        " ".join(rng.choice(vocabulary) for _ in range(rng.randint(150, 400))) for _ in range(120)
    ]
    planted = []
    for original in range(80):
        words = texts[original].split()
        edits = rng.choice([1, 2, 3, 5, 8, 12, 20])
        for position in rng.sample(range(len(words)), edits):
            words[position] = f"edit{rng.randint(0, 10**9)}"
        texts.append(" ".join(words))
        a, b = step.shingles(texts[original]), step.shingles(texts[-1])
        planted.append((original, len(texts) - 1, len(a & b) / len(a | b)))
    return texts, planted


@pytest.mark.parametrize("verify_chunk", [4000, 7])
def test_minhash_finds_planted_near_duplicates_with_high_recall_and_precision(
    verify_chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with verification cut into chunks of 7 documents: bounded memory, same answer."""
    from pipelines.services import pairs

    monkeypatch.setattr(pairs, "VERIFY_DOCS", verify_chunk)
    texts, planted = planted_near_duplicates()
    assert min(j for *_, j in planted) < 0.6 and max(j for *_, j in planted) > 0.9
    dataset = make_dataset()
    ids = add_documents(dataset, texts)
    run = run_all(run_create(pipeline=make_pipeline([{"step": "minhash_dedup"}]), dataset=dataset))
    assert run.status == PipelineRun.Status.SUCCEEDED

    found: set[tuple[int, int]] = set()
    for group in DuplicateGroup.objects.filter(dataset=dataset, kind="minhash"):
        members = sorted(group.members.values_list("document_id", flat=True))
        found.update((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
    truth = {(ids[a], ids[b]): j for a, b, j in planted}
    high = [pair for pair, j in truth.items() if j >= 0.8]
    recall = sum(pair in found for pair in high) / len(high)
    precision = sum(pair in truth for pair in found) / len(found)
    assert len(high) >= 20
    assert recall >= 0.9, recall
    assert precision >= 0.95, precision

    keep = signal_values(dataset.pk, "minhash_dedup_keep")
    similarity = signal_values(dataset.pk, "minhash_dedup_similarity")
    for a, b in found:
        assert keep[a] is True and keep[b] is False  # the first imported is kept
        value = similarity[b]
        assert isinstance(value, float) and value >= 0.7
    assert keep[ids[100]] is True and signal_values(dataset.pk, "minhash_dedup_size")[ids[100]] == 1


def test_keep_best_signal_keeps_the_member_with_the_best_value() -> None:
    dataset = make_dataset()
    ids = add_documents(dataset, ["same text x", "Same text x", "same  TEXT x", "other"])
    pipeline = make_pipeline(
        [
            {"step": "test_text_length"},
            {"step": "exact_dedup", "params": {"keep": "best_signal", "keep_signal": "test_chars"}},
        ]
    )
    run_all(run_create(pipeline=pipeline, dataset=dataset))
    keep = signal_values(dataset.pk, "exact_dedup_keep")
    # test_chars is the length: "same  TEXT x" (12 chars) beats the 11-char ones.
    assert [keep[i] for i in ids] == [False, False, True, True]


def test_keep_best_signal_needs_a_signal_that_exists() -> None:
    with pytest.raises(PipelineDefinitionError, match="keep_signal"):
        make_pipeline([{"step": "minhash_dedup", "params": {"keep": "best_signal"}}])
    dataset = make_dataset()
    add_documents(dataset, ["a b c d e f", "a b c d e f"])
    pipeline = make_pipeline(
        [{"step": "exact_dedup", "params": {"keep": "best_signal", "keep_signal": "nope"}}],
        name="p2",
    )
    run = run_all(run_create(pipeline=pipeline, dataset=dataset))
    assert run.status == PipelineRun.Status.FAILED
    assert "keep_signal 'nope' is not a signal" in run.batches.get(phase="corpus").error


def test_minhash_keep_lowest_signal() -> None:
    texts, planted = planted_near_duplicates()
    dataset = make_dataset()
    ids = add_documents(dataset, texts)
    pipeline = make_pipeline(
        [
            {"step": "test_text_length"},
            {
                "step": "minhash_dedup",
                "params": {"keep": "best_signal", "keep_signal": "test_chars", "keep_lowest": True},
            },
        ]
    )
    run_all(run_create(pipeline=pipeline, dataset=dataset))
    for group in DuplicateGroup.objects.filter(dataset=dataset, kind="minhash"):
        members = list(group.members.values_list("document_id", "is_representative"))
        lengths = {d: len(texts[ids.index(d)]) for d, _ in members}
        kept = [d for d, rep in members if rep]
        assert len(kept) == 1 and lengths[kept[0]] == min(lengths.values())


def test_the_exact_phase_notes_its_signal_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The explorer's kept signal columns are read again after it (explorer/columns.py)."""
    from pipelines.services.corpus import exact

    noted: list[int] = []
    real = exact.signals_changed

    def spy(cursor: object, dataset_id: int) -> None:
        noted.append(dataset_id)
        real(cursor, dataset_id)

    monkeypatch.setattr(exact, "signals_changed", spy)
    dataset = make_dataset()
    add_documents(dataset, TEXTS)
    run_all(run_create(pipeline=make_pipeline([{"step": "exact_dedup"}]), dataset=dataset))
    assert noted == [dataset.pk]
