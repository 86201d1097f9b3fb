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
    disagreement = models.BooleanField(
        default=False,
        help_text="Submitted answers differ on some question; recomputed with the status.",
    )
    reviewed = models.BooleanField(
        default=False,
        help_text="Every question has a final answer; recomputed when one is recorded.",
    )
    review_leased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_leases",
        help_text="The reviewer who has the item open (see review_leased_until).",
    )
    review_leased_until = models.DateTimeField(
        null=True, blank=True, help_text="Until when the item is held for that reviewer."
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
            # The review queue: complete items still lacking a final answer, in item
            # order, or disagreements first (or only). The queries order by the constant
            # flag too (reviewed, id): the primary key cannot give that order, so the
            # planner does not walk it past the reviewed items, which gather at low ids.
            models.Index(
                fields=["project", "reviewed", "id"],
                name="item_review_idx",
                condition=Q(status="complete", reviewed=False),
            ),
            models.Index(
                fields=["project", "-disagreement", "id"],
                name="item_review_disagree_idx",
                condition=Q(status="complete", reviewed=False),
            ),
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


class FinalAnswer(models.Model):
    """The reviewed answer to one question of an item, kept apart from the raw annotations.

    Written by a reviewer who accepts an annotator's answer, corrects it or adjudicates a
    disagreement; raw ``Annotation`` rows are never changed by review. Final answers are
    what becomes signals on documents, training labels and exported annotation columns.
    """

    class Source(models.TextChoices):
        ACCEPTED = "accepted", "Accepted as annotated"
        CORRECTED = "corrected", "Corrected by the reviewer"
        ADJUDICATED = "adjudicated", "Adjudicated between disagreeing annotators"

    project = models.ForeignKey(
        AnnotationProject, on_delete=models.CASCADE, related_name="final_answers"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="final_answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="final_answers")
    values = models.JSONField(help_text="The answer, in the same shape as Annotation.values.")
    source = models.CharField(max_length=12, choices=Source.choices)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="final_answers",
    )
    note = models.TextField(blank=True, help_text="Why the reviewer decided so (optional).")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "question"], name="finalanswer_unique")
        ]
        indexes = [models.Index(fields=["project", "question"], name="finalanswer_project_idx")]

    def __str__(self) -> str:
        return f"final {self.question_id} on item {self.item_id} ({self.source})"


class Suggestion(models.Model):
    """A pre-annotation from a model or a rule, shown to annotators (accepted with one key)."""

    class Origin(models.TextChoices):
        CLASSIFIER = "classifier", "Classifier score"
        SIGNAL_RULE = "signal_rule", "Signal rule"
        JUDGE = "judge", "LLM judge"

    project = models.ForeignKey(
        AnnotationProject, on_delete=models.CASCADE, related_name="suggestions"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="suggestions")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="suggestions")
    origin = models.CharField(max_length=12, choices=Origin.choices)
    source = models.CharField(
        max_length=200, help_text="What made it, e.g. 'qc_quality >= 0.5' or a judge's name."
    )
    values = models.JSONField(help_text="The suggested answer, shaped as Annotation.values.")
    score = models.FloatField(null=True, blank=True, help_text="The model's score, if any.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "question", "source"], name="suggestion_unique_source"
            )
        ]
        indexes = [models.Index(fields=["project", "question"], name="suggestion_project_idx")]

    def __str__(self) -> str:
        return f"suggestion {self.question_id} on item {self.item_id} from {self.source}"
