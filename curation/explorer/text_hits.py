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

Bits are keyed by the query as PostgreSQL reads it (``websearch_to_tsquery(..)::text``),
so "Common" and "COMMON." share the bits of ``'common'``, and a query of several words ANDed
reads the AND of its words' bits when each has some. The first count of a common word
would still pay for the build, so the dataset's most common words are built ahead
(``common_words_build``: the task after the search index, and after every import,
queues it): a sample of documents gives each word's share, and every word whose
estimated hits reach ``COMMON_MIN_HITS`` gets its bits, up to ``COMMON_WORDS_MAX``, most
common first. Those are kept beside the newest ``KEEP_PER_DATASET`` built by counts.
After an import that only appended, the words keep their earlier bits and the new
documents are read once for all of them (``_appended_hits``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction
from psycopg import sql

from curation.explorer.filters import ExplorerQuery, HitBits
from curation.explorer.text_plan import DatasetIds, dataset_ids
from curation.models import TextHits

logger = logging.getLogger(__name__)

# From this many estimated hits, an exact count that reads every hit keeps them as bits.
# At 1M documents (bench/explorer_bench.py) a count through bits in PostgreSQL costs
# ~50-180 ms whatever the word, about what reading every hit of a word in 1 % of the
# documents costs; with the signal columns kept in memory (``columns.py``) it costs
# ~7 ms, where reading every hit of a word in 0.1-1 % costs 10-95 ms. Building the
# bits costs a little more than reading the hits, and keeps 125 kB per million ids.
BITS_MIN_HITS = 1_000
# Bitmaps kept per dataset (the newest) that counts built; each is one bit per id of the
# dataset's range. The common words' bits (``common_words_build``) are kept beside them.
KEEP_PER_DATASET = 16
# No bitmap for a dataset whose ids span more than this (64M ids: 8 MB of bits a request).
MAX_SPAN = 64_000_000
# Common words: documents sampled for their shares (a share of 2.5 % is then seen in
# ~100 of them, within ~20 %), the fewest estimated hits of a word built ahead (rarer
# words get their bits at their first exact count), and the most words built ahead
# (16 MB of bits at 1M).
COMMON_SAMPLE_DOCUMENTS = 4_000
COMMON_MIN_HITS = 25_000
COMMON_WORDS_MAX = 128
COMMON_SEED = 7

# A tsquery's text that only ANDs plain lexemes: "'a' & 'b'" (no prefix, weight, NOT, phrase).
_LEXEME = r"'(?:[^'\\]|''|\\.)*'"
_AND_OF_LEXEMES = re.compile(rf"{_LEXEME}(?: & {_LEXEME})*")


def _version(ids: DatasetIds) -> str:
    return f"{ids.documents}:{ids.first}:{ids.last}"


def may_use_bits(query: ExplorerQuery) -> bool:
    """True when ``query``'s text hits may be kept as bits: full text and no meta predicate
    (the bits stand for the text alone)."""
    return bool(query.text) and query.meta is None


def tsquery_key(text: str) -> str:
    """``text`` as PostgreSQL reads it (``websearch_to_tsquery(..)::text``): the bits' key.
    Empty for a query without a word (or of stop words only), which matches nothing."""
    from curation.explorer.sources import TS_CONFIG

    with connection.cursor() as cursor:
        cursor.execute("SELECT websearch_to_tsquery(%s, %s)::text", [TS_CONFIG, text])
        return str(cursor.fetchone()[0])


def and_terms(key: str) -> list[str]:
    """The lexemes (each as its own tsquery's text) of a key that only ANDs lexemes, in
    order; [] for any other query (a prefix, a weight, NOT, OR or a phrase)."""
    if not _AND_OF_LEXEMES.fullmatch(key):
        return []
    return re.findall(_LEXEME, key)


def _bits_of(row: TextHits) -> HitBits:
    return HitBits(first_id=row.first_id, last_id=row.last_id, hits=row.hits, bits=bytes(row.bits))


def cached_hits(query: ExplorerQuery, ids: DatasetIds) -> HitBits | None:
    """The cached bits of ``query.text`` for the dataset's current ``ids``, if any: its
    own, or the AND of its words' bits when it only ANDs words that all have some."""
    if not may_use_bits(query):
        return None
    key = tsquery_key(query.text)
    if not key:
        return None
    terms = and_terms(key)
    rows = {
        row.text: _bits_of(row)
        for row in TextHits.objects.filter(
            dataset_id=query.dataset_id, version=_version(ids), text__in={key, *terms}
        ).only("text", "first_id", "last_id", "hits", "bits")
    }
    if key in rows:
        return rows[key]
    if len(terms) < 2 or not all(term in rows for term in terms):
        return None
    parts = [np.frombuffer(rows[term].bits, dtype=np.uint8) for term in terms]
    both = np.bitwise_and.reduce(parts)
    return HitBits(
        first_id=ids.first,
        last_id=ids.last,
        hits=int(np.unpackbits(both).sum()),
        bits=both.tobytes(),
    )


def text_hits_build(*, query: ExplorerQuery, ids: DatasetIds | None = None) -> HitBits | None:
    """Read every hit of ``query.text`` in its dataset, keep them as bits, and return them.

    None when the dataset is not one the explorer plans for (``text_plan``), its ids
    span more than ``MAX_SPAN``, or the text holds no word to search (``tsquery_key``).
    """
    ids = ids or dataset_ids(query.dataset_id)
    if ids is None or ids.span > MAX_SPAN:
        return None
    key = tsquery_key(query.text)
    if not key:
        return None
    return _build(query.dataset_id, key, ids, common=False)


def _build(dataset_id: int, key: str, ids: DatasetIds, *, common: bool) -> HitBits:
    """Read every hit of the tsquery ``key`` in the dataset and keep them as bits."""
    from curation.explorer.query import _execute
    from curation.explorer.sources import DOCUMENT_TABLE, search_predicate

    statement = sql.SQL(
        "SELECT array_agg(d.id - %s) FROM {} d "
        "WHERE d.dataset_id = %s AND d.id BETWEEN %s AND %s AND {}"
    ).format(sql.Identifier(DOCUMENT_TABLE), search_predicate(tsquery=True))
    params = [ids.first, dataset_id, ids.first, ids.last, key]
    # _execute raises work_mem for a query that reads documents, as this one does.
    reads = ExplorerQuery(dataset_id=dataset_id, text=key)
    offsets = _execute(statement, params, query=reads)[0][0] or []
    hits = _packed(ids, offsets)
    _keep(dataset_id, key, _version(ids), hits, common=common)
    return hits


def _packed(ids: DatasetIds, offsets: list[int], since: HitBits | None = None) -> HitBits:
    """Bits over ``ids`` with ``offsets`` (ids less the first) set, and ``since``'s."""
    flags = np.zeros(ids.span, dtype=bool)
    flags[np.asarray(offsets, dtype=np.int64)] = True
    found = len(offsets)
    if since is not None:
        span = since.last_id - since.first_id + 1
        flags[:span] |= np.unpackbits(
            np.frombuffer(since.bits, dtype=np.uint8), count=span, bitorder="little"
        ).astype(bool)
        found += since.hits
    return HitBits(
        first_id=ids.first,
        last_id=ids.last,
        hits=found,
        # get_bit(bytes, n) reads bit n % 8 of byte n / 8, least significant first.
        bits=np.packbits(flags, bitorder="little").tobytes(),
    )


# Appended documents read per statement, their vectors computed once for every word.
APPENDED_CHUNK = 20_000


def _appended_hits(
    dataset_id: int, keys: list[str], lo: int, ids: DatasetIds
) -> dict[str, list[int]]:
    """Each tsquery key's hits (ids less ``ids.first``) among the documents with ids from
    ``lo`` on: each document's vector is computed once and tested against every key.

    Through the search index each word would read its whole list of hits again (and
    PostgreSQL, guessing few, computed the vector of every new document for every word
    instead: twice slower than reading every hit, ``bench/common_words_bench.py``).
    """
    statement = sql.SQL(
        "WITH {new} SELECT k::text, array_agg(new.id - %s) "
        "FROM new, unnest(%s::text[]::tsquery[]) k WHERE new.v @@ k GROUP BY k::text"
    ).format(new=_vectors("new", sql.SQL("d.id BETWEEN %s AND %s")))
    found: dict[str, list[int]] = {key: [] for key in keys}
    with connection.cursor() as cursor:
        for start in range(lo, ids.last + 1, APPENDED_CHUNK):
            end = min(ids.last, start + APPENDED_CHUNK - 1)
            cursor.execute(
                statement.as_string(cursor.connection),
                [start, end, dataset_id, ids.first, keys],
            )
            for key, offsets in cursor.fetchall():
                found[key] += offsets
    return found


def _appended_since(dataset_id: int, version: str, ids: DatasetIds) -> bool:
    """True when the dataset of ``version`` became ``ids`` by appending documents past
    its last id only (an import), so that its bits still hold every hit up to there.

    Documents are never deleted but with their dataset, so the dataset only grew
    past its old last id when it starts where it did and its new documents are all
    past that id.
    """
    try:
        documents, first, last = (int(part) for part in version.split(":"))
    except ValueError:
        return False
    if first != ids.first or last > ids.last or documents > ids.documents:
        return False
    from curation.explorer.sources import DOCUMENT_TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE dataset_id = %s AND id > %s AND id <= %s")
            .format(sql.Identifier(DOCUMENT_TABLE))
            .as_string(cursor.connection),
            [dataset_id, last, ids.last],
        )
        past = int(cursor.fetchone()[0])
    return documents + past == ids.documents


def _vectors(name: str, picked: sql.Composable) -> sql.Composable:
    """A MATERIALIZED CTE ``name`` of (id, v): the search vectors of the dataset's documents
    that ``picked`` keeps (its params, then the dataset id)."""
    from curation.explorer.sources import DOCUMENT_TABLE, search_vector

    return sql.SQL(
        "{name} AS MATERIALIZED (SELECT d.id, {vector} AS v FROM {table} d "
        "WHERE {picked} AND d.dataset_id = %s)"
    ).format(
        name=sql.Identifier(name),
        vector=search_vector(),
        table=sql.Identifier(DOCUMENT_TABLE),
        picked=picked,
    )


def common_words(*, dataset_id: int, ids: DatasetIds) -> list[tuple[str, int]]:
    """The dataset's words whose estimated hits reach ``COMMON_MIN_HITS``, most common first
    (``COMMON_WORDS_MAX`` at most): (the word's tsquery key, estimated hits).

    The estimate is the word's share of about ``COMMON_SAMPLE_DOCUMENTS`` documents read
    by random ids (the same ids each time), times the dataset's documents.
    """
    if ids.documents <= COMMON_SAMPLE_DOCUMENTS:  # every document: the shares are exact
        picked = sql.SQL("d.id BETWEEN %s AND %s")
        params: list[Any] = [ids.first, ids.last]
    else:
        rng = np.random.default_rng(COMMON_SEED)
        want = math.ceil(COMMON_SAMPLE_DOCUMENTS / ids.density)
        picked = sql.SQL("d.id = ANY(%s)")
        params = [np.unique(rng.integers(ids.first, ids.last + 1, size=want)).tolist()]
    statement = sql.SQL(
        "WITH {sample} SELECT (SELECT count(*) FROM sample), u.lexeme, count(*) "
        "FROM sample, unnest(sample.v) u GROUP BY u.lexeme "
        "HAVING count(*) * %s >= %s * (SELECT count(*) FROM sample) "
        "ORDER BY count(*) DESC, u.lexeme LIMIT %s"
    ).format(sample=_vectors("sample", picked))
    params += [dataset_id, ids.documents, COMMON_MIN_HITS, COMMON_WORDS_MAX]
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection), params)
        rows = cursor.fetchall()
        if not rows:
            return []
        # Each lexeme as its own tsquery's text, the form tsquery_key gives a typed word.
        quoted = [
            "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for _, lexeme, _ in rows
        ]
        cursor.execute(
            "SELECT k::tsquery::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
            [quoted],
        )
        keys = [str(key) for (key,) in cursor.fetchall()]
    return [
        (key, round(count / sampled * ids.documents))
        for key, (sampled, _, count) in zip(keys, rows, strict=True)
    ]


def common_words_build(*, dataset_id: int) -> list[str]:
    """Keep the bits of the dataset's common words (``common_words``) ahead of any query;
    returns the words built now (those kept already for this version are marked common).

    Nothing without a ready search index (each word would scan every document) or for a
    dataset the explorer does not plan for.
    """
    from curation.explorer.search import search_index_state

    ids = dataset_ids(dataset_id)
    if ids is None or ids.span > MAX_SPAN:
        return []
    if search_index_state(dataset_id=dataset_id).status != "ready":
        return []
    started = time.perf_counter()
    words = [key for key, _ in common_words(dataset_id=dataset_id, ids=ids)]
    version = _version(ids)
    kept = TextHits.objects.filter(dataset_id=dataset_id, version=version, text__in=words)
    have = set(kept.values_list("text", flat=True))
    kept.update(common=True)
    # The words' bits of an earlier version, read before the first new one drops them:
    # after an import that only appended, each word reads the new documents alone.
    earlier: dict[str, HitBits] = {}
    grown: dict[str, bool] = {}  # per earlier version: did the dataset only grow since?
    for row in (
        TextHits.objects.filter(dataset_id=dataset_id, text__in=set(words) - have)
        .exclude(version=version)
        .order_by("created_at")
    ):
        if row.version not in grown:
            grown[row.version] = _appended_since(dataset_id, row.version, ids)
        if grown[row.version]:
            earlier[row.text] = _bits_of(row)
    # From the newest earlier version (the one before the import): the new documents
    # are read once for all its words.
    newest = max((hits.last_id for hits in earlier.values()), default=None)
    grown_words = sorted(key for key, hits in earlier.items() if hits.last_id == newest)
    appended = (
        _appended_hits(dataset_id, grown_words, newest + 1, ids) if newest is not None else {}
    )
    built = []
    for key in words:
        if key in have:
            continue
        if key in appended:
            _keep(dataset_id, key, version, _packed(ids, appended[key], earlier[key]), common=True)
        else:
            _build(dataset_id, key, ids, common=True)
        built.append(key)
    logger.info(
        "dataset %s: bits of %d common words kept (%d built in %.1fs, %d of them from "
        "an earlier version's)",
        dataset_id,
        len(words),
        len(built),
        time.perf_counter() - started,
        len([key for key in built if key in appended]),
    )
    return built


def _keep(dataset_id: int, key: str, version: str, hits: HitBits, *, common: bool) -> None:
    """Store ``hits``; drop the dataset's bitmaps of other versions, and those counts built
    past the newest few."""
    try:
        with transaction.atomic():
            TextHits.objects.create(
                dataset_id=dataset_id,
                text=key,
                version=version,
                first_id=hits.first_id,
                last_id=hits.last_id,
                hits=hits.hits,
                bits=hits.bits,
                common=common,
            )
    except IntegrityError:  # another request kept the same bits first
        if common:
            TextHits.objects.filter(dataset_id=dataset_id, text=key, version=version).update(
                common=True
            )
        return
    stale = TextHits.objects.filter(dataset_id=dataset_id).exclude(version=version)
    stale.delete()
    newest = TextHits.objects.filter(dataset_id=dataset_id, common=False).order_by(
        "-created_at", "-pk"
    )
    old = list(newest.values_list("pk", flat=True)[KEEP_PER_DATASET:])
    if old:
        TextHits.objects.filter(pk__in=old).delete()
