"""Recipe previews: what unsaved rules keep, removed by each rule, and samples.

Counted in one pass over the dataset's signal rows grouped by their pass flags
(a parallel aggregate: each rule evaluated once per row), samples drawn from a
page sample of the partition. bench/recipe_bench.py times it at 1M documents.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models.functions import Substr
from psycopg import sql

from curation.models import Dataset, Document
from curation.services.recipes.plan import RuleSet, dedup_removed_sql, ruleset_resolve
from curation.services.recipes.rules import Rule
from curation.services.signals import TABLE as SIGNAL_TABLE
from curation.services.signals import partition_row_estimate

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 5
# Samples come from a page sample of about this many signal rows: 5 for any rule
# removing >= ~0.03 % of them.
_POOL = 20_000
# Rarer rules: one more scan keeps each of their rows with ~ this / removed count.
_RARE_OVERDRAW = 30
PREVIEW_CHARS = 300


@dataclass(frozen=True)
class SampleDocument:
    id: int
    external_id: str
    preview: str


@dataclass(frozen=True)
class RuleOutcome:
    """One rule in a preview: ``alone`` fail it whatever the other rules say; ``step`` is
    its waterfall removal (passed the rules before it, fail it); ``remaining`` after it."""

    rule: Rule
    alone: int
    missing: int
    step: int
    remaining: int
    samples: list[SampleDocument] = field(default_factory=list)


@dataclass(frozen=True)
class DedupOutcome:
    kinds: tuple[str, ...]
    runs: dict[str, str]
    alone: int
    step: int
    remaining: int
    samples: list[SampleDocument] = field(default_factory=list)


@dataclass(frozen=True)
class Preview:
    total: int
    kept: int
    rules: list[RuleOutcome]
    dedup: DedupOutcome
    seconds: float = 0.0

    @property
    def removed(self) -> int:
        return self.total - self.kept

    def counts_json(self) -> dict[str, Any]:
        waterfall = [
            {"label": o.rule.label, "removed": o.step, "remaining": o.remaining} for o in self.rules
        ]
        waterfall.append(
            {"label": "dedup", "removed": self.dedup.step, "remaining": self.dedup.remaining}
        )
        return {
            "documents": self.total,
            "kept": self.kept,
            "removed": self.removed,
            "alone": [o.alone for o in self.rules],
            "missing": [o.missing for o in self.rules],
            "waterfall": waterfall,
            "dedup": {"alone": self.dedup.alone, "step": self.dedup.step},
        }


def recipe_preview(
    *, dataset: Dataset, rules: Any, dedup: Any, samples: int = SAMPLE_SIZE
) -> Preview:
    """What unsaved ``rules`` and ``dedup`` keep now; raises ``RecipeRuleError`` if invalid.

    1. Validate, resolve percentiles over the dataset and the dedup plan.
    2. One pass over the dataset's signal rows: counts per combination of pass
       flags, and a uniform random pool of document ids per combination.
    3. Alone counts, the waterfall (rules in order, dedup last), the kept count and
       up to ``samples`` removed documents per rule (and for dedup) from those.
    """
    started = time.perf_counter()
    ruleset = ruleset_resolve(dataset_id=dataset.pk, rules=rules, dedup=dedup)
    preview = preview_evaluate(ruleset, samples)
    seconds = time.perf_counter() - started
    logger.info(
        "recipe preview of %d rules over %d documents of dataset %s in %.3fs",
        len(ruleset.rules),
        preview.total,
        dataset.pk,
        seconds,
    )
    return Preview(
        total=preview.total,
        kept=preview.kept,
        rules=preview.rules,
        dedup=preview.dedup,
        seconds=seconds,
    )


@dataclass(frozen=True)
class _Combo:
    """Documents sharing one combination of pass flags (and dedup flag)."""

    count: int
    missing: list[int]
    passes: list[bool]
    dup: bool
    rows: bool = True  # False: documents without a signal row (never sampled)


def preview_evaluate(ruleset: RuleSet, samples: int) -> Preview:
    """Counts and samples of a preview.

    1. One SELECT over the signal rows (left-joined to the dedup-removed set) groups
       them by their pass flags, so each rule is evaluated once per row, and counts
       each combination and its per-rule "no value" documents; the dataset's
       document count comes along. It runs as a parallel aggregate.
    2. Documents with no signal row fail every rule but ``is_null`` ones: they are
       one more combination (those in the removed set flagged dup).
    3. Every number is a sum over combinations; samples are drawn after.
    """
    flags, params = ruleset.row_flags_sql()
    n = len(ruleset.rules)
    keys = [sql.Identifier(f"p{r.index}") for r in ruleset.rules] + [sql.Identifier("dup")]
    query = sql.SQL(
        "SELECT (SELECT count(*) FROM curation_document WHERE dataset_id = %s), count(*), "
        "{missing} {keys} FROM ({flags}) t GROUP BY {keys}"
    ).format(
        missing=sql.SQL("").join(
            sql.SQL("count(*) FILTER (WHERE {} IS NULL), ").format(sql.Identifier(f"v{r.index}"))
            for r in ruleset.rules
        ),
        keys=sql.SQL(", ").join(keys),
        flags=flags,
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), [ruleset.dataset_id, *params])
        rows = cursor.fetchall()
    combos = [
        _Combo(r[1], list(r[2 : 2 + n]), list(r[2 + n : 2 + 2 * n]), r[2 + 2 * n]) for r in rows
    ]
    total = rows[0][0] if rows else _document_count(ruleset.dataset_id)
    rowless = total - sum(c.count for c in combos)
    if rowless:
        rowless_dup = _removed_count(ruleset) - sum(c.count for c in combos if c.dup)
        nulls = [r.passes_null for r in ruleset.rules]
        for count, dup in ((rowless_dup, True), (rowless - rowless_dup, False)):
            combos.append(_Combo(count, [count] * n, nulls, dup, rows=False))
    preview = _sums(ruleset, total, combos)
    if samples:
        preview = _with_samples(ruleset, preview, combos, samples)
    return preview


def _sums(ruleset: RuleSet, total: int, combos: list[_Combo]) -> Preview:
    outcomes, remaining = [], total
    for i, rule in enumerate(ruleset.rules):
        step = sum(c.count for c in combos if all(c.passes[:i]) and not c.passes[i])
        remaining -= step
        outcomes.append(
            RuleOutcome(
                rule=rule,
                alone=sum(c.count for c in combos if not c.passes[i]),
                missing=sum(c.missing[i] for c in combos),
                step=step,
                remaining=remaining,
            )
        )
    dedup_step = sum(c.count for c in combos if all(c.passes) and c.dup)
    return Preview(
        total=total,
        kept=remaining - dedup_step,
        rules=outcomes,
        dedup=DedupOutcome(
            kinds=ruleset.dedup.kinds,
            runs=ruleset.dedup.runs,
            alone=sum(c.count for c in combos if c.dup),
            step=dedup_step,
            remaining=remaining - dedup_step,
        ),
    )


def _row_estimate(dataset_id: int) -> float:
    """Roughly how many signal rows the dataset has (planner statistics, else a count)."""
    estimate = partition_row_estimate(dataset_id)
    if estimate > 0:
        return estimate
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE dataset_id = %s")
            .format(sql.Identifier(SIGNAL_TABLE))
            .as_string(cursor.connection),
            [dataset_id],
        )
        return float(max(1, cursor.fetchone()[0]))


def _document_count(dataset_id: int) -> int:
    return Document.objects.filter(dataset_id=dataset_id).count()


def _removed_count(ruleset: RuleSet) -> int:
    if not ruleset.dedup.active:
        return 0
    removed, params = dedup_removed_sql(ruleset.dataset_id, ruleset.dedup)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM ({}) r").format(removed).as_string(cursor.connection),
            params,
        )
        return int(cursor.fetchone()[0])


def _with_samples(ruleset: RuleSet, preview: Preview, combos: list[_Combo], size: int) -> Preview:
    """Up to ``size`` random removed documents per rule and for dedup.

    1. A page sample of the signal rows (``TABLESAMPLE SYSTEM``, about ``_POOL``
       rows) is evaluated; each rule draws from the rows in it that fail it.
    2. A rule with too few there (it removes under ~0.03 % of the rows) draws from
       one bounded scan for all such rules; dedup draws ``ORDER BY random()`` from
       the removed set. Documents without a signal row are never drawn (the "no
       value" count reports them).
    """
    rng = random.Random()
    picked: dict[int | None, list[int]] = {}
    wanted = [o for o in preview.rules if o.alone]
    if wanted:
        percent = min(100.0, 100.0 * _POOL / _row_estimate(ruleset.dataset_id))
        rows = _failing_rows(ruleset, wanted, percent=percent)
        rare = []
        for column, outcome in enumerate(wanted):
            pool = [r[0] for r in rows if r[1 + column]]
            i = outcome.rule.index
            with_rows = sum(c.count for c in combos if c.rows and not c.passes[i])
            if len(pool) < size and with_rows > len(pool) and percent < 100:
                rare.append(outcome)
            picked[i] = rng.sample(pool, min(size, len(pool)))
        if rare:
            rows = _failing_rows(ruleset, rare, percent=None)
            for column, outcome in enumerate(rare):
                pool = [r[0] for r in rows if r[1 + column]]
                picked[outcome.rule.index] = rng.sample(pool, min(size, len(pool)))
    if preview.dedup.alone:
        picked[None] = _dedup_samples(ruleset, size)
    documents = _sample_documents({d for ids in picked.values() for d in ids})

    def chosen(key: int | None) -> list[SampleDocument]:
        return [documents[d] for d in picked.get(key, []) if d in documents]

    rules = [
        RuleOutcome(
            rule=o.rule,
            alone=o.alone,
            missing=o.missing,
            step=o.step,
            remaining=o.remaining,
            samples=chosen(o.rule.index),
        )
        for o in preview.rules
    ]
    d = preview.dedup
    dedup = DedupOutcome(
        kinds=d.kinds,
        runs=d.runs,
        alone=d.alone,
        step=d.step,
        remaining=d.remaining,
        samples=chosen(None),
    )
    return Preview(total=preview.total, kept=preview.kept, rules=rules, dedup=dedup)


def _failing_rows(
    ruleset: RuleSet, outcomes: list[RuleOutcome], *, percent: float | None
) -> list[tuple[Any, ...]]:
    """``(document_id, fails rule a, fails rule b, ...)`` of rows failing any of them.

    With ``percent``: from that page sample. Without: one scan keeping each row
    with probability ~ ``_RARE_OVERDRAW / removed`` of the rarest rule it fails.
    """
    flags, params = ruleset.row_flags_sql(dedup=False, sample_percent=percent)
    fails = [sql.SQL("NOT {}").format(sql.Identifier(f"p{o.rule.index}")) for o in outcomes]
    if percent is not None:
        where: sql.Composable = sql.SQL(" OR ").join(fails)
        limit: sql.Composable = sql.SQL("")
    else:
        where = sql.SQL("random() < GREATEST({})").format(
            sql.SQL(", ").join(
                sql.SQL("CASE WHEN {} THEN {} END").format(
                    f, sql.Literal(min(1.0, _RARE_OVERDRAW / max(1, o.alone)))
                )
                for f, o in zip(fails, outcomes, strict=True)
            )
        )
        limit = sql.SQL(" LIMIT {}").format(sql.Literal(4 * _RARE_OVERDRAW * len(outcomes)))
    query = sql.SQL("SELECT document_id, {} FROM ({}) t WHERE {}{}").format(
        sql.SQL(", ").join(fails), flags, where, limit
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), params)
        return cursor.fetchall()


def _dedup_samples(ruleset: RuleSet, size: int) -> list[int]:
    """Removed duplicates from a few groups after a random point of the runs' group ids.

    An index range scan of the members from a random group id on (wrapping around
    once) costs milliseconds where ``ORDER BY random()`` over the whole removed set
    costs a scan of it; neighbouring groups are unrelated documents.
    """
    if not ruleset.dedup.active:
        return []
    removed, params = dedup_removed_sql(ruleset.dataset_id, ruleset.dedup, distinct=False)
    runs = sql.SQL(" OR ").join(sql.SQL("(kind = %s AND run_key = %s)") for _ in ruleset.dedup.runs)
    run_params = [v for item in ruleset.dedup.runs.items() for v in item]
    with connection.cursor() as cursor:
        pg = cursor.connection
        cursor.execute(
            sql.SQL(
                "SELECT min(id), max(id) FROM curation_duplicategroup "
                "WHERE dataset_id = %s AND ({})"
            )
            .format(runs)
            .as_string(pg),
            [ruleset.dataset_id, *run_params],
        )
        low, high = cursor.fetchone()
        if low is None:
            return []
        found: list[int] = []
        for start in (random.randint(low, high), low):
            cursor.execute(
                sql.SQL("{} AND m.group_id >= %s ORDER BY m.group_id LIMIT {}")
                .format(removed, sql.Literal(8 * size))
                .as_string(pg),
                [*params, start],
            )
            found += [r[0] for r in cursor.fetchall() if r[0] not in found]
            if len(found) >= size:
                break
    return random.sample(found, min(size, len(found)))


def _sample_documents(ids: set[int]) -> dict[int, SampleDocument]:
    rows = (
        Document.objects.filter(pk__in=ids)
        .annotate(head=Substr("text", 1, PREVIEW_CHARS))
        .values_list("pk", "external_id", "head")
    )
    return {pk: SampleDocument(id=pk, external_id=ext, preview=head) for pk, ext, head in rows}
