"""Recipes: rule semantics, percentiles, the waterfall, dedup with verdicts, provenance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from django.db import connection

from curation.models import DuplicateVerdict, Signal
from curation.recipe_selectors import document_provenance
from curation.services.duplicates import duplicate_verdict_set
from curation.services.recipes import (
    RecipeRuleError,
    recipe_create,
    recipe_kept_query,
    recipe_preview,
    recipe_version_save,
)
from curation.services.signals import signal_define, signal_rows_write
from tests.curation.factories import UserFactory
from tests.curation.recipe_factories import World, build_world, representative

pytestmark = pytest.mark.django_db


def py_pass(rule: dict[str, Any], value: Any, threshold: Any = None) -> bool:
    op = rule["op"]
    if op == "is_null":
        return value is None
    if op == "not_null":
        return value is not None
    if value is None:
        return False
    t: Any = rule.get("value") if threshold is None else threshold
    return {
        "==": lambda: value == t,
        "!=": lambda: value != t,
        ">=": lambda: value >= t,
        "<=": lambda: value <= t,
        ">": lambda: value > t,
        "<": lambda: value < t,
        "in": lambda: value in t,
    }[op]()


def py_dedup_removed(world: World, kinds: list[str]) -> set[int]:
    """Non-representative members of the newest run's groups, minus verdict exemptions."""
    removed = set()
    for kind in kinds:
        for group in world.groups[kind]:
            rep = representative(group)
            verdicts = list(DuplicateVerdict.objects.filter(group=group))
            whole = [v.verdict for v in verdicts if v.document_a is None]
            for m in group.members.exclude(is_representative=True):
                pair = [
                    v.verdict
                    for v in verdicts
                    if v.document_a is not None
                    and {v.document_a, v.document_b} == {rep, m.document_id}
                ]
                verdict = pair[0] if pair else (whole[0] if whole else None)
                if verdict != "not_duplicate":
                    removed.add(m.document_id)
    return removed


def py_kept(
    world: World,
    rules: list[dict[str, Any]],
    kinds: list[str],
    thresholds: dict[int, Any] | None = None,
) -> set[int]:
    thresholds = thresholds or {}
    removed = py_dedup_removed(world, kinds)
    return {
        d
        for d in world.ids
        if all(
            py_pass(r, world.values[r["signal"]].get(d), thresholds.get(i))
            for i, r in enumerate(rules)
        )
        and d not in removed
    }


def kept_ids(version: Any) -> set[int]:
    query, params = recipe_kept_query(version=version)
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), params)
        return {r[0] for r in cursor.fetchall()}


RULES: list[dict[str, Any]] = [
    {"signal": "rt_words", "op": ">=", "value": 10},
    {"signal": "rt_ppl", "op": "<=", "percentile": 90},
    {"signal": "rt_lang", "op": "in", "value": ["en", "de", "fr"]},
    {"signal": "rt_clean", "op": "!=", "value": False},
    {"signal": "rt_meta", "op": "is_null"},
]


def test_each_op_and_dtype_removes_what_python_says() -> None:
    world = build_world()
    cases: list[dict[str, Any]] = [
        {"signal": "rt_words", "op": "==", "value": 50},
        {"signal": "rt_words", "op": "!=", "value": 50},
        {"signal": "rt_words", "op": ">", "value": 50},
        {"signal": "rt_words", "op": "<", "value": 50},
        {"signal": "rt_words", "op": "in", "value": [1, 2, 3, 50]},
        {"signal": "rt_ppl", "op": ">=", "value": 250.5},
        {"signal": "rt_ppl", "op": "<=", "value": 100},
        {"signal": "rt_lang", "op": "==", "value": "en"},
        {"signal": "rt_lang", "op": "!=", "value": "en"},
        {"signal": "rt_clean", "op": "==", "value": True},
        {"signal": "rt_clean", "op": "is_null"},
        {"signal": "rt_meta", "op": "not_null"},
        {"signal": "rt_meta", "op": "is_null"},
    ]
    preview = recipe_preview(dataset=world.dataset, rules=cases, dedup={}, samples=0)
    assert preview.total == len(world.ids)
    for case, outcome in zip(cases, preview.rules, strict=True):
        expected = sum(not py_pass(case, world.values[case["signal"]].get(d)) for d in world.ids)
        assert outcome.alone == expected, case


def test_a_document_without_a_value_fails_the_rule_unless_the_rule_asks_for_null() -> None:
    world = build_world()
    no_row = world.ids[-1]
    null_words = next(d for d, v in world.values["rt_words"].items() if v is None)
    recipe = recipe_create(dataset=world.dataset, name="nulls")
    fails = recipe_version_save(
        recipe=recipe, rules=[{"signal": "rt_words", "op": "!=", "value": -1}], dedup={}, user=None
    )
    assert no_row not in kept_ids(fails) and null_words not in kept_ids(fails)
    keeps = recipe_version_save(
        recipe=recipe, rules=[{"signal": "rt_words", "op": "is_null"}], dedup={}, user=None
    )
    assert {no_row, null_words} <= kept_ids(keeps)
    missing = sum(world.values["rt_words"].get(d) is None for d in world.ids)
    assert fails.counts["missing"] == [missing]


def test_percentile_is_resolved_when_saved_and_then_fixed() -> None:
    world = build_world()
    present = [v for v in world.values["rt_ppl"].values() if v is not None]
    recipe = recipe_create(dataset=world.dataset, name="p")
    version = recipe_version_save(
        recipe=recipe,
        rules=[{"signal": "rt_ppl", "op": "<=", "percentile": 90}],
        dedup={},
        user=None,
    )
    threshold = version.resolved["thresholds"]["0"]
    assert threshold == pytest.approx(float(np.percentile(present, 90)))
    assert version.resolved["signals"]["0"]["step_version"] == "3"
    before = kept_ids(version)
    # New values shift the distribution; the saved version keeps its threshold.
    signal = Signal.objects.get(name="rt_ppl")
    signal_rows_write(
        signals=[signal], dataset_id=world.dataset.pk, rows=[(d, 1.0) for d in world.ids[:100]]
    )
    after = kept_ids(version)
    assert after == {
        d
        for d in world.ids
        if (1.0 if d in world.ids[:100] else world.values["rt_ppl"].get(d)) is not None
        and (1.0 if d in world.ids[:100] else world.values["rt_ppl"][d]) <= threshold
    }
    assert after != before


def test_waterfall_steps_sum_to_the_removed_count() -> None:
    world = build_world()
    preview = recipe_preview(
        dataset=world.dataset, rules=RULES, dedup={"exact": True, "minhash": True}
    )
    steps = [o.step for o in preview.rules] + [preview.dedup.step]
    assert sum(steps) == preview.removed == preview.total - preview.kept
    assert preview.dedup.remaining == preview.kept
    remaining = preview.total
    for outcome in preview.rules:
        remaining -= outcome.step
        assert outcome.remaining == remaining
        assert outcome.step <= outcome.alone
    # Rule 1 removes alone exactly what it removes first in the waterfall.
    assert preview.rules[0].step == preview.rules[0].alone
    assert all(o.alone > 0 for o in preview.rules)


def test_preview_samples_are_documents_the_rule_removes() -> None:
    world = build_world()
    preview = recipe_preview(dataset=world.dataset, rules=RULES[:3], dedup={"exact": True})
    for rule, outcome in zip(RULES[:3], preview.rules, strict=True):
        assert 0 < len(outcome.samples) <= 5
        assert len(outcome.samples) == min(5, outcome.alone)
        for doc in outcome.samples:
            threshold = outcome.rule.threshold
            assert not py_pass(rule, world.values[rule["signal"]].get(doc.id), threshold)
    removed = py_dedup_removed(world, ["exact"])
    assert preview.dedup.samples and {d.id for d in preview.dedup.samples} <= removed


def test_kept_query_equals_a_python_recomputation() -> None:
    world = build_world()
    recipe = recipe_create(dataset=world.dataset, name="full")
    version = recipe_version_save(
        recipe=recipe, rules=RULES, dedup={"exact": True, "minhash": True}, user=None
    )
    threshold = version.resolved["thresholds"]["1"]
    expected = py_kept(world, RULES, ["exact", "minhash"], {1: threshold})
    assert kept_ids(version) == expected
    assert version.counts["kept"] == len(expected)
    assert 0 < len(expected) < len(world.ids)


def test_dedup_keeps_representatives_and_honours_verdicts() -> None:
    world = build_world()
    user = UserFactory.create()
    recipe = recipe_create(dataset=world.dataset, name="dedup")
    base = recipe_version_save(recipe=recipe, rules=[], dedup={"exact": True}, user=user)
    reps = {representative(g) for g in world.groups["exact"]}
    members = {m.document_id for g in world.groups["exact"] for m in g.members.all()}
    assert kept_ids(base) == set(world.ids) - (members - reps)
    old_only = {m.document_id for m in world.groups["old"][0].members.all()} - members
    assert old_only <= kept_ids(base)

    whole, paired = world.groups["exact"][0], world.groups["exact"][1]
    pair_member = paired.members.filter(is_representative=False)[0].document_id
    duplicate_verdict_set(group=whole, verdict="not_duplicate", user=user)
    duplicate_verdict_set(group=paired, verdict="not_duplicate", user=user, document_id=pair_member)
    # A pair confirmed inside a group marked not-duplicate stays removed.
    confirmed = whole.members.filter(is_representative=False)[0].document_id
    duplicate_verdict_set(group=whole, verdict="duplicate", user=user, document_id=confirmed)

    # The saved version pinned the verdicts in force then; a new version applies them.
    assert kept_ids(base) == set(world.ids) - (members - reps)
    again = recipe_version_save(recipe=recipe, rules=[], dedup={"exact": True}, user=user)
    spared = {m.document_id for m in whole.members.all()} - {confirmed} | {pair_member}
    assert kept_ids(again) == (set(world.ids) - (members - reps)) | spared
    assert kept_ids(again) == py_kept(world, [], ["exact"])
    assert again.resolved["dedup"]["runs"] == {"exact": "run-2-exact_dedup"}


def test_provenance_agrees_with_the_kept_query_for_every_document() -> None:
    world = build_world(n=200, seed=3)
    user = UserFactory.create()
    group = world.groups["minhash"][2]
    duplicate_verdict_set(group=group, verdict="not_duplicate", user=user)
    recipe = recipe_create(dataset=world.dataset, name="prov")
    version = recipe_version_save(
        recipe=recipe, rules=RULES, dedup={"exact": True, "minhash": True}, user=None
    )
    kept = kept_ids(version)
    for d in world.ids:
        from curation.models import Document

        provenance = document_provenance(document=Document.objects.get(pk=d), version=version)
        assert provenance.kept == (d in kept), d
        assert provenance.dedup_removed == any(m.removed for m in provenance.memberships), d
        for verdict, rule in zip(provenance.rules, RULES, strict=True):
            assert verdict.value == world.values[rule["signal"]].get(d)
            assert verdict.passed == py_pass(rule, verdict.value, verdict.rule.threshold)
    spared = group.members.filter(is_representative=False)[0].document_id
    from curation.models import Document

    shown = document_provenance(document=Document.objects.get(pk=spared), version=version)
    membership = next(m for m in shown.memberships if m.member.group_id == group.pk)
    assert membership.applied and not membership.removed and membership.verdicts


@pytest.mark.parametrize(
    ("rules", "dedup", "index", "field", "words"),
    [
        ([{"signal": "nope", "op": ">=", "value": 1}], {}, 0, "signal", "no signal named 'nope'"),
        (
            [RULES[0], {"signal": "rt_lang", "op": ">=", "value": "x"}],
            {},
            1,
            "op",
            "does not apply to text",
        ),
        ([{"signal": "rt_words", "op": "~", "value": 1}], {}, 0, "op", "not an operator"),
        ([{"signal": "rt_words", "op": ">="}], {}, 0, "value", "needs a value"),
        ([{"signal": "rt_words", "op": ">=", "value": "ten"}], {}, 0, "value", "not a number"),
        (
            [{"signal": "rt_clean", "op": "==", "value": "maybe"}],
            {},
            0,
            "value",
            "not true or false",
        ),
        ([{"signal": "rt_words", "op": "<", "percentile": 120}], {}, 0, "percentile", "0 to 100"),
        ([{"signal": "rt_lang", "op": "==", "percentile": 50}], {}, 0, "percentile", "numeric"),
        (
            [{"signal": "rt_words", "op": ">=", "value": 1, "percentile": 5}],
            {},
            0,
            "percentile",
            "not both",
        ),
        ([{"signal": "rt_words", "op": "in", "value": []}], {}, 0, "value", "list"),
        ([{"signal": "rt_words", "op": ">=", "value": 1, "x": 1}], {}, 0, "x", "unknown field"),
        ([], {"fuzzy": True}, None, "dedup", "unknown kind"),
    ],
)
def test_validation_errors_name_the_rule_and_field(
    rules: list[dict[str, Any]], dedup: dict[str, Any], index: int | None, field: str, words: str
) -> None:
    world = build_world(n=30)
    recipe = recipe_create(dataset=world.dataset, name="bad")
    with pytest.raises(RecipeRuleError) as caught:
        recipe_version_save(recipe=recipe, rules=rules, dedup=dedup, user=None)
    error = caught.value
    assert (error.index, error.field) == (index, field)
    assert words in str(error)
    if index is not None:
        assert str(error).startswith(f"rule {index + 1}, {field}:")
    assert not recipe.versions.exists()


def test_percentile_of_a_signal_without_values_is_an_error() -> None:
    world = build_world(n=30)
    signal_define(name="rt_empty", step="s", step_version="1", dtype="float")
    with pytest.raises(
        RecipeRuleError, match="rule 1, percentile: signal 'rt_empty' has no values"
    ):
        recipe_preview(
            dataset=world.dataset,
            rules=[{"signal": "rt_empty", "op": ">", "percentile": 10}],
            dedup={},
        )


def test_versions_number_up_and_keep_their_rules() -> None:
    world = build_world(n=30)
    recipe = recipe_create(dataset=world.dataset, name="Web quality")
    assert recipe.slug == "web-quality"
    first = recipe_version_save(recipe=recipe, rules=RULES[:1], dedup={}, user=None)
    second = recipe_version_save(
        recipe=recipe,
        rules=[{"signal": "rt_words", "op": ">=", "value": "20"}],
        dedup={},
        user=None,
    )
    assert (first.version, second.version) == (1, 2)
    assert second.rules == [{"signal": "rt_words", "op": ">=", "value": 20}]
    assert first.rules == RULES[:1]
    assert not math.isnan(second.counts["kept"])


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"signal": "rt_meta", "op": "is_null"}],
        [{"signal": "rt_meta", "op": "not_null"}, {"signal": "rt_words", "op": "is_null"}],
        RULES,
    ],
    ids=["no-rules", "is-null", "not-null-first", "all"],
)
def test_saved_counts_agree_with_the_kept_query_and_python(rules: list[dict[str, Any]]) -> None:
    """The preview adds documents without a signal row by arithmetic; the kept query joins
    every document: both, and a Python recomputation, must agree."""
    world = build_world(n=120, seed=11)
    recipe = recipe_create(dataset=world.dataset, name="agree")
    version = recipe_version_save(
        recipe=recipe, rules=rules, dedup={"exact": True, "minhash": True}, user=None
    )
    thresholds = {int(k): v for k, v in version.resolved["thresholds"].items()}
    expected = py_kept(world, rules, ["exact", "minhash"], thresholds)
    assert kept_ids(version) == expected
    counts = version.counts
    assert counts["kept"] == len(expected)
    assert counts["documents"] == len(world.ids)
    assert sum(step["removed"] for step in counts["waterfall"]) == counts["removed"]
    assert counts["dedup"]["alone"] == len(py_dedup_removed(world, ["exact", "minhash"]))
    if not rules:
        assert world.ids[-1] not in expected  # no signal row, removed as a duplicate
