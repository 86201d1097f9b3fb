"""Pipelines, their runs and the batches a run is cut into."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from curation.models import Dataset


class Pipeline(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    definition = models.JSONField(
        default=list,
        help_text='Ordered steps: [{"step": "gopher_quality", "params": {"min_doc_words": 50}}].',
    )
    version = models.PositiveIntegerField(
        default=1, help_text="Raised by every change of the definition."
    )
    batch_size = models.PositiveIntegerField(default=1000, help_text="Documents per task.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("pipeline_detail", args=[self.slug])


class PipelineRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pipeline_runs")
    pipeline_version = models.PositiveIntegerField()
    definition = models.JSONField(
        help_text="The exact steps run: name, version, device, params, signals."
    )
    stages = models.JSONField(
        default=list,
        help_text="Step indexes run together on each batch: consecutive steps of one device.",
    )
    batch_size = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pipeline_runs",
    )
    trigger = models.CharField(
        max_length=20, default="manual", help_text="manual, cli, schedule or import."
    )
    results = models.JSONField(
        default=dict,
        blank=True,
        help_text="What corpus phases report, by step name: e.g. semantic dedup's "
        '{"semantic_dedup": {"eps": [{"eps": 0.05, "removed": 120}], "clusters": 100}}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.pipeline_id} on {self.dataset_id}"

    def get_absolute_url(self) -> str:
        return reverse("run_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED}


class RunBatch(models.Model):
    """One stage (steps run together) over one contiguous id range of documents: one task."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="batches")

    class Phase(models.TextChoices):
        DOCUMENT = "document", "Documents"
        CORPUS = "corpus", "Whole dataset"

    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.DOCUMENT)
    stage_index = models.PositiveIntegerField(
        help_text="Index into the run's stages; for the corpus phase, the step's index."
    )
    first_document_id = models.BigIntegerField()
    last_document_id = models.BigIntegerField()
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Compute and write time.")
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Traceback of the last failure.")
    failed_document_id = models.BigIntegerField(
        null=True, blank=True, help_text="The first document the step failed on, when found."
    )
    failed_step_index = models.PositiveIntegerField(
        null=True, blank=True, help_text="The step of the stage that failed."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "phase", "stage_index", "first_document_id"],
                name="runbatch_unique_range",
            )
        ]
        indexes = [models.Index(fields=["run", "status"], name="runbatch_status_idx")]

    def __str__(self) -> str:
        return f"batch {self.pk} of run {self.run_id} stage {self.stage_index}"


class PipelineSchedule(models.Model):
    """Run a pipeline on a dataset on a cron schedule, or after each import into it."""

    class Trigger(models.TextChoices):
        CRON = "cron", "On a schedule"
        IMPORT = "import", "After each import"

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="schedules")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="schedules")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    cron = models.CharField(
        max_length=100, blank=True, help_text='Five cron fields, e.g. "0 3 * * *" (03:00 daily).'
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pipeline_schedule",
    )
    enabled = models.BooleanField(default=True)
    last_run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pipeline__name", "dataset__name"]

    def __str__(self) -> str:
        when = self.cron if self.trigger == self.Trigger.CRON else "after each import"
        return f"{self.pipeline} on {self.dataset}: {when}"


class QualityClassifier(models.Model):
    """Logistic regression on stored embeddings, trained from labels over signals (DFN / DsDm).

    A retrain under the same name makes a new version; old versions are kept. Applying one
    writes the signal ``qc_<name>`` (its probability of the positive class) for every document
    of a dataset that has a vector of ``embedding_model``; the apply fields describe the latest
    application.
    """

    class Status(models.TextChoices):
        TRAINED = "trained", "Trained, not applied"
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Applied"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=80)
    version = models.PositiveIntegerField(help_text="1, 2, ... per name; each retrain adds one.")
    dataset = models.ForeignKey(
        Dataset,
        on_delete=models.CASCADE,
        related_name="quality_classifiers",
        help_text="The dataset whose labelled documents trained it.",
    )
    embedding_model = models.CharField(
        max_length=500,
        help_text='The stored vectors it reads: "sentence-transformers/all-MiniLM-L6-v2".',
    )
    labels = models.JSONField(
        help_text="The training sets as rules over signals: "
        '{"positive": {"signal": "fineweb_quality_keep", "op": "==", "value": true}, '
        '"negative": "rest"}; a side is one rule or a list of rules that must all hold '
        '(ops ==, !=, >=, <=, >, <); "rest" is every other document with a value for the '
        "positive side's signals.",
    )
    folds = models.PositiveSmallIntegerField(default=5, help_text="Cross-validation folds.")
    c = models.FloatField(default=1.0, help_text="Inverse regularisation strength (C).")
    metrics = models.JSONField(
        default=dict,
        blank=True,
        help_text="Cross-validation: per fold and mean precision, recall, F1 and ROC AUC at "
        "the threshold, and the label counts.",
    )
    weights = models.JSONField(
        default=list, help_text="Coefficients, one per vector dimension (all labels, refit)."
    )
    intercept = models.FloatField(default=0.0)
    threshold = models.FloatField(
        default=0.5, help_text="Probability at and above which a document counts as positive."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="quality_classifiers",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINED)
    error = models.TextField(blank=True, help_text="Why the last application failed.")
    applied_to = models.ForeignKey(
        Dataset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="applied_quality_classifiers",
        help_text="The dataset of the latest application.",
    )
    signal_name = models.CharField(max_length=100, blank=True, help_text="The signal written.")
    documents_total = models.BigIntegerField(default=0, help_text="Documents with a vector.")
    documents_scored = models.BigIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="qualityclassifier_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("classifier_detail", args=[self.pk])

    @property
    def is_applying(self) -> bool:
        return self.status in {self.Status.PENDING, self.Status.RUNNING}

    @property
    def progress(self) -> float | None:
        if self.status == self.Status.DONE:
            return 1.0
        if not self.documents_total:
            return None
        return min(1.0, self.documents_scored / self.documents_total)


class GenerationPreview(models.Model):
    """A generator step tried on a dataset's first documents by a worker, written nowhere else.

    The web request checks the step, its template and backend, then queues the
    preview on the step's device queue; the page polls until ``rows`` arrive.
    A user's previews older than a day are deleted when they start a new one.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generation_previews"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    spec = models.JSONField(help_text='The step previewed: {"step": NAME, "params": {...}}.')
    n = models.PositiveSmallIntegerField(help_text="Documents previewed (the first n).")
    queue = models.CharField(max_length=20, help_text="The worker queue it runs on (cpu, gpu).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows = models.JSONField(
        default=list,
        help_text="Per document: id, prompt, records (external_id, text) and counts.",
    )
    problem = models.TextField(blank=True, help_text="Why the preview failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"preview {self.token} of {self.spec.get('step')}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
