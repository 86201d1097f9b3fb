"""Recipe reads: lists, versions, and a document's provenance under a recipe version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.db.models import QuerySet
from psycopg import sql

from curation.errors import PermanentError
from curation.models import (
    Dataset,
    Document,
    DuplicateMember,
    DuplicateVerdict,
    Recipe,
    RecipeVersion,
    Signal,
)
from curation.services.recipes.plan import ruleset_for_version
from curation.services.recipes.rules import Rule


def recipe_list(*, dataset: Dataset) -> QuerySet[Recipe]:
    return (
        Recipe.objects.filter(dataset=dataset)
        .select_related("created_by")
        .prefetch_related("versions")
        .order_by("name")
    )


def recipe_versions(*, recipe: Recipe) -> QuerySet[RecipeVersion]:
    return recipe.versions.select_related("created_by").order_by("-version")


def dataset_recipe_versions(*, dataset: Dataset) -> QuerySet[RecipeVersion]:
    """Every version of every recipe of the dataset, newest first (provenance choices)."""
    return (
        RecipeVersion.objects.filter(recipe__dataset=dataset)
        .select_related("recipe")
        .order_by("-created_at", "-pk")
    )


def signal_choices() -> list[Signal]:
    return list(Signal.objects.order_by("name"))


def recipe_start_version(*, recipe: Recipe, number: str | None) -> RecipeVersion | None:
    """The version the editor starts from: ``number`` if it exists, else the latest."""
    versions = recipe.versions.order_by("-version")
    if number and number.isdigit():
        chosen = versions.filter(version=int(number)).first()
        if chosen is not None:
            return chosen
    return versions.first()


@dataclass(frozen=True)
class VersionRule:
    """A saved rule as shown on its version's page, with the counts saved with it."""

    number: int
    rule: dict[str, Any]
    threshold: Any
    signal: dict[str, Any]
    alone: int | None
    missing: int | None
    removed: int | None
    remaining: int | None


def version_rules(*, version: RecipeVersion) -> list[VersionRule]:
    counts, resolved = version.counts, version.resolved
    waterfall = counts.get("waterfall", [])
    out = []
    for i, rule in enumerate(version.rules):
        step = waterfall[i] if i < len(waterfall) else {}
        out.append(
            VersionRule(
                number=i + 1,
                rule=rule,
                threshold=resolved.get("thresholds", {}).get(str(i), rule.get("value")),
                signal=resolved.get("signals", {}).get(str(i), {}),
                alone=_at(counts.get("alone"), i),
                missing=_at(counts.get("missing"), i),
                removed=step.get("removed"),
                remaining=step.get("remaining"),
            )
        )
    return out


def _at(values: list[int] | None, i: int) -> int | None:
    return values[i] if values and i < len(values) else None


@dataclass(frozen=True)
class RuleVerdict:
    rule: Rule
    passed: bool
    value: Any
    snapshot: dict[str, Any]

    @property
    def missing(self) -> bool:
        return self.value is None and self.rule.needs_value

    @property
    def threshold(self) -> Any:
        return self.rule.threshold if self.rule.needs_value else None


@dataclass(frozen=True)
class DedupMembership:
    """The document in one duplicate group, and what the version's policy makes of it."""

    member: DuplicateMember
    representative_id: int | None
    applied: bool
    removed: bool
    spared_now: bool
    verdicts: list[DuplicateVerdict]

    @property
    def is_representative(self) -> bool:
        return self.member.is_representative

    @property
    def stale(self) -> bool:
        """A verdict made since the version was saved would change this outcome."""
        spared_then = self.applied and not self.is_representative and not self.removed
        return self.applied and not self.is_representative and spared_then != self.spared_now


@dataclass(frozen=True)
class Provenance:
    version: RecipeVersion
    document: Document
    rules: list[RuleVerdict]
    memberships: list[DedupMembership]
    dedup_removed: bool

    @property
    def kept(self) -> bool:
        return all(r.passed for r in self.rules) and not self.dedup_removed

    @property
    def failed(self) -> list[RuleVerdict]:
        return [r for r in self.rules if not r.passed]


def document_provenance(*, document: Document, version: RecipeVersion) -> Provenance:
    """Why ``version`` keeps or drops ``document``: each rule, the dedup outcome, the verdict.

    Pass flags and the dedup flag come from the very SQL of ``recipe_kept_query``
    restricted to this document, so the page and an export always agree.
    """
    if document.dataset_id != version.recipe.dataset_id:
        raise PermanentError(f"{version} is a recipe of another dataset")
    ruleset = ruleset_for_version(version=version)
    flags, params = ruleset.flags_sql()
    query = sql.SQL("SELECT * FROM ({}) t WHERE document_id = %s").format(flags)
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), [*params, document.pk])
        row = cursor.fetchone()
    n = len(ruleset.rules)
    passes, values, dup = row[1 : 1 + n], row[1 + n : 1 + 2 * n], bool(row[1 + 2 * n])
    snapshots = version.resolved.get("signals", {})
    rules = [
        RuleVerdict(
            rule=rule,
            passed=bool(passed),
            value=_decode(rule.signal, value),
            snapshot=snapshots.get(str(rule.index), {}),
        )
        for rule, passed, value in zip(ruleset.rules, passes, values, strict=True)
    ]
    return Provenance(
        version=version,
        document=document,
        rules=rules,
        memberships=_memberships(document, ruleset.dedup),
        dedup_removed=dup,
    )


def _decode(signal: Signal, value: Any) -> Any:
    if signal.dtype == Signal.Dtype.JSON and isinstance(value, str):
        return orjson.loads(value)
    return value


def _memberships(document: Document, plan: Any) -> list[DedupMembership]:
    members = list(
        DuplicateMember.objects.filter(document=document)
        .select_related("group")
        .order_by("group__kind", "-group_id")
    )
    group_ids = [m.group_id for m in members]
    representatives = dict(
        DuplicateMember.objects.filter(group_id__in=group_ids, is_representative=True).values_list(
            "group_id", "document_id"
        )
    )
    verdicts: dict[int, list[DuplicateVerdict]] = {}
    for v in DuplicateVerdict.objects.filter(group_id__in=group_ids).select_related("user"):
        if v.document_a is None or document.pk in (v.document_a, v.document_b):
            verdicts.setdefault(v.group_id, []).append(v)
    out = []
    for m in members:
        representative = representatives.get(m.group_id)
        applied = plan.runs.get(m.group.kind) == m.group.run_key
        removed = (
            applied
            and not m.is_representative
            and not plan.spares(group_id=m.group_id, document_id=document.pk)
        )
        out.append(
            DedupMembership(
                member=m,
                representative_id=representative,
                applied=applied,
                removed=removed,
                spared_now=spared_by(verdicts.get(m.group_id, []), representative, document.pk),
                verdicts=verdicts.get(m.group_id, []),
            )
        )
    return out


def spared_by(
    verdicts: list[DuplicateVerdict], representative: int | None, document_id: int
) -> bool:
    """Whether these verdicts keep a non-representative member (the pair's verdict wins)."""
    pair = {representative, document_id}
    group_level = None
    for v in verdicts:
        if v.document_a is None:
            group_level = v.verdict
        elif {v.document_a, v.document_b} == pair:
            return v.verdict == DuplicateVerdict.Verdict.NOT_DUPLICATE
    return group_level == DuplicateVerdict.Verdict.NOT_DUPLICATE
