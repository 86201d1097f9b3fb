"""Datasets, their documents and the imports that write them.

One module because each refers to the one before it: an import job to its dataset, a
document to its dataset and to the import job that wrote it.
"""

from __future__ import annotations

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
