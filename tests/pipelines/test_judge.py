"""The llm_judge step: reply parsing, re-asking, panel pooling, parameters.

Judges here are scripted backends (a deterministic test double answering from a script,
malformed replies included); test_judge_models.py runs real models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from pipelines.generation.base import Backend, Generation, GenerationError, GenerationParams, Prompt
from pipelines.services.definitions import definition_snapshot, definition_validate
from pipelines.steps.base import Document, StepParamError
from pipelines.steps.judge import Judge, LLMJudge
from pipelines.steps.judging import HELPSTEER2_ATTRIBUTES, ReplyError, Scale, aggregate, pool

ZERO_FIVE = Scale(0, 5)
HS2 = Scale(0, 4, HELPSTEER2_ATTRIBUTES)


class ScriptedBackend(Backend):
    """Answers each prompt from a script: ``script[key][n]`` for the n-th ask about the document
    whose text holds ``key`` (re-asks are counted from the assistant turns in the prompt)."""

    name = "scripted"

    def __init__(self, script: dict[str, list[str]], *, fail: str | None = None) -> None:
        super().__init__("scripted-model")
        self.script = script
        self.fail = fail
        self.calls: list[list[Prompt]] = []

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        if self.fail:
            raise GenerationError(self.fail)
        self.calls.append(list(prompts))
        out = []
        for prompt in prompts:
            first = prompt if isinstance(prompt, str) else prompt[0]["content"]
            attempt = (
                first.count("could not be used")
                if isinstance(prompt, str)
                else sum(m["role"] == "assistant" for m in prompt)
            )
            key = next(k for k in self.script if k in first)
            replies = self.script[key]
            out.append(Generation(replies[min(attempt, len(replies) - 1)], 10, 2, "stop"))
        return out


class ScriptedJudge(LLMJudge):
    """The step with each judge's backend taken from ``panel`` instead of the registry."""

    panel: dict[str, ScriptedBackend] = {}

    def backend(self, judge: Judge) -> Backend:
        return self.panel[judge.name]


def judges(*names: str, backend: str = "http") -> list[dict[str, Any]]:
    extra = {"base_url": "http://127.0.0.1:9/v1"} if backend == "http" else {}
    return [{"name": n, "backend": backend, "model": f"{n}-model", **extra} for n in names]


def make_step(panel: dict[str, ScriptedBackend], **params: Any) -> ScriptedJudge:
    step = ScriptedJudge(judges=judges(*panel), **params)
    step.panel = panel
    return step


def docs(*texts: str, meta: dict[str, Any] | None = None) -> list[Document]:
    return [Document(id=i + 1, text=t, meta=dict(meta or {})) for i, t in enumerate(texts)]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("3", 3.0),
        (" 4.\n", 4.0),
        ("2.5", 2.5),
        ("Educational score: **2**", 2.0),
        ("The extract teaches fractions. Points: 1, 2 and 3 apply.\nScore: 3", 3.0),
        ("I would give it 4/5.", 4.0),
        ("It earns 1 out of 5", 1.0),
        ("0", 0.0),
    ],
)
def test_a_number_reply_is_read(reply: str, expected: float) -> None:
    assert ZERO_FIVE.parse(reply) == {"score": expected}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("excellent!", "no number"),
        ("between 2 and 3", "several numbers"),
        ("7", "7 is outside 0 to 5"),
        ("-1", "-1 is outside 0 to 5"),
        ("Score: 5.5", "5.5 is outside"),
    ],
)
def test_an_unreadable_number_reply_says_why(reply: str, error: str) -> None:
    with pytest.raises(ReplyError, match=error):
        ZERO_FIVE.parse(reply)


def test_a_json_reply_is_read_per_attribute() -> None:
    reply = (
        'Here you go:\n```json\n{"helpfulness": 3, "correctness": "4", "coherence": 4,'
        ' "complexity": 1.5, "verbosity": 0, "note": "ignored"}\n```'
    )
    assert HS2.parse(reply) == {
        "helpfulness": 3.0,
        "correctness": 4.0,
        "coherence": 4.0,
        "complexity": 1.5,
        "verbosity": 0.0,
    }
    assert HS2.parse(
        '{"helpfulness":1,"correctness":1,"coherence":1,"complexity":1,"verbosity":1}'
    ) == dict.fromkeys(HELPSTEER2_ATTRIBUTES, 1.0)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("helpfulness 3, correctness 4", "no JSON object"),
        ('{"helpfulness": 3,', "not valid"),
        ('{"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1}', "'verbosity'"),
        (
            '{"helpfulness": 9, "correctness": 4, "coherence": true, "complexity": 1,'
            ' "verbosity": "lots"}',
            "'helpfulness' 9 is outside 0 to 4; True is not a number; 'lots' is not a number",
        ),
    ],
)
def test_an_unreadable_json_reply_names_the_attribute(reply: str, error: str) -> None:
    with pytest.raises(ReplyError, match=error.replace("(", r"\(")):
        HS2.parse(reply)


def test_mean_majority_and_min_pool_a_panel() -> None:
    assert aggregate([1, 2, 4], "mean") == pytest.approx(7 / 3)
    assert aggregate([3, 1, 3], "majority") == 3.0
    assert aggregate([4, 2, 3], "majority") == 2.0  # no majority: the lowest tied score
    assert aggregate([4, 4, 2, 2, 5], "majority") == 2.0
    assert aggregate([4, 2, 3], "min") == 2.0
    assert aggregate([], "mean") is None
    assert pool([None, None], ZERO_FIVE, "mean") is None
    assert pool([{"score": 2.0}, None, {"score": 4.0}], ZERO_FIVE, "mean") == {"score": 3.0}


@pytest.mark.parametrize(
    ("how", "expected"), [("mean", [3.0, 2.0]), ("majority", [4.0, 1.0]), ("min", [1.0, 1.0])]
)
def test_a_panel_is_pooled_and_each_judges_scores_kept(how: str, expected: list[float]) -> None:
    panel = {
        "a": ScriptedBackend({"FIRST": ["4"], "SECOND": ["Score: 1"]}),
        "b": ScriptedBackend({"FIRST": ["1"], "SECOND": ["2"]}),
        "c": ScriptedBackend({"FIRST": ["4"], "SECOND": ["3"]}),
    }
    out = make_step(panel, aggregation=how).run(docs("FIRST doc", "SECOND doc"))

    assert list(out) == ["judge_score", "judge_per_judge", "judge_malformed", "judge_failed"]
    assert out["judge_score"] == expected
    assert out["judge_per_judge"] == [
        {"a": 4.0, "b": 1.0, "c": 4.0},
        {"a": 1.0, "b": 2.0, "c": 3.0},
    ]
    assert out["judge_malformed"] == [0, 0]
    assert out["judge_failed"] == [0, 0]
    assert all(len(b.calls) == 1 and len(b.calls[0]) == 2 for b in panel.values())


def test_an_unreadable_reply_is_asked_again_with_the_reason() -> None:
    backend = ScriptedBackend({"ALPHA": ["Great text!", "Score: 9", "4"], "BETA": ["2"]})
    out = make_step({"solo": backend}, max_retries=2).run(docs("ALPHA text", "BETA text"))

    assert out["judge_score"] == [4.0, 2.0]
    assert out["judge_malformed"] == [2, 0]
    assert out["judge_failed"] == [0, 0]
    # Only the unreadable prompt goes back, each time with the judge's reply and the reason.
    assert [len(c) for c in backend.calls] == [2, 1, 1]
    second, third = backend.calls[1][0], backend.calls[2][0]
    assert isinstance(second, list) and isinstance(third, list)
    assert second[1] == {"role": "assistant", "content": "Great text!"}
    assert "no number was found" in second[2]["content"]
    assert "one number from 0 to 5" in second[2]["content"]
    assert third[3] == {"role": "assistant", "content": "Score: 9"}
    assert "9 is outside 0 to 5" in third[4]["content"]


def test_a_judge_unreadable_after_its_retries_gives_no_score() -> None:
    panel = {
        "good": ScriptedBackend({"DOC": ["3"]}),
        "bad": ScriptedBackend({"DOC": ["no idea", "still no idea"]}),
    }
    out = make_step(panel, max_retries=1).run(docs("DOC one"))
    assert out["judge_score"] == [3.0]
    assert out["judge_per_judge"] == [{"good": 3.0, "bad": None}]
    assert out["judge_malformed"] == [2]
    assert out["judge_failed"] == [1]
    assert len(panel["bad"].calls) == 2


def test_a_document_no_judge_scored_gets_none_not_a_number() -> None:
    panel = {
        "x": ScriptedBackend({"DOC": ["?"], "FINE": ["5"]}),
        "y": ScriptedBackend({"DOC": ["ten"], "FINE": ["4"]}),
    }
    out = make_step(panel, max_retries=0).run(docs("DOC", "FINE"))
    assert out["judge_score"] == [None, 4.5]
    assert out["judge_per_judge"][0] == {"x": None, "y": None}
    assert out["judge_malformed"] == [2, 0]
    assert out["judge_failed"] == [2, 0]


def test_helpsteer2_attributes_are_pooled_one_signal_each() -> None:
    first = '{"helpfulness": 4, "correctness": 3, "coherence": 4, "complexity": 2, "verbosity": 1}'
    second = '{"helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 0, "verbosity": 3}'
    panel = {
        "p": ScriptedBackend({"resp": [first]}),
        "q": ScriptedBackend({"resp": ['{"helpfulness": 2}', second]}),
    }
    step = make_step(panel, attributes=list(HELPSTEER2_ATTRIBUTES), maximum=4, prefix="hs2")
    out = step.run(docs("resp", meta={"prompt": "Explain tides."}))

    assert [s.name for s in step.signals()] == [
        *(f"hs2_{a}" for a in HELPSTEER2_ATTRIBUTES),
        "hs2_per_judge",
        "hs2_malformed",
        "hs2_failed",
    ]
    assert [out[f"hs2_{a}"][0] for a in HELPSTEER2_ATTRIBUTES] == [3.0, 3.0, 4.0, 1.0, 2.0]
    assert out["hs2_per_judge"][0]["q"]["complexity"] == 0.0
    assert out["hs2_malformed"] == [1]
    # The default attribute rubric shows the prompt, the definitions and the JSON format.
    asked = panel["p"].calls[0][0][0]["content"]  # type: ignore[index]
    assert "Explain tides." in asked and "inclusion of all pertinent facts" in asked
    assert "JSON object with the keys helpfulness, correctness" in asked


def test_a_custom_rubric_sees_text_and_meta_and_plain_prompts_work() -> None:
    backend = ScriptedBackend({"body": ["nonsense", "2"]})
    step = make_step(
        {"j": backend},
        template="Topic {{ meta.topic }}; rate from {{ minimum }} to {{ maximum }}: {{ text }}\n",
        minimum=1,
        maximum=3,
        chat=False,
        max_chars=7,
    )
    out = step.run(docs("body that is cut", meta={"topic": "tides"}))
    assert out["judge_score"] == [2.0]
    first, second = backend.calls[0][0], backend.calls[1][0]
    assert first == "Topic tides; rate from 1 to 3: body th\n"
    assert isinstance(second, str) and second.startswith(first + "nonsense\n\nYour reply")


def test_a_template_that_cannot_render_names_the_document() -> None:
    step = make_step({"j": ScriptedBackend({"x": ["1"]})}, template="{{ meta.missing }} {{ text }}")
    with pytest.raises(StepParamError, match="document 1: .*missing"):
        step.run(docs("x"))


def test_a_failing_backend_fails_the_batch_naming_the_judge() -> None:
    panel = {"ok": ScriptedBackend({"d": ["1"]}), "down": ScriptedBackend({}, fail="refused")}
    with pytest.raises(GenerationError, match=r"judge 'down' \(http, down-model\): refused"):
        make_step(panel).run(docs("d"))


def test_an_empty_batch_asks_nobody() -> None:
    backend = ScriptedBackend({})
    out = make_step({"j": backend}).run([])
    assert out == {
        "judge_score": [],
        "judge_per_judge": [],
        "judge_malformed": [],
        "judge_failed": [],
    }
    assert backend.calls == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "'judges': give at least one judge"),
        ({"judges": ["qwen"]}, "judge 1 must be an object"),
        ({"judges": [{"backend": "http", "model": "m"}]}, "judge 1 needs a 'name'"),
        ({"judges": judges("a", "a")}, "two judges are named 'a'"),
        ({"judges": judges("a", backend="ollama")}, "judge 'a': key 'backend' must be one of"),
        ({"judges": [{"name": "a", "backend": "vllm", "model": " "}]}, "key 'model' must be"),
        ({"judges": [{"name": "a", "backend": "http", "model": "m"}]}, "'base_url' is required"),
        ({"judges": [{**judges("a")[0], "temperature": 1}]}, "unknown key 'temperature'"),
        ({"judges": judges("a"), "prefix": "Judge"}, "'prefix'"),
        ({"judges": judges("a"), "attributes": ["Helpful"]}, "'attributes': 'Helpful'"),
        ({"judges": judges("a"), "attributes": ["failed"]}, "a name this step uses"),
        ({"judges": judges("a"), "attributes": ["x", "x"]}, "repeats a name"),
        ({"judges": judges("a"), "minimum": 5, "maximum": 5}, "'maximum'"),
        ({"judges": judges("a"), "aggregation": "median"}, "'median' is not one of"),
        ({"judges": judges("a"), "max_retries": -1}, "below the minimum"),
        ({"judges": judges("a"), "template": "ok\n{% if %}"}, "'template'.*line 2"),
        ({"judges": judges("a"), "temperature": -1.0}, "'temperature'"),
        ({"judges": judges("a"), "colour": "red"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_with_the_field_named(
    params: dict[str, Any], error: str
) -> None:
    with pytest.raises(StepParamError, match=error):
        LLMJudge(**params)


def test_the_device_follows_the_panel() -> None:
    assert LLMJudge(judges=judges("a", "b")).device == "cpu"
    mixed = [*judges("a"), {"name": "local", "backend": "transformers", "model": "m"}]
    assert LLMJudge(judges=mixed).device == "gpu"
    assert LLMJudge(judges=judges("v", backend="vllm")).device == "gpu"


def test_pipeline_definitions_accept_two_judges_with_their_own_prefixes() -> None:
    definition = definition_validate(
        [
            {"step": "llm_judge", "params": {"judges": judges("a", "b")}},
            {
                "step": "llm_judge",
                "params": {
                    "judges": judges("c", backend="transformers"),
                    "attributes": list(HELPSTEER2_ATTRIBUTES),
                    "maximum": 4,
                    "prefix": "hs2",
                },
            },
        ]
    )
    assert definition[0]["params"]["aggregation"] == "mean"
    snapshot = definition_snapshot(definition)
    assert [s["device"] for s in snapshot] == ["cpu", "gpu"]
    assert snapshot[1]["signals"][0]["name"] == "hs2_helpfulness"
    with pytest.raises(Exception, match="step 2 .*writes signal 'judge_score'"):
        definition_validate(
            [
                {"step": "llm_judge", "params": {"judges": judges("a")}},
                {"step": "llm_judge", "params": {"judges": judges("b")}},
            ]
        )


@pytest.mark.django_db
def test_the_pipeline_editor_lists_both_steps_and_names_a_bad_judge(client: Any) -> None:
    from tests.curation.factories import UserFactory
    from tests.pipelines.factories import make_pipeline

    client.force_login(UserFactory.create())
    pipeline = make_pipeline([{"step": "test_text_length"}], name="Judged")
    url = f"/pipelines/{pipeline.slug}/edit/"
    page = client.get(url).content.decode()
    assert 'id="step-llm_judge"' in page and 'id="step-grape_select"' in page

    bad = [{"step": "llm_judge", "params": {"judges": [{"name": "j", "backend": "http"}]}}]
    answer = client.post(url, {"batch_size": 10, "definition": json.dumps(bad)}).content.decode()
    assert "judge &#x27;j&#x27;: key &#x27;model&#x27; must be" in answer
    good = [
        {"step": "llm_judge", "params": {"judges": judges("j"), "aggregation": "majority"}},
        {"step": "grape_select", "params": {"model": "some/model"}},
    ]
    assert client.post(url, {"batch_size": 10, "definition": json.dumps(good)}).status_code == 302
    pipeline.refresh_from_db()
    assert [s["step"] for s in pipeline.definition] == ["llm_judge", "grape_select"]
    assert pipeline.definition[0]["params"]["judges"] == judges("j")
