"""The six question kinds: their config and the values an answer may hold (pure functions).

``config_clean`` normalizes a question's config when a project is made;
``values_clean`` checks one answer against it. Both raise ``ValueError`` with a message
naming the offending field; the services add the question key.

Number keys pick answers in the browser, so a question offers at most ten choices
(keys 1-9 and 0) and a rating scale fits in the digits 0-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
SPANS = "spans"
RATING = "rating"
PAIRWISE = "pairwise"
REWRITE = "rewrite"
KINDS = (SINGLE_LABEL, MULTI_LABEL, SPANS, RATING, PAIRWISE, REWRITE)

MAX_CHOICES = 10
MAX_SPANS = 1000
HELPSTEER2_ATTRIBUTES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
DEFAULT_STRENGTHS = ["slightly better", "better", "much better"]
REWRITE_SOURCES = ("document", "blank")

_ALLOWED_KEYS = {
    SINGLE_LABEL: {"labels"},
    MULTI_LABEL: {"labels", "min_labels", "max_labels"},
    SPANS: {"labels", "allow_overlap"},
    RATING: {"attributes", "scale"},
    PAIRWISE: {"strengths", "allow_tie"},
    REWRITE: {"source", "max_chars"},
}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: Any, field: str, *, limit: int = MAX_CHOICES) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field} must be a non-empty list of names")
    if len(value) > limit:
        raise ValueError(f"{field} has {len(value)} entries; at most {limit} (one key each)")
    names = []
    for name in value:
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError(f"{field}: {name!r} is not a name of 1-100 characters")
        names.append(name.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"{field} repeats a name")
    return names


def config_clean(kind: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The question's config with defaults filled in; ``ValueError`` names what is wrong."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    config = dict(config or {})
    unknown = set(config) - _ALLOWED_KEYS[kind]
    if unknown:
        raise ValueError(
            f"unknown config field(s) {', '.join(sorted(unknown))} for {kind}; "
            f"allowed: {', '.join(sorted(_ALLOWED_KEYS[kind]))}"
        )
    if kind in (SINGLE_LABEL, MULTI_LABEL, SPANS):
        config["labels"] = _names(config.get("labels"), "labels")
    if kind == MULTI_LABEL:
        count = len(config["labels"])
        low, high = config.get("min_labels", 1), config.get("max_labels", count)
        if not (_is_int(low) and _is_int(high) and 0 <= low <= high <= count):
            raise ValueError(f"min_labels/max_labels must satisfy 0 <= min <= max <= {count}")
        config["min_labels"], config["max_labels"] = low, high
    if kind == SPANS:
        config["allow_overlap"] = bool(config.get("allow_overlap", False))
    if kind == RATING:
        config["attributes"] = _names(config.get("attributes", HELPSTEER2_ATTRIBUTES), "attributes")
        scale = config.get("scale", [0, 4])
        if not (
            isinstance(scale, list)
            and len(scale) == 2
            and all(_is_int(v) for v in scale)
            and 0 <= scale[0] < scale[1] <= 9
        ):
            raise ValueError("scale must be [low, high] with 0 <= low < high <= 9 (digit keys)")
        config["scale"] = scale
    if kind == PAIRWISE:
        config["strengths"] = _names(
            config.get("strengths", DEFAULT_STRENGTHS), "strengths", limit=4
        )
        config["allow_tie"] = bool(config.get("allow_tie", True))
    if kind == REWRITE:
        source = config.get("source", "document")
        if source not in REWRITE_SOURCES:
            raise ValueError(f"source must be one of {', '.join(REWRITE_SOURCES)}")
        max_chars = config.get("max_chars", 100_000)
        if not _is_int(max_chars) or not 1 <= max_chars <= 1_000_000:
            raise ValueError("max_chars must be an integer from 1 to 1000000")
        config["source"], config["max_chars"] = source, max_chars
    return config


def values_clean(
    kind: str,
    config: dict[str, Any],
    values: Any,
    *,
    text_length: int,
    partial: bool = False,
) -> dict[str, Any] | None:
    """Check one answer; returns it normalized, or None for "no answer" when ``partial``.

    ``partial`` is for drafts: an incomplete answer is kept, a wrong one is still refused.
    ``text_length`` is the length of the item's text in characters (code points), which
    span offsets index.
    """
    if values is None or values == {}:
        if partial:
            return None
        raise ValueError("no answer given")
    if not isinstance(values, dict):
        raise ValueError("the answer must be an object")
    cleaner = _CLEANERS[kind]
    return cleaner(config, values, text_length, partial)


def _only(values: dict[str, Any], *fields: str) -> None:
    extra = set(values) - set(fields)
    if extra:
        raise ValueError(f"unexpected field(s) {', '.join(sorted(extra))}")


def _single(config: dict[str, Any], values: dict[str, Any], _: int, partial: bool) -> dict | None:
    _only(values, "label")
    label = values.get("label")
    if label not in config["labels"]:
        raise ValueError(f"label {label!r} is not one of {', '.join(config['labels'])}")
    return {"label": label}


def _multi(config: dict[str, Any], values: dict[str, Any], _: int, partial: bool) -> dict | None:
    _only(values, "labels")
    labels = values.get("labels")
    if not isinstance(labels, list):
        raise ValueError("labels must be a list")
    for label in labels:
        if label not in config["labels"]:
            raise ValueError(f"label {label!r} is not one of {', '.join(config['labels'])}")
    if len(set(labels)) != len(labels):
        raise ValueError("labels repeats a label")
    if partial and not labels:
        return None
    low, high = config["min_labels"], config["max_labels"]
    if not partial and not low <= len(labels) <= high:
        raise ValueError(f"labels: pick from {low} to {high}, not {len(labels)}")
    # Stored in the question's label order, whatever order they were clicked in.
    return {"labels": [label for label in config["labels"] if label in labels]}


def _spans(
    config: dict[str, Any], values: dict[str, Any], length: int, partial: bool
) -> dict | None:
    _only(values, "spans")
    spans = values.get("spans")
    if not isinstance(spans, list):
        raise ValueError("spans must be a list")
    if len(spans) > MAX_SPANS:
        raise ValueError(f"spans: at most {MAX_SPANS}")
    cleaned = []
    for n, span in enumerate(spans, 1):
        if not isinstance(span, dict) or set(span) != {"start", "end", "label"}:
            raise ValueError(f"span {n} must have exactly start, end and label")
        start, end, label = span["start"], span["end"], span["label"]
        if not (_is_int(start) and _is_int(end) and 0 <= start < end <= length):
            raise ValueError(
                f"span {n}: start {start!r} and end {end!r} must be offsets with "
                f"0 <= start < end <= {length} (the text's length)"
            )
        if label not in config["labels"]:
            raise ValueError(
                f"span {n}: label {label!r} is not one of {', '.join(config['labels'])}"
            )
        cleaned.append({"start": start, "end": end, "label": label})
    if partial and not cleaned:
        return None
    cleaned.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    for before, after in zip(cleaned, cleaned[1:], strict=False):
        if before == after:
            raise ValueError(f"spans: {before['start']}-{before['end']} is given twice")
        if not config["allow_overlap"] and after["start"] < before["end"]:
            raise ValueError(
                f"spans {before['start']}-{before['end']} and {after['start']}-{after['end']} "
                "overlap, which this question does not allow"
            )
    return {"spans": cleaned}


def _rating(config: dict[str, Any], values: dict[str, Any], _: int, partial: bool) -> dict | None:
    _only(values, "ratings")
    ratings = values.get("ratings")
    if not isinstance(ratings, dict):
        raise ValueError("ratings must be an object of attribute -> score")
    low, high = config["scale"]
    for attribute, score in ratings.items():
        if attribute not in config["attributes"]:
            raise ValueError(
                f"attribute {attribute!r} is not one of {', '.join(config['attributes'])}"
            )
        if not _is_int(score) or not low <= score <= high:
            raise ValueError(f"{attribute}: score {score!r} is not an integer from {low} to {high}")
    missing = [a for a in config["attributes"] if a not in ratings]
    if missing and not partial:
        raise ValueError(f"rate {', '.join(missing)} too")
    return {"ratings": {a: ratings[a] for a in config["attributes"] if a in ratings}}


def _pairwise(config: dict[str, Any], values: dict[str, Any], _: int, partial: bool) -> dict | None:
    _only(values, "choice", "strength")
    choice, strength = values.get("choice"), values.get("strength")
    if choice == "tie":
        if not config["allow_tie"]:
            raise ValueError("choice: a tie is not allowed here; pick a or b")
        if strength not in (None, 0):
            raise ValueError("strength must be 0 (or left out) for a tie")
        return {"choice": "tie", "strength": 0}
    if choice not in ("a", "b"):
        raise ValueError(f"choice {choice!r} is not a, b{' or tie' if config['allow_tie'] else ''}")
    top = len(config["strengths"])
    if not _is_int(strength) or not 1 <= strength <= top:
        raise ValueError(f"strength {strength!r} is not an integer from 1 to {top}")
    return {"choice": choice, "strength": strength}


def _rewrite(config: dict[str, Any], values: dict[str, Any], _: int, partial: bool) -> dict | None:
    _only(values, "text")
    text = values.get("text")
    if not isinstance(text, str):
        raise ValueError("text must be a string")
    if len(text) > config["max_chars"]:
        raise ValueError(f"text has {len(text)} characters; at most {config['max_chars']}")
    if not text.strip() and not partial:
        raise ValueError("text is empty; write the rewrite")
    return {"text": text}


_CLEANERS = {
    SINGLE_LABEL: _single,
    MULTI_LABEL: _multi,
    SPANS: _spans,
    RATING: _rating,
    PAIRWISE: _pairwise,
    REWRITE: _rewrite,
}


@dataclass(frozen=True)
class ScalePoint:
    """One point of the pairwise keyboard scale: key 1 = A much better ... B much better."""

    key: str
    choice: str
    strength: int
    label: str

    @property
    def value(self) -> str:
        """The form value: ``choice:strength``."""
        return f"{self.choice}:{self.strength}"


def pairwise_scale(config: dict[str, Any]) -> list[ScalePoint]:
    """The pairwise answers in key order: A strongest first, the tie, then B weakest first."""
    strengths = config["strengths"]
    points = [ScalePoint("", "a", s, f"A {strengths[s - 1]}") for s in range(len(strengths), 0, -1)]
    if config["allow_tie"]:
        points.append(ScalePoint("", "tie", 0, "About the same"))
    points += [
        ScalePoint("", "b", s, f"B {strengths[s - 1]}") for s in range(1, len(strengths) + 1)
    ]
    return [
        ScalePoint(str(n), p.choice, p.strength, p.label) for n, p in enumerate(points, start=1)
    ]


def choice_keys(count: int) -> list[str]:
    """The keys of ``count`` choices: 1-9, then 0 for the tenth."""
    return [str((n + 1) % 10) for n in range(count)]
