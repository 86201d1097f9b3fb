"""Recipes, their immutable versions, and the export snapshots made from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from curation.models.datasets import Dataset


class Recipe(models.Model):
    """A named, versioned set of rules over signals plus a dedup policy, for one dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="recipes")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipes",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "slug"], name="recipe_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name


class RecipeVersion(models.Model):
    """One immutable version of a recipe: what it keeps is reproducible from these fields."""

    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    rules = models.JSONField(
        default=list,
        help_text='Ordered rules: [{"signal": "doc_stats_words", "op": ">=", "value": 50}, '
        '{"signal": "perplexity", "op": "<=", "percentile": 90}]; ops ==, !=, >=, <=, >, <, '
        "in, is_null, not_null.",
    )
    dedup = models.JSONField(
        default=dict,
        help_text='Dedup policy by group kind: {"exact": true, "minhash": true, '
        '"semantic": false}: keep only the representative of each group of a kind set true.',
    )
    resolved = models.JSONField(
        default=dict,
        blank=True,
        help_text="Percentile thresholds resolved to values when the version was saved, by "
        'rule index: {"1": 412.7}; signal ids and dtypes as they were then.',
    )
    counts = models.JSONField(
        default=dict,
        blank=True,
        help_text='Counts when saved: {"documents": n, "kept": k, "waterfall": [...], '
        '"alone": [...]}.',
    )
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipe_versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recipe", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["recipe", "version"], name="recipeversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.recipe.name} v{self.version}"


class ExportSnapshot(models.Model):
    """An immutable export of a dataset (or a recipe version's kept documents) to files."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        PARQUET = "parquet", "Parquet"
        JSONL = "jsonl", "JSONL"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="exports")
    recipe_version = models.ForeignKey(
        RecipeVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exports",
    )
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.PARQUET)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"columns": ["id", "text", "meta"], "signals": ["..."], "redact_pii": true, '
        '"shard_rows": 100000}',
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    path = models.CharField(max_length=1000, blank=True, help_text="Directory of the files.")
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)
    files = models.JSONField(default=list, blank=True, help_text="Written files with sizes.")
    error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exports",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.dataset_id}"
