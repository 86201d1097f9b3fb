"""Recipes: versioned rules over signals plus a dedup policy; previews and kept sets.

``recipe_preview`` shows what unsaved rules keep (counts, waterfall, samples);
``recipe_version_save`` validates, resolves and stores an immutable version;
``recipe_kept_query`` is the SQL of the documents a version keeps (exports read
it). Rules and their semantics: ``rules``; the SQL they become: ``plan``.
"""

from __future__ import annotations

from curation.services.recipes.plan import RuleSet, ruleset_for_version, ruleset_resolve
from curation.services.recipes.preview import (
    DedupOutcome,
    Preview,
    RuleOutcome,
    SampleDocument,
    recipe_preview,
)
from curation.services.recipes.rules import RecipeRuleError, Rule
from curation.services.recipes.versions import (
    recipe_create,
    recipe_kept_query,
    recipe_version_save,
)

__all__ = [
    "DedupOutcome",
    "Preview",
    "RecipeRuleError",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "SampleDocument",
    "recipe_create",
    "recipe_kept_query",
    "recipe_preview",
    "recipe_version_save",
    "ruleset_for_version",
    "ruleset_resolve",
]
