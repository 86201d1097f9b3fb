"""The grape_select step: the candidate response with the highest conditional log-probability."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest

from pipelines.steps.base import Document, StepParamError
from pipelines.steps.grape import GrapeSelect
from tests.pipelines.test_perplexity import TinyLM, direct_logprob, tiny_lm

__all__ = ["tiny_lm"]  # the trained tiny GPT-2 fixture


def doc(text: str, candidates: Any = None, **meta: Any) -> Document:
    if candidates is not None:
        meta["responses"] = candidates
    return Document(id=1, text=text, meta=meta)


def candidates_for(lm: TinyLM) -> tuple[str, list[str]]:
    """An instruction, and three responses of about the same length: prose, its words
    shuffled, and random letters."""
    instruction = lm.held_out[10][:80]
    prose = " " + lm.held_out[11][:100]
    words = prose.split()
    random.Random(3).shuffle(words)
    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits + string.punctuation + "  "
    noise = " " + "".join(rng.choice(alphabet) for _ in range(40))
    return instruction, [" " + " ".join(words), noise, prose]


def direct(lm: TinyLM, instruction: str, response: str) -> tuple[float, int]:
    """(mean log-probability, tokens) of the response after instruction + separator, from one
    plain forward pass (the tokenizer adds no BOS: the scorer joins the two token lists)."""
    context = lm.tokenizer(instruction + "\n")["input_ids"]
    body = lm.tokenizer(response)["input_ids"]
    return direct_logprob(lm, context + body, len(context)), len(body)


def test_the_most_probable_candidate_is_chosen(tiny_lm: TinyLM) -> None:
    instruction, candidates = candidates_for(tiny_lm)
    expected = [direct(tiny_lm, instruction, c) for c in candidates]
    best = max(range(3), key=lambda i: expected[i][0])
    assert best == 2  # the prose: the model was trained on the same kind of text

    out = GrapeSelect(model=str(tiny_lm.path)).run([doc(instruction, candidates)])

    assert out["grape_index"] == [best]
    assert out["grape_error"] == [None]
    scores = out["grape_scores"][0]
    for got, (mean, tokens) in zip(scores, expected, strict=True):
        assert got["tokens"] == tokens
        assert got["logprob"] == pytest.approx(mean, rel=1e-4)
        assert got["total"] == pytest.approx(mean * tokens, rel=1e-4)
    assert out["grape_logprob"] == [pytest.approx(expected[best][0], rel=1e-4)]


def test_by_total_prefers_the_short_candidate_mean_would_not(tiny_lm: TinyLM) -> None:
    instruction = tiny_lm.held_out[12][:100]
    short, long = " the", " " + tiny_lm.held_out[13][:160]
    (short_mean, short_n), (long_mean, long_n) = (
        direct(tiny_lm, instruction, c) for c in (short, long)
    )
    assert short_mean * short_n > long_mean * long_n
    step = GrapeSelect(model=str(tiny_lm.path), by="total", prefix="grape_total")
    out = step.run([doc(instruction, [long, short])])
    assert out["grape_total_index"] == [1]
    assert out["grape_total_logprob"] == [pytest.approx(short_mean, rel=1e-4)]
    by_mean = GrapeSelect(model=str(tiny_lm.path)).run([doc(instruction, [long, short])])
    assert by_mean["grape_index"] == [0 if long_mean > short_mean else 1]


def test_a_tie_goes_to_the_first_candidate_and_empty_ones_are_never_chosen(
    tiny_lm: TinyLM,
) -> None:
    instruction, (shuffled, noise, prose) = candidates_for(tiny_lm)
    out = GrapeSelect(model=str(tiny_lm.path)).run(
        [doc(instruction, [noise, prose, prose]), doc(instruction, ["", noise]), doc("q", [""])]
    )
    assert out["grape_index"] == [1, 1, None]
    first, second = out["grape_scores"][0][1:]
    assert first == second
    assert out["grape_scores"][1][0] is None
    assert out["grape_scores"][2] == [None]
    assert out["grape_error"] == [None, None, None]


def test_batched_documents_score_as_one_by_one(tiny_lm: TinyLM) -> None:
    instruction, candidates = candidates_for(tiny_lm)
    batch = [
        doc(instruction, candidates),
        doc(tiny_lm.held_out[14][:80], candidates[::-1]),
        doc(instruction[:40], candidates[1:]),
    ]
    step = GrapeSelect(model=str(tiny_lm.path), batch_tokens=64)
    together = step.run(batch)
    for i, one in enumerate(batch):
        alone = step.run([one])
        assert alone["grape_index"] == [together["grape_index"][i]]
        for a, b in zip(alone["grape_scores"][0], together["grape_scores"][i], strict=True):
            assert a["logprob"] == pytest.approx(b["logprob"], rel=1e-4)


def test_long_candidates_are_scored_in_windows_after_the_instruction(tiny_lm: TinyLM) -> None:
    instruction, response = tiny_lm.held_out[15], " " + tiny_lm.held_out[16]
    body = tiny_lm.tokenizer(response)["input_ids"]
    context = tiny_lm.tokenizer(instruction + "\n")["input_ids"]
    assert len(context) + len(body) > 2 * 128
    out = GrapeSelect(model=str(tiny_lm.path)).run([doc(instruction, [response, " x"])])
    assert out["grape_scores"][0][0]["tokens"] == len(body)
    assert out["grape_index"][0] in (0, 1)


def test_documents_without_candidates_get_none_and_bad_ones_say_why(tiny_lm: TinyLM) -> None:
    step = GrapeSelect(model=str(tiny_lm.path))
    out = step.run(
        [
            doc("no candidates at all"),
            doc("an empty list", []),
            doc("a string", "just one response"),
            doc("a number among them", ["fine", 3]),
            doc("", ["a response to nothing"]),
            doc("valid", [" a", " b"]),
        ]
    )
    assert out["grape_index"][:5] == [None] * 5
    assert out["grape_scores"][:5] == [None] * 5
    assert out["grape_error"][:2] == [None, None]
    assert "meta['responses'] is a str; expected a list" in out["grape_error"][2]
    assert (
        "meta['responses'][1] is a int; every candidate must be a string" in (out["grape_error"][3])
    )
    assert "the text is empty" in out["grape_error"][4]
    assert out["grape_index"][5] in (0, 1) and out["grape_error"][5] is None


def test_the_instruction_and_candidates_can_come_from_other_meta_fields(tiny_lm: TinyLM) -> None:
    instruction, candidates = candidates_for(tiny_lm)
    step = GrapeSelect(
        model=str(tiny_lm.path), instruction_field="question", responses_field="answers"
    )
    out = step.run(
        [
            Document(id=1, text="ignored", meta={"question": instruction, "answers": candidates}),
            Document(id=2, text="ignored", meta={"answers": candidates}),
        ]
    )
    assert out["grape_index"][0] == 2
    assert out["grape_scores"][0][2]["logprob"] == pytest.approx(
        direct(tiny_lm, instruction, candidates[2])[0], rel=1e-4
    )
    assert out["grape_index"][1] is None
    assert "meta['question'] holds no instruction" in out["grape_error"][1]


def test_a_chat_template_wraps_the_instruction(tiny_lm: TinyLM, tmp_path: Path) -> None:
    import shutil

    from transformers import AutoTokenizer

    path = tmp_path / "chat"
    shutil.copytree(tiny_lm.path, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = (
        "{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    tokenizer.save_pretrained(path)
    instruction, candidates = candidates_for(tiny_lm)
    step = GrapeSelect(model=str(path), chat_template=True, separator="")
    out = step.run([doc(instruction, candidates)])

    context = tiny_lm.tokenizer(f"User: {instruction}\nAssistant:")["input_ids"]
    for got, response in zip(out["grape_scores"][0], candidates, strict=True):
        body = tiny_lm.tokenizer(response)["input_ids"]
        expected = direct_logprob(tiny_lm, context + body, len(context))
        assert got["logprob"] == pytest.approx(expected, rel=1e-4)


def test_a_model_without_a_chat_template_is_refused_for_chat_formatting(tiny_lm: TinyLM) -> None:
    step = GrapeSelect(model=str(tiny_lm.path), chat_template=True)
    with pytest.raises(StepParamError, match="'chat_template'.*has no chat template"):
        step.run([doc("q", [" a"])])


def test_bad_parameters_name_the_step_and_field(tiny_lm: TinyLM) -> None:
    with pytest.raises(StepParamError, match="step 'grape_select', parameter 'model'"):
        GrapeSelect()
    with pytest.raises(StepParamError, match="step 'grape_select', parameter 'stride'"):
        GrapeSelect(model=str(tiny_lm.path), max_length=16, stride=32)
    with pytest.raises(StepParamError, match="'prefix'"):
        GrapeSelect(model=str(tiny_lm.path), prefix="GRAPE")
    with pytest.raises(StepParamError, match="'by'"):
        GrapeSelect(model=str(tiny_lm.path), by="median")
    with pytest.raises(StepParamError, match="'responses_field'"):
        GrapeSelect(model=str(tiny_lm.path), responses_field=" ")
    with pytest.raises(StepParamError, match="unknown parameter"):
        GrapeSelect(model=str(tiny_lm.path), prompt_field="x")
