"""build_sample: plan the sample, assemble its documents, order them and write them out."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from curation.sample_data.base import _Corpus, _Doc, normalize
from curation.sample_data.corpus import _load_corpus
from curation.sample_data.noise import (
    _boilerplate,
    _bulleted,
    _ellipsized,
    _foreign_docs,
    _long_docs,
    _markup,
    _near_duplicate,
    _normalized_variant,
    _short_docs,
    _symbolic,
    _unicode_text,
)

DEFAULT_SIZE = 3000


# Share of the sample given to each kind of noise; the rest is clean. Chosen to resemble a
# lightly filtered web crawl, where each problem is present but rare.
_FRACTIONS: dict[str, float] = {
    "exact_duplicate": 0.02,
    "normalized_duplicate": 0.01,
    "near_duplicate": 0.05,
    "boilerplate": 0.05,
    "markup": 0.03,
    "short": 0.03,
    "long": 0.01,
    "list": 0.01,
    "symbol": 0.01,
    "ellipsis": 0.01,
    "code": 0.01,
    "unicode": 0.003,
    "other_language": 0.04,
}


@dataclass(frozen=True)
class SampleManifest:
    """What :func:`build_sample` put in the sample.

    ``counts`` maps every noise tag that occurs (``"other_language:fr"`` counted per language)
    to the number of documents carrying it. Id lists are sorted. ``exact_duplicates`` and
    ``normalized_duplicates`` hold ``(copy_id, original_id)``; ``near_duplicates`` holds
    ``(copy_id, original_id, jaccard)`` with the Jaccard similarity of lowercased, whitespace
    tokenized word 5-gram sets (see :func:`shingle_jaccard`), rounded to 6 places. Every copy
    comes after its original in the file, so keep-first dedup should drop exactly the copies.
    ``script_ids`` is a subset of ``markup_ids``.
    """

    seed: int
    size: int
    counts: dict[str, int]
    exact_duplicates: list[tuple[str, str]]
    normalized_duplicates: list[tuple[str, str]]
    near_duplicates: list[tuple[str, str, float]]
    boilerplate_ids: list[str]
    markup_ids: list[str]
    script_ids: list[str]
    short_ids: list[str]
    long_ids: list[str]
    list_ids: list[str]
    symbol_ids: list[str]
    ellipsis_ids: list[str]
    code_ids: list[str]
    unicode_ids: list[str]
    other_language_ids: list[str]
    clean_ids: list[str]


def build_sample(out: Path, *, seed: int = 0, size: int = DEFAULT_SIZE) -> SampleManifest:
    """Write ``size`` documents to the JSONL file ``out`` and return what noise they hold.

    Each line is ``{"id", "text", "source", "noise", "noise_of"}``: ids run ``doc-00001`` up in
    file order, ``noise`` is a sorted list of tags (empty for clean documents) and ``noise_of``
    is the original's id for duplicates, else ``None``. The manifest is also written as JSON to
    ``out.with_suffix(".manifest.json")``. Raises ValueError if ``size`` is not positive or asks
    for more distinct documents than the offline corpus holds.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    corpus = _load_corpus()
    rng = random.Random(seed)
    plan = _plan(size, corpus)
    docs = _assemble(plan, corpus, rng)
    ordered = _order(docs, rng)
    width = max(5, len(str(size)))
    ids = {index: f"doc-{rank + 1:0{width}d}" for rank, index in enumerate(ordered)}
    _check(docs)

    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        for index in ordered:
            doc = docs[index]
            record = {
                "id": ids[index],
                "text": doc.text,
                "source": doc.source,
                "noise": sorted(doc.noise),
                "noise_of": None if doc.original is None else ids[doc.original],
            }
            fh.write(_json_line(record))
    manifest = _manifest(docs, ids, seed=seed, size=size)
    manifest_path = out.with_suffix(".manifest.json")
    manifest_path.write_text(
        json.dumps(dataclasses.asdict(manifest), indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return manifest


def _json_line(record: Mapping[str, object]) -> str:
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    # json leaves these raw with ensure_ascii=False, but str.splitlines() and some JSONL
    # readers treat them as line breaks; escaped they stay valid JSON on one physical line.
    for char in ("\u2028", "\u2029", "\x85"):
        line = line.replace(char, f"\\u{ord(char):04x}")
    return line + "\n"


def _plan(size: int, corpus: _Corpus) -> dict[str, int]:
    plan = {kind: round(size * share) for kind, share in _FRACTIONS.items()}
    if size >= 100:
        # Every kind shows up in any sample big enough to browse, including one huge document.
        plan = {kind: max(1, count) for kind, count in plan.items()}
    plan["code"] = min(plan["code"], len(corpus.code))
    plan["other_language"] = min(plan["other_language"], sum(map(len, corpus.foreign.values())))
    plan["script"] = math.ceil(plan["markup"] / 3)
    noisy = sum(count for kind, count in plan.items() if kind != "script")
    plan["clean"] = size - noisy
    originals = plan["exact_duplicate"] + plan["normalized_duplicate"] + plan["near_duplicate"]
    if plan["clean"] < originals:
        raise ValueError(f"size {size} is too small for the planned noise")
    prose = sum(plan[kind] for kind in ("clean", "boilerplate", "markup", "unicode"))
    reused = plan["list"] + plan["symbol"] + plan["ellipsis"]
    if prose > len(corpus.chunks) or reused > len(corpus.long_chunks):
        limit = math.floor(size * min(len(corpus.chunks) / prose, len(corpus.long_chunks) / reused))
        raise ValueError(
            f"size {size} needs more distinct documents than the offline corpus has "
            f"({len(corpus.chunks)} prose, {len(corpus.long_chunks)} reserved); "
            f"use size <= {limit}"
        )
    return plan


def _assemble(plan: dict[str, int], corpus: _Corpus, rng: random.Random) -> list[_Doc]:
    chunks = list(corpus.chunks)
    rng.shuffle(chunks)
    taken = iter(chunks)
    docs: list[_Doc] = []

    clean = [next(taken) for _ in range(plan["clean"])]
    docs.extend(_Doc(c.text, c.source, []) for c in clean)
    clean_indices = list(range(len(docs)))
    # Near-duplicate originals must be long enough for one edit to stay above 0.5 Jaccard and
    # short enough to edit quickly; exact and normalized copies can take any clean document.
    editable = [i for i in clean_indices if 60 <= len(docs[i].text.split()) <= 400]
    near_originals = rng.sample(editable, min(plan["near_duplicate"], len(editable)))
    chosen = set(near_originals)
    others = [i for i in clean_indices if i not in chosen]
    rng.shuffle(others)
    exact_pool = others[: plan["exact_duplicate"]]
    normalized_pool = others[plan["exact_duplicate"] :][: plan["normalized_duplicate"]]

    donors = [c.text for c in chunks[len(chunks) // 2 :]]
    for original in near_originals:
        copy = _near_duplicate(docs[original].text, donors, rng)
        docs.append(_Doc(copy[0], docs[original].source, ["near_duplicate"], original, copy[1]))
    for k in range(plan["exact_duplicate"]):
        # Every sixth copy repeats an original that already has one: clusters of three or more.
        original = rng.choice(exact_pool[:k]) if k and k % 6 == 0 else exact_pool[k]
        docs.append(_Doc(docs[original].text, docs[original].source, ["exact_duplicate"], original))
    for original in normalized_pool:
        text = _normalized_variant(docs[original].text, rng)
        docs.append(_Doc(text, docs[original].source, ["normalized_duplicate"], original))

    # Bullets, hashtags and truncation change the text enough that these three can reuse the
    # material of the long documents, which leaves more of the prose pool for clean documents.
    reused = list(corpus.long_chunks)
    rng.shuffle(reused)
    reused_iter = iter(reused)
    derived = (
        ("boilerplate", _boilerplate, taken),
        ("markup", _markup, taken),
        ("list", _bulleted, reused_iter),
        ("symbol", _symbolic, reused_iter),
        ("ellipsis", _ellipsized, reused_iter),
    )
    for kind, make, pool in derived:
        for k in range(plan[kind]):
            chunk = next(pool)
            tags = [kind]
            if kind == "markup" and k < plan["script"]:
                tags.append("script")
                text = _markup(chunk, rng, script=True)
            else:
                text = make(chunk, rng)
            docs.append(_Doc(text, chunk.source, tags))
    for _ in range(plan["unicode"]):
        chunk = next(taken)
        docs.append(_Doc(_unicode_text(chunk, corpus, rng), chunk.source, ["unicode"]))

    docs.extend(
        _Doc(text, source, ["code"]) for source, text in rng.sample(corpus.code, plan["code"])
    )
    docs.extend(_short_docs(plan["short"], corpus, rng))
    docs.extend(_long_docs(plan["long"], corpus, rng))
    docs.extend(_foreign_docs(plan["other_language"], corpus, rng))
    return docs


def _order(docs: list[_Doc], rng: random.Random) -> list[int]:
    """Shuffle, then move each original in front of its copies within the slots they hold."""
    slots = list(range(len(docs)))
    rng.shuffle(slots)
    clusters: dict[int, list[int]] = {}
    for index, doc in enumerate(docs):
        if doc.original is not None:
            clusters.setdefault(doc.original, [doc.original]).append(index)
    for members in clusters.values():
        positions = sorted(slots[m] for m in members)
        for member, position in zip(members, positions, strict=True):
            slots[member] = position
    ordered = [0] * len(docs)
    for index, position in enumerate(slots):
        ordered[position] = index
    return ordered


def _check(docs: list[_Doc]) -> None:
    """Guard the recorded truth: no unrecorded exact or normalized duplicates, no lorem."""
    seen: dict[str, int] = {}
    for index, doc in enumerate(docs):
        if "\x00" in doc.text or "lorem ipsum" in doc.text.lower():
            raise RuntimeError(f"document {doc.source} contains NUL or lorem ipsum")
        key = normalize(doc.text)
        root = index if doc.original is None or doc.jaccard is not None else doc.original
        if seen.setdefault(key, root) != root:
            raise RuntimeError(f"unrecorded duplicate: {doc.source}")


def _manifest(docs: list[_Doc], ids: dict[int, str], *, seed: int, size: int) -> SampleManifest:
    by_tag: dict[str, list[str]] = {}
    exact: list[tuple[str, str]] = []
    normalized: list[tuple[str, str]] = []
    near: list[tuple[str, str, float]] = []
    clean: list[str] = []
    for index, doc in enumerate(docs):
        doc_id = ids[index]
        for tag in doc.noise:
            by_tag.setdefault(tag, []).append(doc_id)
        if not doc.noise:
            clean.append(doc_id)
        if doc.original is not None:
            pair = (doc_id, ids[doc.original])
            if "exact_duplicate" in doc.noise:
                exact.append(pair)
            elif "normalized_duplicate" in doc.noise:
                normalized.append(pair)
            else:
                near.append((*pair, round(doc.jaccard or 0.0, 6)))

    def tagged(tag: str) -> list[str]:
        return sorted(by_tag.get(tag, []))

    other = sorted(
        i for tag, found in by_tag.items() if tag.startswith("other_language:") for i in found
    )
    return SampleManifest(
        seed=seed,
        size=size,
        counts={tag: len(found) for tag, found in sorted(by_tag.items())},
        exact_duplicates=sorted(exact),
        normalized_duplicates=sorted(normalized),
        near_duplicates=sorted(near),
        boilerplate_ids=tagged("boilerplate"),
        markup_ids=tagged("markup"),
        script_ids=tagged("script"),
        short_ids=tagged("short"),
        long_ids=tagged("long"),
        list_ids=tagged("list"),
        symbol_ids=tagged("symbol"),
        ellipsis_ids=tagged("ellipsis"),
        code_ids=tagged("code"),
        unicode_ids=tagged("unicode"),
        other_language_ids=other,
        clean_ids=sorted(clean),
    )
