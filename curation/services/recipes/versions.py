"""Recipe versions: create recipes, save immutable versions, the kept-documents SQL."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify
from psycopg import sql

from curation.errors import PermanentError
from curation.models import Dataset, Recipe, RecipeVersion
from curation.services.recipes.plan import (
    DedupPlan,
    ruleset_for_version,
    ruleset_resolve,
)
from curation.services.recipes.preview import preview_evaluate
from curation.services.recipes.rules import DEDUP_KINDS, Rule, signal_snapshot

logger = logging.getLogger(__name__)


def recipe_create(
    *,
    dataset: Dataset,
    name: str,
    description: str = "",
    user: User | AnonymousUser | None = None,
) -> Recipe:
    name = name.strip()
    if not name:
        raise PermanentError("a recipe needs a name")
    if Recipe.objects.filter(dataset=dataset, name=name).exists():
        raise PermanentError(f"{dataset.name} already has a recipe named {name!r}: pick another")
    base = slugify(name)[:180] or "recipe"
    slug, n = base, 1
    while Recipe.objects.filter(dataset=dataset, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return Recipe.objects.create(
        dataset=dataset,
        name=name,
        slug=slug,
        description=description,
        created_by=user if user is not None and user.is_authenticated else None,
    )


@transaction.atomic
def recipe_version_save(
    *,
    recipe: Recipe,
    rules: Any,
    dedup: Any,
    user: User | AnonymousUser | None,
    note: str = "",
) -> RecipeVersion:
    """Validate, resolve and store a new immutable version with its counts.

    1. Validate rules and the dedup policy (``RecipeRuleError`` names rule and field).
    2. Resolve percentiles to thresholds, the dedup runs and the verdicts in force,
       and record them with each rule's signal (id, dtype, step, step version).
    3. Count what the version keeps and store it as version ``max + 1``.
    """
    dataset = recipe.dataset
    ruleset = ruleset_resolve(dataset_id=dataset.pk, rules=rules, dedup=dedup)
    counts = preview_evaluate(ruleset, samples=0).counts_json()
    Recipe.objects.select_for_update().filter(pk=recipe.pk).first()
    latest = recipe.versions.aggregate(n=Max("version"))["n"] or 0
    version = RecipeVersion.objects.create(
        recipe=recipe,
        version=latest + 1,
        rules=[r.as_json() for r in ruleset.rules],
        dedup={k: k in ruleset.dedup.kinds for k in DEDUP_KINDS},
        resolved=_resolved_json(ruleset.rules, ruleset.dedup),
        counts=counts,
        note=note,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    recipe.save(update_fields=["updated_at"])
    logger.info("saved %s: keeps %d of %d", version, counts["kept"], counts["documents"])
    return version


def _resolved_json(rules: tuple[Rule, ...], plan: DedupPlan) -> dict[str, Any]:
    return {
        "thresholds": {str(r.index): r.threshold for r in rules if r.percentile is not None},
        "signals": {str(r.index): signal_snapshot(r) for r in rules},
        "dedup": plan.as_json(),
    }


def recipe_kept_query(*, version: RecipeVersion) -> tuple[sql.Composable, list[Any]]:
    """SQL selecting ``document_id`` of every document ``version`` keeps in its dataset.

    Thresholds, signal columns, dedup runs and verdicts are those resolved when the
    version was saved, so the answer only changes if the signal values do. Rows
    come in no particular order; wrap it (``... WHERE id IN (<query>)`` or a join)
    and order outside. Placeholders are ``%s``, parameters in order.
    """
    ruleset = ruleset_for_version(version=version)
    flags, params = ruleset.flags_sql()
    query = sql.SQL("SELECT document_id FROM ({}) t WHERE {}").format(
        flags, ruleset.kept_condition()
    )
    return query, params
