"""Annotation projects: questions, members, items, leased assignments and annotations.

The queue is made of facts: an ``Assignment`` row per (item, annotator) hand-out and an
``Annotation`` row per (item, annotator, question). An item's ``status`` and
``submitted_count`` are recomputed from the submitted annotations after every change
(``services.items.item_status_recompute``), never incremented.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from curation.models import Dataset, Document


class AnnotationProject(models.Model):
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="annotation_projects"
    )
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    guidelines = models.TextField(
        blank=True, help_text="Markdown shown beside every item (raw HTML is escaped)."
    )
    k = models.PositiveSmallIntegerField(
        default=1, help_text="Annotations wanted per item, each by a different annotator."
    )
    lease_seconds = models.PositiveIntegerField(
        default=900,
        help_text="How long an annotator holds an item; after that it returns to the pool.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotation_projects",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Recounted from Item rows after items are added (never incremented).
    item_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotate:project_detail", args=[self.slug])


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE_LABEL = "single_label", "Single label"
        MULTI_LABEL = "multi_label", "Multiple labels"
        SPANS = "spans", "Spans over the text"
        RATING = "rating", "Ratings on attributes"
        PAIRWISE = "pairwise", "Pairwise preference"
        REWRITE = "rewrite", "Free-text rewrite"

    project = models.ForeignKey(
        AnnotationProject, on_delete=models.CASCADE, related_name="questions"
    )
    order = models.PositiveSmallIntegerField(default=0)
    key = models.SlugField(max_length=50)
    prompt = models.CharField(max_length=500, blank=True, help_text="Shown above the answers.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per kind: {"labels": [...]} (single/multi label, spans; spans also '
        '"allow_overlap"), {"attributes": [...], "scale": [0, 4]} (rating), '
        '{"strengths": [...], "allow_tie": true} (pairwise), {"source": "document"|"blank", '
        '"max_chars": n} (rewrite). Normalized by services.projects.question_config_clean.',
    )

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="question_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        CURATOR = "curator", "Curator"
        REVIEWER = "reviewer", "Reviewer"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="projectmember_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} as {self.role} in {self.project_id}"


class Item(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "No annotation yet"
        PARTIAL = "partial", "Fewer than k annotations"
        COMPLETE = "complete", "k annotations"

    project = models.ForeignKey(AnnotationProject, on_delete=models.CASCADE, related_name="items")
    # No FK constraints to documents: items are written set-based by the million, and
    # documents only disappear with their dataset, which takes its projects along.
    document = models.ForeignKey(
        Document,
        on_delete=models.DO_NOTHING,
        related_name="annotation_items",
        db_index=False,
        db_constraint=False,
    )
    second_document = models.ForeignKey(
        Document,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="annotation_items_second",
        db_index=False,
        db_constraint=False,
        help_text="The other text of a pairwise item (text B).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    submitted_count = models.PositiveIntegerField(
        default=0, help_text="Annotators who submitted; recomputed, never incremented."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "document", "second_document"],
                name="item_unique_document",
                nulls_distinct=False,
            )
        ]
        indexes = [
            # The queue: open items of a project, partly annotated ones first, then by id.
            models.Index(
                fields=["project", "-submitted_count", "id"],
                name="item_queue_idx",
                condition=Q(status__in=["pending", "partial"]),
            ),
            models.Index(fields=["project", "status"], name="item_status_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} ({self.status})"


class Assignment(models.Model):
    """One hand-out of an item to an annotator; at most one per (item, user), ever."""

    class State(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired (given to someone else)"

    project = models.ForeignKey(
        AnnotationProject, on_delete=models.CASCADE, related_name="assignments"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_assignments"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.LEASED)
    leased_until = models.DateTimeField()
    time_spent_ms = models.PositiveBigIntegerField(
        default=0, help_text="Time the annotator spent on the page, as the browser measured it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was submitted or skipped (for going back)."
    )

    class Meta:
        constraints = [
            # Never the same item twice to one person; also "one live assignment".
            models.UniqueConstraint(fields=["item", "user"], name="assignment_unique_item_user")
        ]
        indexes = [
            models.Index(fields=["project", "user", "state"], name="assignment_user_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} to {self.user_id} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("annotate:assignment_detail", args=[self.project.slug, self.pk])


class Annotation(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations"
    )
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="annotations")
    values = models.JSONField(
        help_text='The answer, validated against the question: {"label": ..} (single), '
        '{"labels": [..]} (multi), {"spans": [{"start", "end", "label"}]} (character '
        'offsets), {"ratings": {attribute: n}}, {"choice": "a"|"b"|"tie", "strength": n}, '
        '{"text": ..} (rewrite).'
    )
    draft = models.BooleanField(default=True, help_text="Autosaved, not submitted yet.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One answer per (item, user, question): a draft that becomes the submitted one.
            models.UniqueConstraint(
                fields=["item", "user", "question"], name="annotation_unique_answer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.question_id} on item {self.item_id} by {self.user_id}"
