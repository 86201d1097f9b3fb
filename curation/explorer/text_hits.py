"""Cached bitmaps of a text query's hits, so a common word costs what a signal filter costs.

The exact count of a common word with signal predicates visits the document of every
hit (GIN keeps heap positions, not ids): a word in 30 % of 1M documents visits nearly
every page of ``curation_document`` (~110k pages, 0.6-1.4 s on 2 cores,
``bench/explorer_bench.py``), and it did so again each time a slider moved. A curator
types a word once and then moves thresholds, so the first exact count that reads every
hit anyway keeps them: one bit per document id of the dataset's range, ``get_bit``
order, in ``curation_texthits`` (an UNLOGGED cache, 125 kB per million ids, written
compressed by TOAST). From then on the exact count of the word with any signal
predicates reads the dataset's signal partition alone and tests one bit per row
(``query._hit_bit_sql``), at the cost of a signal filter's count; the word alone
counts its bits.

A page reads the bits only when ``text_plan`` finds that the cheapest read: all the
signal matches, each testing a bit, then the page and the exact count of those
(``results_sql``). A page walked in its order with the bit as a filter was tried:
PostgreSQL cannot estimate ``get_bit``, and planned a scan and sort of the whole
partition (250-350 ms at 1M, where the window takes 40-90 ms).

A bitmap is valid for one ``version`` of the dataset: its document count and id range.
Documents are only appended by imports (then recounted) or deleted with their dataset,
so a bitmap of the same version holds exactly the hits a search would find now.

Only queries without a meta predicate use one, and the bits are tested on signal rows
only beside a signal predicate (a document without a signal row never matches one).
"""

from __future__ import annotations

import numpy as np
from django.db import IntegrityError, transaction
from psycopg import sql

from curation.explorer.filters import ExplorerQuery, HitBits
from curation.explorer.text_plan import DatasetIds, dataset_ids
from curation.models import TextHits

# From this many estimated hits, an exact count that reads every hit keeps them as bits.
# At 1M documents (bench/explorer_bench.py) a count through bits costs ~180 ms whatever
# the word; reading every hit of a word in 1 % of the documents costs about as much, of
# one in 3 % twice as much, and building the bits costs a little more than reading them.
BITS_MIN_HITS = 25_000
# Bitmaps kept per dataset (the newest); each is one bit per id of the dataset's range.
KEEP_PER_DATASET = 16
# No bitmap for a dataset whose ids span more than this (64M ids: 8 MB of bits a request).
MAX_SPAN = 64_000_000


def _version(ids: DatasetIds) -> str:
    return f"{ids.documents}:{ids.first}:{ids.last}"


def may_use_bits(query: ExplorerQuery) -> bool:
    """True when ``query``'s text hits may be kept as bits: full text and no meta predicate
    (the bits stand for the text alone)."""
    return bool(query.text) and query.meta is None


def cached_hits(query: ExplorerQuery, ids: DatasetIds) -> HitBits | None:
    """The cached bits of ``query.text`` for the dataset's current ``ids``, if any."""
    if not may_use_bits(query):
        return None
    row = (
        TextHits.objects.filter(dataset_id=query.dataset_id, text=query.text, version=_version(ids))
        .values_list("first_id", "last_id", "hits", "bits")
        .first()
    )
    if row is None:
        return None
    first, last, hits, bits = row
    return HitBits(first_id=first, last_id=last, hits=hits, bits=bytes(bits))


def text_hits_build(*, query: ExplorerQuery, ids: DatasetIds | None = None) -> HitBits | None:
    """Read every hit of ``query.text`` in its dataset, keep them as bits, and return them.

    None when the dataset is not one the explorer plans for (``text_plan``) or its ids
    span more than ``MAX_SPAN``.
    """
    from curation.explorer.query import DOCUMENT_TABLE, _execute, search_predicate

    ids = ids or dataset_ids(query.dataset_id)
    if ids is None or ids.last - ids.first + 1 > MAX_SPAN:
        return None
    statement = sql.SQL(
        "SELECT array_agg(d.id - %s) FROM {} d "
        "WHERE d.dataset_id = %s AND d.id BETWEEN %s AND %s AND {}"
    ).format(sql.Identifier(DOCUMENT_TABLE), search_predicate())
    params = [ids.first, query.dataset_id, ids.first, ids.last, query.text]
    # _execute raises work_mem for a query that reads documents, as this one does.
    offsets = _execute(statement, params, query=query)[0][0] or []
    flags = np.zeros(ids.last - ids.first + 1, dtype=bool)
    flags[np.asarray(offsets, dtype=np.int64)] = True
    hits = HitBits(
        first_id=ids.first,
        last_id=ids.last,
        hits=len(offsets),
        # get_bit(bytes, n) reads bit n % 8 of byte n / 8, least significant first.
        bits=np.packbits(flags, bitorder="little").tobytes(),
    )
    _keep(query, _version(ids), hits)
    return hits


def _keep(query: ExplorerQuery, version: str, hits: HitBits) -> None:
    """Store ``hits``; drop the dataset's bitmaps of other versions and past the newest few."""
    try:
        with transaction.atomic():
            TextHits.objects.create(
                dataset_id=query.dataset_id,
                text=query.text,
                version=version,
                first_id=hits.first_id,
                last_id=hits.last_id,
                hits=hits.hits,
                bits=hits.bits,
            )
    except IntegrityError:  # another request kept the same bits first
        return
    stale = TextHits.objects.filter(dataset_id=query.dataset_id).exclude(version=version)
    stale.delete()
    newest = TextHits.objects.filter(dataset_id=query.dataset_id).order_by("-created_at", "-pk")
    old = list(newest.values_list("pk", flat=True)[KEEP_PER_DATASET:])
    if old:
        TextHits.objects.filter(pk__in=old).delete()
