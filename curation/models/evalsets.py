"""Evaluation sets and their items: text that training data is checked for (decontamination)."""

from __future__ import annotations

from django.db import models


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
