"""Signal definitions (the values are columns of the signal table, not a model)."""

from __future__ import annotations

from django.db import models


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


class SignalWrite(models.Model):
    """One write of signal values to a dataset's rows, in the transaction that wrote them.

    Every writer of the signal table adds a row (``services.signals.signals_changed``),
    so the sum of ``writes`` over a dataset's rows visible to a snapshot says exactly
    which writes it sees: committed writes only accumulate. The explorer keeps columns
    of signal values in memory (``curation/explorer/columns.py``) and reads them only
    while this sum is the one they were read at. Rows are inserted, never updated, so
    writers never wait on each other for them; ``signal_writes_compact`` replaces a
    dataset's rows by one of the same sum, in one transaction, so every snapshot sees
    the same sum before and after.
    """

    dataset = models.ForeignKey("curation.Dataset", on_delete=models.CASCADE, related_name="+")
    writes = models.PositiveIntegerField(
        default=1, help_text="Writes this row stands for: several once compacted into one."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.writes} signal write(s) to dataset {self.dataset_id}"
