"""Duplicate groups found by the dedup steps, their members and reviewers' verdicts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from curation.models.datasets import Dataset, Document


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
