"""The cached full-text hits of a query as a bitmap over document ids."""

from __future__ import annotations

from django.db import models

from curation.models.datasets import Dataset


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
