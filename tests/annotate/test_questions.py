"""Question kinds: config normalization and answer validation (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.questions import (
    HELPSTEER2_ATTRIBUTES,
    config_clean,
    pairwise_scale,
    values_clean,
)


def clean(kind: str, config: dict[str, Any], values: Any, **kw: Any) -> Any:
    return values_clean(kind, config_clean(kind, config), values, text_length=20, **kw)


def test_config_defaults_rating_to_helpsteer2_and_pairwise_to_three_strengths() -> None:
    rating = config_clean("rating", {})
    assert rating == {"attributes": HELPSTEER2_ATTRIBUTES, "scale": [0, 4]}
    pairwise = config_clean("pairwise", {})
    assert pairwise["allow_tie"] is True and len(pairwise["strengths"]) == 3
    assert config_clean("multi_label", {"labels": ["a", "b"]})["min_labels"] == 1
    assert config_clean("spans", {"labels": ["X"]})["allow_overlap"] is False
    assert config_clean("rewrite", {}) == {"source": "document", "max_chars": 100_000}


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("essay", {}, "kind 'essay' is not one of"),
        ("single_label", {}, "labels must be a non-empty list"),
        ("single_label", {"labels": ["a", "a"]}, "repeats a name"),
        ("single_label", {"labels": [str(i) for i in range(11)]}, "at most 10 (one key each)"),
        ("single_label", {"labels": ["a"], "colour": 1}, "unknown config field(s) colour"),
        ("multi_label", {"labels": ["a"], "min_labels": 2}, "0 <= min <= max <= 1"),
        ("rating", {"scale": [0, 10]}, "digit keys"),
        ("pairwise", {"strengths": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ("rewrite", {"source": "web"}, "source must be one of"),
    ],
)
def test_config_errors_name_the_field(kind: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_clean(kind, config)


def test_single_label_accepts_a_label_and_names_a_wrong_one() -> None:
    assert clean("single_label", {"labels": ["a", "b"]}, {"label": "b"}) == {"label": "b"}
    with pytest.raises(ValueError, match="label 'c' is not one of a, b"):
        clean("single_label", {"labels": ["a", "b"]}, {"label": "c"})
    with pytest.raises(ValueError, match="no answer given"):
        clean("single_label", {"labels": ["a"]}, None)
    assert clean("single_label", {"labels": ["a"]}, None, partial=True) is None


def test_multi_label_orders_labels_and_counts_them() -> None:
    config = {"labels": ["a", "b", "c"], "min_labels": 1, "max_labels": 2}
    assert clean("multi_label", config, {"labels": ["c", "a"]}) == {"labels": ["a", "c"]}
    with pytest.raises(ValueError, match="pick from 1 to 2, not 3"):
        clean("multi_label", config, {"labels": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="pick from 1 to 2, not 0"):
        clean("multi_label", config, {"labels": []})
    assert clean("multi_label", config, {"labels": []}, partial=True) is None  # no answer yet
    with pytest.raises(ValueError, match="repeats"):
        clean("multi_label", config, {"labels": ["a", "a"]})


def test_spans_check_offsets_labels_and_overlap() -> None:
    config = {"labels": ["PER", "LOC"]}
    spans = [{"start": 5, "end": 9, "label": "LOC"}, {"start": 0, "end": 4, "label": "PER"}]
    assert clean("spans", config, {"spans": spans})["spans"][0]["start"] == 0
    assert clean("spans", config, {"spans": []}) == {"spans": []}
    with pytest.raises(ValueError, match=r"span 1: start 5 and end 25 .* <= 20"):
        clean("spans", config, {"spans": [{"start": 5, "end": 25, "label": "PER"}]})
    with pytest.raises(ValueError, match="span 1: start 4 and end 4"):
        clean("spans", config, {"spans": [{"start": 4, "end": 4, "label": "PER"}]})
    with pytest.raises(ValueError, match="label 'ORG'"):
        clean("spans", config, {"spans": [{"start": 0, "end": 4, "label": "ORG"}]})
    with pytest.raises(ValueError, match="exactly start, end and label"):
        clean("spans", config, {"spans": [{"start": 0, "end": 4}]})
    overlapping = [{"start": 0, "end": 6, "label": "PER"}, {"start": 4, "end": 9, "label": "LOC"}]
    with pytest.raises(ValueError, match="0-6 and 4-9 overlap"):
        clean("spans", config, {"spans": overlapping})
    allowed = clean("spans", {**config, "allow_overlap": True}, {"spans": overlapping})
    assert len(allowed["spans"]) == 2
    with pytest.raises(ValueError, match="given twice"):
        clean("spans", {**config, "allow_overlap": True}, {"spans": overlapping[:1] * 2})
    with pytest.raises(ValueError, match="must be offsets"):
        clean("spans", config, {"spans": [{"start": True, "end": 3, "label": "PER"}]})


def test_rating_needs_every_attribute_in_the_scale() -> None:
    full = dict.fromkeys(HELPSTEER2_ATTRIBUTES, 2)
    assert clean("rating", {}, {"ratings": full}) == {"ratings": full}
    with pytest.raises(ValueError, match="rate coherence, complexity, verbosity too"):
        clean("rating", {}, {"ratings": {"helpfulness": 1, "correctness": 1}})
    assert clean("rating", {}, {"ratings": {"helpfulness": 1}}, partial=True) == {
        "ratings": {"helpfulness": 1}
    }
    with pytest.raises(ValueError, match="verbosity: score 5 is not an integer from 0 to 4"):
        clean("rating", {}, {"ratings": {**full, "verbosity": 5}})
    with pytest.raises(ValueError, match="attribute 'tone'"):
        clean("rating", {}, {"ratings": {**full, "tone": 1}})


def test_pairwise_choice_and_strength() -> None:
    assert clean("pairwise", {}, {"choice": "a", "strength": 3}) == {"choice": "a", "strength": 3}
    assert clean("pairwise", {}, {"choice": "tie"}) == {"choice": "tie", "strength": 0}
    with pytest.raises(ValueError, match="strength 4 is not an integer from 1 to 3"):
        clean("pairwise", {}, {"choice": "b", "strength": 4})
    with pytest.raises(ValueError, match="a tie is not allowed"):
        clean("pairwise", {"allow_tie": False}, {"choice": "tie"})
    with pytest.raises(ValueError, match="choice 'c'"):
        clean("pairwise", {}, {"choice": "c", "strength": 1})


def test_pairwise_scale_runs_from_a_strongest_to_b_strongest() -> None:
    scale = pairwise_scale(config_clean("pairwise", {}))
    assert [(p.key, p.value) for p in scale] == [
        ("1", "a:3"),
        ("2", "a:2"),
        ("3", "a:1"),
        ("4", "tie:0"),
        ("5", "b:1"),
        ("6", "b:2"),
        ("7", "b:3"),
    ]


def test_rewrite_text_limits() -> None:
    assert clean("rewrite", {}, {"text": "New text"}) == {"text": "New text"}
    with pytest.raises(ValueError, match="text is empty"):
        clean("rewrite", {}, {"text": "  "})
    with pytest.raises(ValueError, match="at most 3"):
        clean("rewrite", {"max_chars": 3}, {"text": "four"})
    with pytest.raises(ValueError, match="unexpected field"):
        clean("rewrite", {}, {"text": "x", "note": "y"})
