"""Documents streamed from PostgreSQL and candidate pairs verified by exact Jaccard.

Shared by the MinHash corpus phases (inside one dataset, and across datasets):
both read texts a bounded chunk at a time, so memory does not grow with the
dataset or the number of candidate pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curation.models import Document as DocumentRow

# Documents read per query.
CHUNK = 2000
# Documents whose shingle sets are held at once while verifying candidate pairs.
VERIFY_DOCS = 4000


def document_chunks(
    dataset_id: int | list[int], ids: list[int] | None = None
) -> Iterator[list[tuple[int, str, int]]]:
    """(id, text, char_count) in id order, a chunk at a time (keyset pagination).

    ``dataset_id`` may name several datasets, for pairs that cross datasets;
    ``ids`` limits the read to those documents.
    """
    datasets = dataset_id if isinstance(dataset_id, list) else [dataset_id]
    qs = DocumentRow.objects.filter(dataset_id__in=datasets).order_by("id")
    if ids is not None:
        for start in range(0, len(ids), CHUNK):
            wanted = sorted(ids[start : start + CHUNK])
            yield list(qs.filter(id__in=wanted).values_list("id", "text", "char_count"))
        return
    last = 0
    while True:
        rows = list(qs.filter(id__gt=last).values_list("id", "text", "char_count")[:CHUNK])
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def band_bucket_rows(step: Any, dataset_id: int) -> Iterator[list[tuple[int, int, int]]]:
    """(band, bucket, document id) of every document, a chunk of documents at a time.

    ``step`` gives the buckets (``step.band_buckets(text)``, None for a text
    without words, which then has no row).
    """
    for chunk in document_chunks(dataset_id):
        yield [
            (band, bucket, pk)
            for pk, text, _ in chunk
            for band, bucket in enumerate(step.band_buckets(text) or ())
        ]


def verified_pairs(
    step: Any,
    dataset_id: int | list[int],
    pairs: list[tuple[int, int]],
    lengths: dict[int, int],
) -> Iterator[tuple[int, int, float]]:
    """Exact Jaccard of each candidate pair, in chunks of at most VERIFY_DOCS documents.

    ``step`` gives the shingles (``step.shingles(text)``). Only one chunk's shingle
    sets are in memory at once (a document in several chunks is read again), so
    memory is bounded whatever the number of candidates. Pairs come sorted, which
    keeps a document's pairs mostly in one chunk. ``lengths`` collects each
    document's character count.
    """
    chunk: list[tuple[int, int]] = []
    documents: set[int] = set()
    for pair in [*pairs, None]:
        new = 0 if pair is None else (pair[0] not in documents) + (pair[1] not in documents)
        if pair is not None and len(documents) + new <= VERIFY_DOCS:
            chunk.append(pair)
            documents.update(pair)
            continue
        shingles = _shingles(step, dataset_id, sorted(documents), lengths)
        for a, b in chunk:
            yield a, b, jaccard(shingles[a], shingles[b])
        del shingles
        chunk, documents = ([pair], set(pair)) if pair is not None else ([], set())


def _shingles(
    step: Any, dataset_id: int | list[int], ids: list[int], lengths: dict[int, int]
) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for rows in document_chunks(dataset_id, ids):
        for pk, text, chars in rows:
            found[pk] = step.shingles(text)
            lengths[pk] = chars
    return found


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
