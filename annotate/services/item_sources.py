"""More ways to add items: a recipe slice, the borderline band of a score (active learning).

Both are one INSERT ... SELECT like ``items.items_add_from_dataset``, and both take only
documents that are not items of the project yet, so calling them again adds the next
documents instead of failing or duplicating: another round of active learning after the
classifier was retrained, or ``n`` more documents from the slice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import connection, transaction
from psycopg import sql

from annotate.errors import ProjectError
from annotate.models import AnnotationProject
from annotate.services.items import (
    ItemsAdded,
    Sample,
    _after_add,
    item_insert_sql,
    items_add_from_dataset,
)
from curation.models import RecipeVersion, Signal
from curation.services.recipes import recipe_kept_query
from curation.services.signals import TABLE as SIGNAL_TABLE

logger = logging.getLogger(__name__)

RECIPE = "recipe"
BORDERLINE = "borderline"
# What the items form offers: the dataset samplers, then the two sources here.
SOURCE_CHOICES = [
    *Sample.choices,
    (RECIPE, "Documents a saved recipe version keeps (n of them at random, if n is set)"),
    (BORDERLINE, "The n documents whose signal is nearest the threshold (active learning)"),
]

# Only single-document items count as "already in the project".
_NOT_AN_ITEM = (
    "NOT EXISTS (SELECT 1 FROM annotate_item i WHERE i.project_id = {project} "
    "AND i.document_id = {column} AND i.second_document_id IS NULL)"
)


def _insert(project: AnnotationProject, picked: sql.Composable, params: list[Any]) -> int:
    """Insert single-document items from ``picked`` (column ``document_id``)."""
    statement = item_insert_sql(
        project=project,
        picked=sql.SQL("SELECT document_id AS a, NULL::bigint AS b FROM ({}) s").format(picked),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection), params)
        return cursor.rowcount


@transaction.atomic
def items_add_from_recipe(
    *, project: AnnotationProject, version: RecipeVersion, n: int | None = None, seed: int = 0
) -> ItemsAdded:
    """Add the documents ``version`` keeps (its saved thresholds and dedup policy).

    With ``n``, take ``n`` of the kept documents not yet in the project, in an order
    fixed by ``seed`` (a hash of the document id); without, every kept document.
    """
    started = time.perf_counter()
    if version.recipe.dataset_id != project.dataset_id:
        raise ProjectError(
            f"recipe {version.recipe.name!r} is over another dataset; pick one of "
            f"{project.dataset.name}'s recipes"
        )
    if n is not None and n < 1:
        raise ProjectError("n must be at least 1 (or left out for the whole slice)")
    kept, params = recipe_kept_query(version=version)
    order = sql.SQL("ORDER BY hashint8extended(k.document_id, %s) LIMIT %s")
    picked = sql.SQL("SELECT k.document_id FROM ({kept}) k WHERE {fresh} {order}").format(
        kept=kept,
        fresh=sql.SQL(_NOT_AN_ITEM.format(project=int(project.pk), column="k.document_id")),
        order=order if n is not None else sql.SQL(""),
    )
    added = _insert(project, picked, [*params, *([seed, n] if n is not None else [])])
    _after_add(project, added)
    seconds = time.perf_counter() - started
    logger.info("project %s: added %d items from %s in %.2fs", project.pk, added, version, seconds)
    return ItemsAdded(added=added, seconds=seconds)


@transaction.atomic
def items_add_borderline(
    *, project: AnnotationProject, signal: Signal, threshold: float, n: int, seed: int = 0
) -> ItemsAdded:
    """Add the ``n`` documents whose ``signal`` is nearest ``threshold`` (uncertainty sampling).

    Documents already in the project and documents without a value are passed over;
    ties in distance are broken in an order fixed by ``seed``. With a classifier's
    probability (``qc_<name>``) and ``threshold`` 0.5 these are the documents the model
    is least sure about: the ones whose labels teach it most.
    """
    started = time.perf_counter()
    if n < 1:
        raise ProjectError("the borderline band needs n >= 1 documents")
    if signal.dtype not in (Signal.Dtype.FLOAT, Signal.Dtype.INT):
        raise ProjectError(f"signal {signal.name!r} holds {signal.dtype} values, not scores")
    value = sql.SQL("v.{}::float8").format(sql.Identifier(signal.column_name))
    picked = sql.SQL(
        "SELECT v.document_id FROM {table} v "
        "JOIN curation_document d ON d.id = v.document_id AND d.dataset_id = %s "
        "WHERE v.dataset_id = %s AND {value} IS NOT NULL AND {fresh} "
        "ORDER BY abs({value} - %s), hashint8extended(v.document_id, %s) LIMIT %s"
    ).format(
        table=sql.Identifier(SIGNAL_TABLE),
        value=value,
        fresh=sql.SQL(_NOT_AN_ITEM.format(project=int(project.pk), column="v.document_id")),
    )
    dataset = project.dataset_id
    added = _insert(project, picked, [dataset, dataset, float(threshold), seed, n])
    _after_add(project, added)
    seconds = time.perf_counter() - started
    logger.info(
        "project %s: added %d items nearest %s = %s in %.2fs",
        project.pk,
        added,
        signal.name,
        threshold,
        seconds,
    )
    return ItemsAdded(added=added, seconds=seconds)


def items_add(
    *,
    project: AnnotationProject,
    sample: str,
    n: int | None = None,
    seed: int = 0,
    signal: Signal | None = None,
    bins: int = 10,
    lo: float | None = None,
    hi: float | None = None,
    recipe_version: RecipeVersion | None = None,
    threshold: float | None = None,
) -> ItemsAdded:
    """Add items as the items form asks: a recipe slice, a borderline band or a sample."""
    if sample == RECIPE:
        if recipe_version is None:
            raise ProjectError("pick the recipe version whose kept documents to add")
        return items_add_from_recipe(project=project, version=recipe_version, n=n, seed=seed)
    if sample == BORDERLINE:
        if signal is None or threshold is None:
            raise ProjectError("the borderline band needs a numeric signal and a threshold")
        return items_add_borderline(
            project=project, signal=signal, threshold=threshold, n=n or 0, seed=seed
        )
    return items_add_from_dataset(
        project=project, sample=sample, n=n, seed=seed, signal=signal, bins=bins, lo=lo, hi=hi
    )
