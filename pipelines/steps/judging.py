"""What an LLM judge's reply means: scales, reply parsing, re-asking, and pooling a panel's votes.

Pure computation for the ``llm_judge`` step: no Django, no model. A judge answers a rubric
with a number (one score on a scale) or a JSON object (one score per attribute, as HelpSteer2
rates helpfulness, correctness, coherence, complexity and verbosity from 0 to 4). A reply that
cannot be read is re-asked with the reason appended; a panel's scores are pooled by mean,
majority vote or minimum (the PoLL method pools several small judges this way).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.generation.base import ChatMessage, Prompt

HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
AGGREGATIONS = ("mean", "majority", "min")

_NUMBER = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
# "Score: 4", "Educational score: **3**", "the score is 2".
_LABELLED = re.compile(rf"score\s*(?:is|[:=])?\s*[*_`]*\s*({_NUMBER})", re.IGNORECASE)
# "4/5", "4 / 5", "4 out of 5": the denominator is the scale, not a second answer.
_FRACTION = re.compile(rf"({_NUMBER})\s*(?:/|out of)\s*{_NUMBER}", re.IGNORECASE)
_NUMBERS = re.compile(_NUMBER)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)

Scores = dict[str, float]


class ReplyError(ValueError):
    """A judge's reply cannot be read as a score; the message says why, for the re-ask."""


@dataclass(frozen=True)
class Scale:
    """What a judge must answer: one number, or (with ``attributes``) a JSON object of numbers,
    each from ``minimum`` to ``maximum``. Parsed scores are keyed by attribute; a single number
    is keyed by ``"score"``."""

    minimum: float
    maximum: float
    attributes: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.attributes or ("score",)

    def describe_range(self) -> str:
        return f"{_fmt(self.minimum)} to {_fmt(self.maximum)}"

    def instruction(self) -> str:
        """The format line that a re-ask repeats."""
        if not self.attributes:
            return f"Reply with only the score: one number from {self.describe_range()}."
        example = ", ".join(f'"{a}": {_fmt(self.minimum)}' for a in self.attributes)
        return (
            f"Reply with only a JSON object with the keys {', '.join(self.attributes)}, each a "
            f"number from {self.describe_range()}, like {{{example}}}."
        )

    def parse(self, reply: str) -> Scores:
        """The scores in ``reply``; raises ReplyError saying what is wrong with it."""
        if not reply.strip():
            raise ReplyError("the reply is empty")
        if self.attributes:
            return self._parse_object(reply)
        return {"score": self._check("the score", _one_number(reply))}

    def _parse_object(self, reply: str) -> Scores:
        fenced = _FENCE.search(reply)
        body = fenced.group(1) if fenced else reply
        start = body.find("{")
        if start < 0:
            raise ReplyError("no JSON object was found in the reply")
        try:
            data, _ = json.JSONDecoder().raw_decode(body[start:])
        except json.JSONDecodeError as exc:
            raise ReplyError(
                f"the JSON object is not valid ({exc.msg}, column {exc.colno})"
            ) from exc
        if not isinstance(data, dict):
            raise ReplyError("the reply is JSON but not an object")
        problems = []
        scores: Scores = {}
        for attribute in self.attributes:
            if attribute not in data:
                problems.append(f"the attribute {attribute!r} is missing")
                continue
            try:
                scores[attribute] = self._check(repr(attribute), _as_number(data[attribute]))
            except ReplyError as exc:
                problems.append(str(exc))
        if problems:
            raise ReplyError("; ".join(problems))
        return scores

    def _check(self, what: str, value: float) -> float:
        if not self.minimum <= value <= self.maximum:
            raise ReplyError(f"{what} {_fmt(value)} is outside {self.describe_range()}")
        return value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _as_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ReplyError(f"{value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ReplyError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ReplyError(f"{value!r} is not a finite number")
    return number


def _one_number(reply: str) -> float:
    """The number a reply gives: all of it, a labelled score (the last), or its only number."""
    text = reply.strip().rstrip(".").strip("*_` ")
    if re.fullmatch(_NUMBER, text):
        return float(text)
    labelled = _LABELLED.findall(reply)
    if labelled:
        return float(labelled[-1])
    found = {float(n) for n in _NUMBERS.findall(_FRACTION.sub(r"\1", reply))}
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ReplyError("no number was found in the reply")
    shown = ", ".join(_fmt(n) for n in sorted(found)[:5])
    raise ReplyError(f"the reply holds several numbers ({shown}) and no 'Score: N' line")


def reask(prompt: Prompt, reply: str, error: str, scale: Scale) -> Prompt:
    """``prompt`` extended with the judge's reply and a request to answer again, saying why."""
    request = f"Your reply could not be used: {error}. {scale.instruction()}"
    if isinstance(prompt, str):
        return f"{prompt}{reply}\n\n{request}\n"
    messages: list[ChatMessage] = [
        *prompt,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": request},
    ]
    return messages


def aggregate(values: Sequence[float], how: str) -> float | None:
    """Pool one attribute's scores from several judges; None when no judge gave one.

    ``majority`` is the most frequent score; a tie goes to the lowest tied score, so that
    a split panel never rates higher than one of its majorities would.
    """
    if not values:
        return None
    if how == "mean":
        return float(statistics.fmean(values))
    if how == "min":
        return float(min(values))
    if how == "majority":
        counts = Counter(values)
        top = max(counts.values())
        return float(min(v for v, c in counts.items() if c == top))
    raise ValueError(f"unknown aggregation {how!r}: use one of {list(AGGREGATIONS)}")


def pool(votes: Sequence[Scores | None], scale: Scale, how: str) -> Scores | None:
    """Each attribute pooled over the judges that gave a score; None when none did."""
    given = [v for v in votes if v is not None]
    if not given:
        return None
    pooled: Scores = {}
    for key in scale.keys:
        value = aggregate([v[key] for v in given], how)
        assert value is not None
        pooled[key] = value
    return pooled
