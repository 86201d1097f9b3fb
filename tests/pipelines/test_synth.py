"""Generator steps: templates, output parsing, records, lineage and the derived dataset."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from curation.models import Dataset
from curation.models import Document as DocumentRow
from pipelines.errors import PipelineDefinitionError
from pipelines.models import PipelineRun
from pipelines.services.definitions import definition_validate
from pipelines.services.runs import run_create
from pipelines.steps.base import Document
from pipelines.steps.robustness import Perturb
from pipelines.steps.synth import Paraphrase, QAGenerator
from pipelines.synthetic.perturb import degrade, incomplete, misspell
from pipelines.synthetic.prompts import (
    OutputParseError,
    PromptTemplate,
    PromptTemplateError,
    parse_records,
    template_check,
)
from tests.curation.factories import make_dataset, signal_values
from tests.pipelines.factories import make_pipeline, run_all
from tests.pipelines.scripted_backend import GARBAGE
from tests.pipelines.test_decontamination import ANSWER, eval_set  # noqa: F401  (fixture)

SCRIPTED = {"backend": "scripted", "model": "scripted-1"}


@pytest.fixture(autouse=True)
def _scripted(settings: Any) -> None:
    settings.WINNOW_STEP_MODULES = [
        *settings.WINNOW_STEP_MODULES,
        "tests.pipelines.scripted_backend",
    ]


def add_records(dataset: Dataset, rows: list[tuple[str, dict[str, Any]]]) -> list[int]:
    docs = DocumentRow.objects.bulk_create(
        DocumentRow(
            dataset=dataset,
            external_id=f"r{i}",
            text=text,
            meta=meta,
            content_hash=i,
            char_count=len(text),
            word_count=len(text.split()),
            line_count=1,
        )
        for i, (text, meta) in enumerate(rows)
    )
    return [d.pk for d in docs]


# Templates and parsing.


def test_a_template_renders_in_a_sandbox_and_its_version_follows_its_source() -> None:
    template = PromptTemplate(name="t", source="Doc: {{ text | upper }}")
    assert template.render(text="abc") == "Doc: ABC"
    assert PromptTemplate(name="t", source="Doc: {{ text }}").version != template.version
    with pytest.raises(PromptTemplateError, match="template 't'"):
        PromptTemplate(name="t", source="{{ text.__class__.__mro__ }}").render(text="x")
    with pytest.raises(PromptTemplateError, match="'missing' is undefined"):
        PromptTemplate(name="t", source="{{ missing }}").render(text="x")


def test_a_template_that_does_not_compile_is_reported_with_its_line() -> None:
    with pytest.raises(PromptTemplateError, match=r"template 'qa', line 3"):
        template_check(name="qa", source="one\ntwo\n{% if %}\n")
    with pytest.raises(PipelineDefinitionError, match=r"step 1: .*line 1"):
        definition_validate(
            [{"step": "synth_qa", "params": {"backend": SCRIPTED, "template": "{{"}}]
        )


def test_replies_parse_as_json_fenced_json_or_delimited_fields() -> None:
    fields = ("question", "answer")
    assert parse_records('[{"question": "Q?", "answer": "A"}]', fields) == [
        {"question": "Q?", "answer": "A"}
    ]
    assert parse_records('Here:\n```json\n{"Question": "Q?", "answer": " A "}\n```', fields) == [
        {"question": "Q?", "answer": "A"}
    ]
    delimited = "1. Question: Why?\nAnswer: Because.\n2. Question: How?\nAnswer: So."
    assert parse_records(delimited, fields, limit=5) == [
        {"question": "Why?", "answer": "Because."},
        {"question": "How?", "answer": "So."},
    ]
    with pytest.raises(OutputParseError, match="non-empty question, answer"):
        parse_records(GARBAGE, fields)
    with pytest.raises(OutputParseError):
        parse_records('{"question": "Q?", "answer": ""}', fields)


# Steps, called directly.


def test_qa_records_carry_lineage_and_malformed_replies_are_retried_once_then_counted() -> None:
    step = QAGenerator(backend=SCRIPTED, per_document=2, seed=8)
    batch = [
        Document(id=11, text="Lyon trains leave at nine"),
        Document(id=12, text="FLAKY owls hunt at night"),
        Document(id=13, text="MALFORMED tax forms are due"),
    ]
    result = step.derive(batch, {})

    assert result.values == {
        "synth_qa_records": [2, 2, 0],
        "synth_qa_failed": [0, 0, 1],
        "synth_qa_dropped": [0, 0, 0],
    }
    first = result.records[0]
    assert first.meta["question"] == "What about Lyon?" and first.meta["answer"] == "Lyon"
    assert first.meta["context"] == "Lyon trains leave at nine"
    assert first.external_id == f"synth_qa/{step.template.version}/s8/11/0"
    lineage = first.meta["lineage"]
    assert lineage["source_ids"] == [11]
    assert lineage["generator"] == "synth_qa" and lineage["seed"] == 8
    assert lineage["template"] == {"name": "qa", "version": step.template.version}
    assert lineage["backend"] == {"backend": "scripted", "model": "scripted-1", "style": "json"}
    assert lineage["params"]["temperature"] == 0.0 and lineage["params"]["seed"] == 8
    assert lineage["created_at"].startswith("20")
    # The retry asked again only for the two failures, with the next seed.
    calls = step.backend().calls  # type: ignore[attr-defined]
    assert [len(prompts) for prompts, _ in calls[-2:]] == [3, 2]
    assert [params.seed for _, params in calls[-2:]] == [8, 9]
    retry = calls[-1][0][0]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == GARBAGE and "could not be read" in retry[2]["content"]


def test_delimited_replies_and_rewrites_that_copy_the_source_are_dropped() -> None:
    qa = QAGenerator(backend={**SCRIPTED, "style": "delimited"})
    result = qa.derive([Document(id=1, text="Rivers flood fields")], {})
    assert [r.meta["question"] for r in result.records] == ["What about Rivers?"]

    # The scripted model answers "Cleaned: " + what follows "Document:"; this template
    # strips that prefix, so a source that has it comes back unchanged.
    template = "Rewrite the document\nDocument:\n{{ text | replace('Cleaned: ', '') }}"
    rewrite = Paraphrase(backend=SCRIPTED, template=template)
    batch = [
        Document(id=1, text="Cleaned: already clean text here", meta={"url": "u1"}),
        Document(id=2, text="x y"),
        Document(id=3, text="Some messy <b>text</b> to clean", meta={"url": "u3"}),
    ]
    result = rewrite.derive(batch, {})
    assert result.values == {
        "synth_paraphrase_records": [0, 0, 1],
        "synth_paraphrase_failed": [0, 1, 0],
        "synth_paraphrase_dropped": [1, 0, 0],
    }
    (record,) = result.records
    assert record.text == "Cleaned: Some messy <b>text</b> to clean"
    assert record.meta["url"] == "u3" and record.meta["lineage"]["source_ids"] == [3]


def test_perturbations_are_deterministic_in_the_seed() -> None:
    query = "Which station does the morning train to Lyon leave from?"
    assert misspell(query, rng=random.Random(1)) == misspell(query, rng=random.Random(1))
    assert misspell(query, rng=random.Random(1)) != query
    cut = incomplete(query, rng=random.Random(1))
    assert query.startswith(cut) and len(cut.split()) < len(query.split())
    context = "The morning train to Lyon leaves from the central station at nine. " * 5
    assert degrade(context, rng=random.Random(2)) != context
    assert degrade(context, rng=random.Random(2)) == degrade(context, rng=random.Random(2))


def test_perturb_makes_each_failsafeqa_kind_with_lineage() -> None:
    batch = [
        Document(
            id=1,
            text="t",
            meta={
                "question": "When does the Lyon train leave?",
                "answer": "nine",
                "context": "It leaves at nine.",
            },
        ),
        Document(
            id=2,
            text="t",
            meta={"question": "What do owls hunt?", "answer": "mice", "context": "Owls hunt mice."},
        ),
        Document(id=3, text="no question here"),
    ]
    step = Perturb(backend=SCRIPTED, seed=3)
    result = step.derive(batch, {})
    by_kind = {
        r.meta["perturbation"]: r for r in result.records if r.meta["lineage"]["source_ids"][0] == 1
    }
    assert set(by_kind) == {
        "misspelled",
        "incomplete",
        "register",
        "degraded",
        "empty",
        "irrelevant",
    }
    assert by_kind["empty"].meta["context"] == "" and by_kind["empty"].meta["answerable"] is False
    assert by_kind["irrelevant"].meta["context"] == "Owls hunt mice."
    assert by_kind["irrelevant"].meta["lineage"]["source_ids"] == [1, 2]
    assert by_kind["register"].meta["question"] == "hey, when does the lyon train leave?"
    assert by_kind["misspelled"].meta["original_question"] == "When does the Lyon train leave?"
    assert result.values["synth_perturb_records"] == [6, 6, 0]
    assert result.values["synth_perturb_dropped"] == [0, 0, 1]
    again = Perturb(backend=SCRIPTED, seed=3).derive(batch, {})
    assert [r.meta["question"] for r in again.records] == [
        r.meta["question"] for r in result.records
    ]
    assert Perturb(kinds=["empty"]).device == "cpu"
    with pytest.raises(ValueError, match="needs a backend"):
        Perturb(kinds=["register"])


# The runner writes records into the derived dataset.


def test_a_run_writes_records_into_a_child_dataset_once(admin_client: Client) -> None:
    source = make_dataset(name="seeds")
    ids = add_records(
        source,
        [("Lyon trains leave at nine", {}), ("MALFORMED text", {}), ("Owls hunt at night", {})],
    )
    pipeline = make_pipeline(
        [{"step": "synth_qa", "params": {"backend": SCRIPTED, "target": "seeds qa"}}]
    )
    run = run_all(run_create(pipeline=pipeline, dataset=source))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")

    target = Dataset.objects.get(name="seeds qa")
    assert target.parent == source and target.document_count == 2
    record = target.documents.get(meta__question="What about Owls?")
    lineage = record.meta["lineage"]
    assert lineage["source_ids"] == [ids[2]] and lineage["source_external_ids"] == ["r2"]
    assert lineage["source_dataset"] == {"id": source.pk, "slug": source.slug}
    assert lineage["run"] == run.pk and lineage["pipeline"] == pipeline.slug
    assert record.text == "Question: What about Owls?\nAnswer: Owls"
    assert signal_values(source.pk, "synth_qa_failed") == {ids[0]: 0, ids[1]: 1, ids[2]: 0}
    page = admin_client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert f'<a href="{target.get_absolute_url()}">seeds qa</a> (2)' in page

    again = run_all(run_create(pipeline=pipeline, dataset=source))
    assert again.status == PipelineRun.Status.SUCCEEDED
    target.refresh_from_db()
    assert target.document_count == 2 == target.documents.count()


def test_a_target_that_is_not_a_child_of_the_source_is_refused(db: None) -> None:
    source = make_dataset(name="seeds")
    make_dataset(name="elsewhere")
    pipeline = make_pipeline(
        [{"step": "synth_paraphrase", "params": {"backend": SCRIPTED, "target": "elsewhere"}}]
    )
    with pytest.raises(PipelineDefinitionError, match="not derived from 'seeds'"):
        run_create(pipeline=pipeline, dataset=source)


SEEDS = [
    "The train to Lyon leaves the central station at nine every morning.",
    "Every morning at nine, the Lyon train departs from the central station.",
    "The bus to Lyon stops at the central station and at the old harbour.",
    "Owls hunt at night and can turn their heads very far.",
    "Tax forms are due at the end of April in many countries.",
]


def test_unanswerable_pairs_a_question_with_a_retrieved_context_without_its_answer(
    db: None,
) -> None:
    seeds = make_dataset(name="seeds")
    seed_ids = add_records(seeds, [(t, {}) for t in SEEDS])
    index = run_all(
        run_create(pipeline=make_pipeline([{"step": "similarity_index"}], name="ix"), dataset=seeds)
    )
    assert index.status == PipelineRun.Status.SUCCEEDED, index.batches.values_list("error")
    qa = make_dataset(name="seeds qa", parent=seeds)
    question = "When does the train to Lyon leave the central station?"
    qa_ids = add_records(
        qa,
        [
            (
                question,
                {
                    "question": question,
                    "answer": "at nine",
                    "context": SEEDS[0],
                    "lineage": {"source_ids": [seed_ids[0]]},
                },
            ),
            ("a record without a question", {}),
        ],
    )
    params = {"index_dataset": seeds.slug, "target": "negatives"}
    pipeline = make_pipeline([{"step": "synth_unanswerable", "params": params}], name="agent")
    run = run_all(run_create(pipeline=pipeline, dataset=qa))
    assert run.status == PipelineRun.Status.SUCCEEDED, run.batches.values_list("error")

    (record,) = Dataset.objects.get(name="negatives").documents.all()
    # Its own source is skipped, and so is the paraphrase that holds the answer.
    assert record.meta["context"] == SEEDS[2]
    assert record.meta["label"] == "unanswerable" and record.meta["answerable"] is False
    assert record.meta["question"] == question and record.meta["original_answer"] == "at nine"
    lineage = record.meta["lineage"]
    assert lineage["source_ids"] == [qa_ids[0], seed_ids[2]]
    assert lineage["retrieval"]["document_id"] == seed_ids[2]
    assert signal_values(qa.pk, "synth_unanswerable_dropped") == {qa_ids[0]: 0, qa_ids[1]: 1}


def test_unanswerable_keeps_only_pairs_the_model_calls_unanswerable() -> None:
    from pipelines.steps.robustness import Unanswerable

    step = Unanswerable(backend=SCRIPTED)
    record = Document(id=1, text="q", meta={"question": "Who?", "answer": "Ann", "context": "c"})
    near = [(Document(id=5, text="ANSWERABLE: it says who"), 0.9)]
    far = [(Document(id=6, text="Nothing about people"), 0.8)]
    assert step.derive([record], {1: near}).values["synth_unanswerable_dropped"] == [1]
    kept = step.derive([record], {1: far})
    assert kept.records[0].meta["context"] == "Nothing about people"
    assert kept.records[0].meta["lineage"]["template"]["name"] == "agent-verify"


def test_near_copies_of_the_source_are_dropped_when_asked() -> None:
    text = " ".join(f"word{i}" for i in range(30))
    batch = [Document(id=1, text=text)]
    kept = Paraphrase(backend=SCRIPTED).derive(batch, {})
    assert kept.values["synth_paraphrase_records"] == [1]
    strict = Paraphrase(backend=SCRIPTED, max_source_overlap=0.5).derive(batch, {})
    assert strict.values["synth_paraphrase_dropped"] == [1] and not strict.records
    loose = Paraphrase(backend=SCRIPTED, max_source_overlap=0.99).derive(batch, {})
    assert loose.records[0].meta["source_overlap"] == pytest.approx(
        23 / 24, abs=1e-4
    )  # 24 8-grams, one with "cleaned:"


@pytest.mark.django_db
def test_a_generated_dataset_goes_through_decontamination_like_any(
    eval_set: Any,  # noqa: F811
) -> None:
    source = make_dataset(name="seeds")
    add_records(source, [(f"Notes: {ANSWER}", {}), ("Owls hunt at night in the woods", {})])
    generate = make_pipeline(
        [{"step": "synth_instruct", "params": {"backend": SCRIPTED, "target": "sft"}}]
    )
    assert run_all(run_create(pipeline=generate, dataset=source)).status == "succeeded"
    generated = Dataset.objects.get(name="sft")
    decontaminate = make_pipeline(
        [{"step": "decontamination", "params": {"eval_sets": [eval_set.slug]}}], name="decon"
    )
    assert run_all(run_create(pipeline=decontaminate, dataset=generated)).status == "succeeded"
    flags = {
        generated.documents.get(pk=pk).meta["response"]: flag
        for pk, flag in signal_values(generated.pk, "decontamination_flag").items()
    }
    assert flags == {f"Notes: {ANSWER}": True, "Owls hunt at night in the woods": False}
