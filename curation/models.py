"""Core domain: datasets, documents, signals, duplicate groups, imports, API tokens.

Signal values do not live in a Django model: they are typed columns of one wide
table partitioned by dataset (``curation_signal_row``, see migration 0002 and
``services/signals.py``), chosen by measurement (bench/signal_storage_bench.py).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(
        max_length=1000, blank=True, help_text="Where the documents came from (URL, path, note)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="datasets",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The dataset this one was derived from.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Derived from Document rows after each import (recounted, never incremented).
    document_count = models.BigIntegerField(default=0)
    char_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dataset_detail", args=[self.slug])


class ImportJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        UPLOAD = "upload", "Browser upload"
        CLI = "cli", "Command line"
        API = "api", "API"
        PYTHON = "python", "Python"
        SAMPLE = "sample", "Sample data"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_jobs",
    )
    origin = models.CharField(max_length=10, choices=Origin.choices)
    source_path = models.TextField(help_text="File or directory on the server that is read.")
    source_name = models.CharField(max_length=500, help_text="Name shown to users.")
    format = models.CharField(max_length=10, blank=True, help_text="Blank: detected.")
    text_field = models.CharField(max_length=200, default="text")
    id_field = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, help_text="Why the whole import failed, if it did.")
    bytes_total = models.BigIntegerField(default=0)
    rows_read = models.BigIntegerField(default=0)
    rows_imported = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    rejection_counts = models.JSONField(
        default=dict, blank=True, help_text="Rejected rows per reason kind, all of them."
    )
    checkpoint = models.JSONField(
        null=True,
        blank=True,
        help_text="Last committed record: {source, number, offset}; a resumed run starts after it.",
    )
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker task was last queued for this job."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(
        default=0.0, help_text="Seconds spent reading and writing, summed over attempts."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.source_name} into {self.dataset_id}"

    def get_absolute_url(self) -> str:
        return reverse("import_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def rows_per_second(self) -> float | None:
        if self.active_seconds <= 0:
            return None
        return self.rows_read / self.active_seconds

    @property
    def progress(self) -> float | None:
        """Fraction of the source read, from the last committed byte offset when known."""
        if self.is_finished:
            return 1.0
        if not self.checkpoint or not self.bytes_total:
            return None
        done = self.checkpoint.get("bytes_done")
        if done is None:
            return None
        return min(1.0, done / self.bytes_total)


class ImportRejection(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    source = models.CharField(max_length=1000)
    number = models.BigIntegerField(help_text="1-based line or row number; 0: the whole file.")
    field = models.CharField(max_length=200, blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["source", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "source", "number"], name="import_rejection_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.number}: {self.reason}"


class Document(models.Model):
    # No FK indexes: (dataset, external_id) covers dataset lookups, and every index
    # slows the COPY that writes these rows. No FK constraints either: PostgreSQL
    # checks them with a trigger per row, which halved COPY throughput
    # (bench/import_bench.py). Only the import service writes documents, with ids it
    # has just read, and dataset_delete removes them with their dataset.
    dataset = models.ForeignKey(
        Dataset,
        on_delete=models.CASCADE,
        related_name="documents",
        db_index=False,
        db_constraint=False,
    )
    external_id = models.TextField()
    text = models.TextField()
    meta = models.JSONField(
        default=dict, blank=True, help_text="Every source field except the text and the id."
    )
    content_hash = models.BigIntegerField(
        help_text="64-bit XXH3 of the text lowercased with whitespace collapsed."
    )
    char_count = models.IntegerField()
    word_count = models.IntegerField()
    line_count = models.IntegerField()
    import_job = models.ForeignKey(
        ImportJob,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="documents",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "external_id"], name="document_unique_external_id"
            )
        ]
        indexes = [
            models.Index(fields=["dataset", "id"], name="document_dataset_id_idx"),
            models.Index(fields=["dataset", "content_hash"], name="document_hash_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.dataset_id})"

    def get_absolute_url(self) -> str:
        return reverse("document_detail", args=[self.dataset.slug, self.pk])


class Signal(models.Model):
    """A signal definition. Its values are the column ``column_name`` of the signal table."""

    class Dtype(models.TextChoices):
        FLOAT = "float", "Float"
        INT = "int", "Integer"
        BOOL = "bool", "Boolean"
        TEXT = "text", "Text"
        JSON = "json", "JSON"

    name = models.SlugField(max_length=100, unique=True)
    step = models.CharField(max_length=100, help_text="Name of the step that produces it.")
    step_version = models.CharField(max_length=50)
    dtype = models.CharField(max_length=5, choices=Dtype.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def column_name(self) -> str:
        return f"s_{self.pk}"


class DuplicateGroup(models.Model):
    class Kind(models.TextChoices):
        EXACT = "exact", "Exact"
        MINHASH = "minhash", "MinHash"
        SEMANTIC = "semantic", "Semantic"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="duplicate_groups")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    step = models.CharField(max_length=100)
    step_version = models.CharField(max_length=50)
    run_key = models.CharField(
        max_length=100,
        help_text="The run that found the group; a rerun replaces its groups.",
    )
    size = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["dataset", "kind", "-size"], name="dupgroup_browse_idx")]

    def __str__(self) -> str:
        return f"{self.kind} group {self.pk} ({self.size})"


class DuplicateMember(models.Model):
    group = models.ForeignKey(DuplicateGroup, on_delete=models.CASCADE, related_name="members")
    document = models.ForeignKey(
        Document, on_delete=models.CASCADE, related_name="duplicate_memberships"
    )
    similarity = models.FloatField(
        null=True, blank=True, help_text="Similarity to the group's representative."
    )
    is_representative = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "document"], name="dupmember_unique")
        ]

    def __str__(self) -> str:
        return f"{self.document_id} in {self.group_id}"


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a SHA-256 of the key is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def new_key() -> str:
        return "wn_" + secrets.token_urlsafe(32)


class EvalSet(models.Model):
    """An evaluation set uploaded so that training data can be checked for its text."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source_name = models.CharField(max_length=500, blank=True)
    item_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvalItem(models.Model):
    eval_set = models.ForeignKey(EvalSet, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=500)
    text = models.TextField(help_text="The item's fields joined (question, answer, ...).")
    meta = models.JSONField(default=dict, blank=True, help_text="The item's other fields.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["eval_set", "external_id"], name="evalitem_unique_id")
        ]

    def __str__(self) -> str:
        return f"{self.eval_set_id}:{self.external_id}"


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


class DuplicateVerdict(models.Model):
    """A reviewer's "not a duplicate" mark on a whole group or on one pair of its members.

    Recipes honour it: a document whose group (or whose pair with the group's
    representative) is marked is not removed by that group's dedup policy.
    """

    class Verdict(models.TextChoices):
        NOT_DUPLICATE = "not_duplicate", "Not a duplicate"
        DUPLICATE = "duplicate", "Confirmed duplicate"

    group = models.ForeignKey(DuplicateGroup, on_delete=models.CASCADE, related_name="verdicts")
    document_a = models.BigIntegerField(
        null=True, blank=True, help_text="With document_b: the pair judged; empty: whole group."
    )
    document_b = models.BigIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicate_verdicts",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "document_a", "document_b"],
                name="dupverdict_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.verdict} on group {self.group_id}"


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


class TextHits(models.Model):
    """The documents a full-text query matches, kept as a bitmap over document ids.

    A cache, not a fact: ``curation/explorer/text_hits.py`` writes one when it reads
    every hit of a common word for an exact count, and for the dataset's most common
    words ahead of any query (``common``), so that counts and pages of those words with
    signal filters test one bit per signal row instead of visiting every hit's document.
    ``version`` is the dataset's document count and id range when it was built
    (documents are only ever appended, or deleted with their dataset); a row of another
    version is never read. The table is UNLOGGED
    (migration 0007): a crash empties it, which only costs a rebuild.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    text = models.TextField(
        help_text="The query as PostgreSQL reads it: websearch_to_tsquery(..)::text."
    )
    version = models.CharField(max_length=100)
    first_id = models.BigIntegerField(help_text="The document id of bit 0.")
    last_id = models.BigIntegerField()
    hits = models.BigIntegerField(help_text="How many bits are set.")
    bits = models.BinaryField(help_text="Bit n (get_bit order) is document first_id + n.")
    common = models.BooleanField(
        default=False,
        help_text="One of the dataset's most common words, built ahead of any query.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "text", "version"], name="texthits_unique")
        ]

    def __str__(self) -> str:
        return f"{self.text!r} in {self.dataset_id} ({self.hits} hits)"
