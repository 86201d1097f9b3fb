"""Resolved recipes and their SQL: one shape for preview, kept query and provenance.

A dedup policy ``{"exact": bool, "minhash": bool, "semantic": bool}`` removes every
non-representative member of the groups of an enabled kind, except members a
reviewer marked "not a duplicate" (on the whole group, or on the pair with the
group's representative; the pair's verdict wins over the group's).

Everything a saved version needs to select the same documents later is resolved
once: percentile thresholds, signal columns, the run whose groups are used per
kind, and the verdicts in force. ``RuleSet`` turns that into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from psycopg import sql

from curation.models import DuplicateGroup, DuplicateVerdict, RecipeVersion, Signal
from curation.services.recipes.rules import (
    DEDUP_KINDS,
    RecipeRuleError,
    Rule,
    rules_from_version,
    ruleset_parse,
)
from curation.services.signals import TABLE as SIGNAL_TABLE

_SQL_OPS = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
# Parameters are cast explicitly so the SQL means the same under client- or
# server-side binding. An int signal compares with a bigint when the threshold is
# whole (64-bit hashes stay exact) and as double precision otherwise.
_PARAM_CASTS = {
    Signal.Dtype.FLOAT: "double precision",
    Signal.Dtype.BOOL: "boolean",
    Signal.Dtype.TEXT: "text",
}


@dataclass(frozen=True)
class DedupPlan:
    """Which groups the policy removes from and which of their members verdicts spare.

    ``runs`` maps each enabled kind to the run whose groups are used (the newest
    when resolved); ``exempt_groups`` were marked not-duplicate as a whole;
    ``exempt_members`` / ``confirmed_members`` are (group, member) pairs marked
    not-duplicate / confirmed against the representative.
    """

    kinds: tuple[str, ...] = ()
    runs: dict[str, str] = field(default_factory=dict)
    exempt_groups: tuple[int, ...] = ()
    exempt_members: tuple[tuple[int, int], ...] = ()
    confirmed_members: tuple[tuple[int, int], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.runs)

    def spares(self, *, group_id: int, document_id: int) -> bool:
        """Whether verdicts keep this non-representative member (mirrors the SQL)."""
        if (group_id, document_id) in self.exempt_members:
            return True
        return (
            group_id in self.exempt_groups and (group_id, document_id) not in self.confirmed_members
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "exempt_groups": list(self.exempt_groups),
            "exempt_members": [list(p) for p in self.exempt_members],
            "confirmed_members": [list(p) for p in self.confirmed_members],
        }


@dataclass(frozen=True)
class RuleSet:
    """Validated rules and dedup policy of one dataset; ``resolve`` fills thresholds."""

    dataset_id: int
    rules: tuple[Rule, ...]
    dedup: DedupPlan

    def _pass_columns(self) -> tuple[list[sql.Composable], list[Any]]:
        columns: list[sql.Composable] = []
        params: list[Any] = []
        for rule in self.rules:
            expression, values = pass_sql(rule)
            columns.append(sql.SQL("{} AS {}").format(expression, sql.Identifier(f"p{rule.index}")))
            params.extend(values)
        for rule in self.rules:
            columns.append(
                sql.SQL("s.{} AS {}").format(
                    sql.Identifier(rule.column), sql.Identifier(f"v{rule.index}")
                )
            )
        return columns, params

    def flags_sql(self) -> tuple[sql.Composable, list[Any]]:
        """``SELECT document_id, p0..pn, v0..vn, dup`` for every document of the dataset.

        ``p<i>`` is whether the document passes rule i, ``v<i>`` its raw value and
        ``dup`` whether the dedup policy removes it. Documents with no signal row
        join to NULLs and so fail every rule that needs a value.
        """
        return self._flags_sql(documents=True, dedup=True)

    def row_flags_sql(
        self, *, dedup: bool = True, sample_percent: float | None = None
    ) -> tuple[sql.Composable, list[Any]]:
        """The same columns over the dataset's signal rows only (no join to documents).

        Documents without a row all have the same flags (NULL everywhere); the
        preview adds them by arithmetic instead of joining a million document ids.
        ``sample_percent`` reads only that share of the partition's pages
        (``TABLESAMPLE SYSTEM``).
        """
        return self._flags_sql(documents=False, dedup=dedup, sample_percent=sample_percent)

    def _flags_sql(
        self, *, documents: bool, dedup: bool, sample_percent: float | None = None
    ) -> tuple[sql.Composable, list[Any]]:
        columns, params = self._pass_columns()
        table = sql.Identifier(SIGNAL_TABLE)
        source_params: list[Any] = []
        if documents:
            source = sql.SQL(
                "curation_document d LEFT JOIN {} s ON s.dataset_id = %s AND s.document_id = d.id"
            ).format(table)
            key, where = sql.SQL("d.id"), sql.SQL("d.dataset_id = %s")
            source_params.append(self.dataset_id)
        else:
            source = sql.SQL("{} s").format(table)
            if sample_percent is not None:
                source = sql.SQL("{} s TABLESAMPLE SYSTEM ({})").format(
                    table, sql.Literal(float(sample_percent))
                )
            key, where = sql.SQL("s.document_id"), sql.SQL("s.dataset_id = %s")
        if dedup and self.dedup.active:
            removed, removed_params = dedup_removed_sql(self.dataset_id, self.dedup)
            source = sql.SQL("{} LEFT JOIN ({}) x ON x.document_id = {}").format(
                source, removed, key
            )
            source_params += removed_params
            columns.append(sql.SQL("x.document_id IS NOT NULL AS dup"))
        else:
            columns.append(sql.SQL("false AS dup"))
        query = sql.SQL("SELECT {} AS document_id, {} FROM {} WHERE {}").format(
            key, sql.SQL(", ").join(columns), source, where
        )
        return query, [*params, *source_params, self.dataset_id]

    def kept_condition(self) -> sql.Composable:
        """Over the columns of ``flags_sql``: the document passes every rule and dedup."""
        parts = [sql.Identifier(f"p{rule.index}") for rule in self.rules]
        return sql.SQL(" AND ").join([*parts, sql.SQL("NOT dup")])


def pass_sql(rule: Rule) -> tuple[sql.Composable, list[Any]]:
    """The rule as a boolean over ``s`` (the signal row); NULL, or no row, fails it."""
    column = sql.SQL("s.{}").format(sql.Identifier(rule.column))
    if rule.op == "is_null":
        return sql.SQL("({} IS NULL)").format(column), []
    if rule.op == "not_null":
        return sql.SQL("({} IS NOT NULL)").format(column), []
    cast = sql.SQL(_param_cast(rule))
    if rule.op == "in":
        return (
            sql.SQL("COALESCE({} = ANY(%s::{}[]), false)").format(column, cast),
            [list(rule.threshold)],
        )
    return (
        sql.SQL("COALESCE({} {} %s::{}, false)").format(column, sql.SQL(_SQL_OPS[rule.op]), cast),
        [rule.threshold],
    )


def _param_cast(rule: Rule) -> str:
    if rule.signal.dtype != Signal.Dtype.INT:
        return _PARAM_CASTS[Signal.Dtype(rule.signal.dtype)]
    values = rule.threshold if rule.op == "in" else [rule.threshold]
    whole = all(isinstance(v, int) for v in values)
    return "bigint" if whole else "double precision"


def dedup_removed_sql(
    dataset_id: int, plan: DedupPlan, *, distinct: bool = True
) -> tuple[sql.Composable, list[Any]]:
    """``SELECT document_id`` of the members the plan removes, each once.

    Within one run a document is in at most one group, so DISTINCT is only needed
    when several kinds are on (``distinct=False``: never, and the last condition is
    open for more ``AND``s). Verdict lists are short (people make them): their
    ``NOT IN`` subqueries are hashed.
    """
    runs = sql.SQL(" OR ").join(sql.SQL("(g.kind = %s AND g.run_key = %s)") for _ in plan.runs)
    parts: list[sql.Composable] = [
        sql.SQL(
            "SELECT {} m.document_id FROM curation_duplicatemember m "
            "WHERE NOT m.is_representative AND m.group_id IN "
            "(SELECT g.id FROM curation_duplicategroup g WHERE g.dataset_id = %s AND ({}))"
        ).format(sql.SQL("DISTINCT" if distinct and len(plan.runs) > 1 else ""), runs)
    ]
    params: list[Any] = [dataset_id, *(v for item in plan.runs.items() for v in item)]
    if plan.exempt_members:
        parts.append(
            sql.SQL(
                "(m.group_id, m.document_id) NOT IN "
                "(SELECT * FROM unnest(%s::bigint[], %s::bigint[]))"
            )
        )
        params += [[g for g, _ in plan.exempt_members], [d for _, d in plan.exempt_members]]
    if plan.exempt_groups and plan.confirmed_members:
        parts.append(
            sql.SQL(
                "NOT (m.group_id = ANY(%s::bigint[]) AND (m.group_id, m.document_id) NOT IN "
                "(SELECT * FROM unnest(%s::bigint[], %s::bigint[])))"
            )
        )
        params += [
            list(plan.exempt_groups),
            [g for g, _ in plan.confirmed_members],
            [d for _, d in plan.confirmed_members],
        ]
    elif plan.exempt_groups:
        parts.append(sql.SQL("m.group_id <> ALL(%s::bigint[])"))
        params.append(list(plan.exempt_groups))
    return sql.SQL(" AND ").join(parts), params


def percentiles_resolve(*, dataset_id: int, rules: list[Rule]) -> list[Rule]:
    """Fill each percentile rule's threshold from the signal's values in the dataset.

    One SELECT computes every percentile (``percentile_cont`` over non-NULL values).
    """
    wanted = [r for r in rules if r.percentile is not None]
    if not wanted:
        return rules
    query = sql.SQL("SELECT {} FROM {} WHERE dataset_id = %s").format(
        sql.SQL(", ").join(
            sql.SQL("percentile_cont(%s) WITHIN GROUP (ORDER BY {})").format(
                sql.Identifier(r.column)
            )
            for r in wanted
        ),
        sql.Identifier(SIGNAL_TABLE),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            query.as_string(cursor.connection),
            [*(float(r.percentile or 0) / 100 for r in wanted), dataset_id],
        )
        row = cursor.fetchone()
    thresholds = dict(zip((r.index for r in wanted), row, strict=True))
    resolved = []
    for rule in rules:
        if rule.percentile is None:
            resolved.append(rule)
            continue
        threshold = thresholds[rule.index]
        if threshold is None:
            raise RecipeRuleError(
                f"signal {rule.signal.name!r} has no values in this dataset: run its step "
                "first, or give a value",
                index=rule.index,
                field="percentile",
            )
        resolved.append(_replace_threshold(rule, float(threshold)))
    return resolved


def _replace_threshold(rule: Rule, threshold: Any) -> Rule:
    return Rule(
        index=rule.index,
        signal=rule.signal,
        op=rule.op,
        value=rule.value,
        percentile=rule.percentile,
        threshold=threshold,
    )


def latest_runs(*, dataset_id: int, kinds: tuple[str, ...] = DEDUP_KINDS) -> dict[str, str]:
    """The newest run's key per kind with groups in the dataset (reruns add new groups)."""
    runs: dict[str, str] = {}
    for kind in kinds:
        key = (
            DuplicateGroup.objects.filter(dataset_id=dataset_id, kind=kind)
            .order_by("-id")
            .values_list("run_key", flat=True)
            .first()
        )
        if key is not None:
            runs[kind] = key
    return runs


def dedup_plan_resolve(*, dataset_id: int, kinds: tuple[str, ...]) -> DedupPlan:
    """The plan for enabled ``kinds`` now: newest runs and the verdicts on their groups."""
    runs = latest_runs(dataset_id=dataset_id, kinds=kinds)
    if not runs:
        return DedupPlan(kinds=kinds)
    exempt_groups: set[int] = set()
    exempt: set[tuple[int, int]] = set()
    confirmed: set[tuple[int, int]] = set()
    verdicts = DuplicateVerdict.objects.filter(group__dataset_id=dataset_id)
    verdicts = verdicts.filter(group__run_key__in=runs.values(), group__kind__in=runs.keys())
    representatives = dict(
        DuplicateGroup.objects.filter(pk__in=verdicts.values("group_id"))
        .filter(members__is_representative=True)
        .values_list("pk", "members__document_id")
    )
    for v in verdicts.values("group_id", "document_a", "document_b", "verdict"):
        not_duplicate = v["verdict"] == DuplicateVerdict.Verdict.NOT_DUPLICATE
        if v["document_a"] is None:
            if not_duplicate:
                exempt_groups.add(v["group_id"])
            continue
        member = _pair_member(representatives.get(v["group_id"]), v["document_a"], v["document_b"])
        if member is not None:
            (exempt if not_duplicate else confirmed).add((v["group_id"], member))
    return DedupPlan(
        kinds=kinds,
        runs=runs,
        exempt_groups=tuple(sorted(exempt_groups)),
        exempt_members=tuple(sorted(exempt)),
        confirmed_members=tuple(sorted(confirmed)),
    )


def _pair_member(representative: int | None, a: int, b: int | None) -> int | None:
    """The non-representative document of a pair with the representative, else None."""
    if representative is None or b is None:
        return None
    if a == representative:
        return b
    if b == representative:
        return a
    return None


def dedup_plan_from_json(*, kinds: tuple[str, ...], data: dict[str, Any]) -> DedupPlan:
    return DedupPlan(
        kinds=kinds,
        runs={k: v for k, v in (data.get("runs") or {}).items() if k in kinds},
        exempt_groups=tuple(int(g) for g in data.get("exempt_groups", [])),
        exempt_members=tuple((int(g), int(d)) for g, d in data.get("exempt_members", [])),
        confirmed_members=tuple((int(g), int(d)) for g, d in data.get("confirmed_members", [])),
    )


def ruleset_resolve(*, dataset_id: int, rules: Any, dedup: Any) -> RuleSet:
    """Validate raw rules and a policy and resolve them against the dataset as it is now."""
    parsed, kinds = ruleset_parse(dataset_id=dataset_id, rules=rules, dedup=dedup)
    return RuleSet(
        dataset_id=dataset_id,
        rules=tuple(percentiles_resolve(dataset_id=dataset_id, rules=parsed)),
        dedup=dedup_plan_resolve(dataset_id=dataset_id, kinds=kinds),
    )


def ruleset_for_version(*, version: RecipeVersion) -> RuleSet:
    """The version's rules exactly as resolved when it was saved."""
    kinds = tuple(k for k in DEDUP_KINDS if version.dedup.get(k))
    return RuleSet(
        dataset_id=version.recipe.dataset_id,
        rules=tuple(rules_from_version(rules=version.rules, resolved=version.resolved)),
        dedup=dedup_plan_from_json(kinds=kinds, data=version.resolved.get("dedup", {})),
    )
