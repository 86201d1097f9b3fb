"""Deterministic builder of Winnow's demo dataset.

The sample is made of real English text that every machine with the project installed has
offline: the docstrings and prose comments of the Python standard library and of Django, read
from their source files with :mod:`ast` and a regex (nothing is imported, so no module can open
a window, print, or need Django settings), and the Language Reference topics that pydoc ships in
``pydoc_data.topics``. Other-language documents come from the translations Django ships in its
``locale/<lang>/LC_MESSAGES/*.po`` files. Only the standard library and Django are read, never
other installed packages.

Realistic noise is mixed in and recorded twice: in each document's ``noise`` tags and in a
:class:`SampleManifest`, so that quality-signal and dedup steps can be checked against a known
truth. Everything is drawn from one :class:`random.Random` seeded by ``seed``; the corpus is read
in sorted order, so the same seed on the same Python and Django versions gives byte-identical
files (the stdlib's docstrings differ between Python releases).
"""

from __future__ import annotations

import ast
import dataclasses
import doctest
import functools
import html
import inspect
import json
import math
import os
import random
import re
import sysconfig
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import django

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

NEAR_DUPLICATE_RANGE = (0.5, 0.95)
LONG_MIN_CHARS = 20_000
LONG_MAX_CHARS = 200_000
# The first long document is one line this long or more, to exercise line-length limits.
HUGE_MIN_CHARS = 100_000
SHORT_MAX_WORDS = 5
CHUNK_MIN_WORDS = 50
OTHER_LANGUAGES = ("de", "es", "fr", "it", "pl", "pt", "ru")

# Parsing, not importing, keeps these harmless; they are still left out of the prose pool because
# their docstrings are test fixtures, demos, generated data or deprecated tooling (pydoc_data's
# topics are read as data by _reference_topics instead).
_SKIPPED_PARTS = frozenset(
    {
        "__pycache__",
        "test",
        "tests",
        "idle_test",
        "turtledemo",
        "lib2to3",
        "distutils",
        "ensurepip",
        "pydoc_data",
        "encodings",
        "site-packages",
        "dist-packages",
        "antigravity.py",
        "this.py",
        "__hello__.py",
        "__phello__",
        "lorem_ipsum.py",
    }
)
# Big modules reserved as material for the very long documents, so that these never repeat
# the text of a clean document; list, symbol and ellipsis documents reuse it, transformed.
_LONG_MATERIAL = frozenset({"turtle.py", "tkinter", "idlelib", "_pydecimal.py"})

_BOILERPLATE_TOP = (
    "Skip to main content",
    "Home | Docs | Blog | About | Contact",
    "Menu",
    "Sign in | Register",
    "Search this site...",
    "You are here: Home > Documentation > Reference",
    "We use cookies to improve your experience on our site. By continuing to browse, you agree "
    "to our use of cookies.",
    "Accept all cookies",
    "Reject non-essential cookies",
)
_BOILERPLATE_BOTTOM = (
    "Was this page helpful? Yes No",
    "Share this page on Twitter",
    "Share on Facebook | Share on LinkedIn | Email this page",
    "Related posts:",
    "Leave a comment",
    "Click here to subscribe to our newsletter!",
    "Follow us on Instagram",
    "Back to top",
    "Copyright © {year} {site}. All rights reserved.",
    "Privacy Policy | Terms of Use | Cookie Settings",
    "Powered by WordPress",
)
_SITES = ("DevDocs Hub", "Python Tips Daily", "CodeRef", "The Web Framework Guide", "Snippetly")
_SCRIPTS = (
    "<script>alert('x')</script>",
    "<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}"
    " gtag('js', new Date()); gtag('config', 'G-7H2K9Q4ZP1');</script>",
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-7H2K9Q4ZP1"></script>',
    "<script>document.write('<img src=\"https://pixel.example.com/t.gif?u=' + "
    "encodeURIComponent(location.href) + '\">');</script>",
)
_EMOJI = ("👍🏽", "🚀", "✅", "🔥", "📘", "🐍", "🎉", "⚠️")
# Zero-width-joiner sequences and a flag (regional indicators) render as one glyph each.
_ZWJ_EMOJI = ("👩\u200d💻", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🧑🏿\u200d🔬", "🇫🇷")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")
_HTML_TAG = re.compile(
    r"</?(?:a|b|i|p|br|em|hr|li|ol|ul|td|th|tr|div|img|pre|code|span|form|html|body|head|"
    r"input|label|table|select|option|script|strong|textarea|h[1-6])\b[^<>]*>",
    re.IGNORECASE,
)
_BLOCK_LINE = re.compile(r"^(?:\s|[-*•+|]\s|\d+[.)]\s|>>>|\.\.\.|[-=~^*#]{3,}\s*$|\S+\s+--?\s)")
_PLACEHOLDER = re.compile(r"%|\{|\}|<|>|\\")
_WORD = re.compile(r"[^\W\d_]{4,}")
_UNDERLINE = re.compile(r"^\s*([*=~^-])\1{2,}\s*$")
_NOT_PROSE = re.compile(
    r"copyright|licen[cs]e|all rights reserved|-\*-|noqa|type: ?ignore|pragma|fmt: |XXX|TODO",
    re.IGNORECASE,
)
_PROSE_WORD = re.compile(r"^[(\"']?[A-Za-z][a-z']*[)\"']?[,.;:!?]?[)\"']?$")
_COMMENT_RUN = re.compile(r"(?m)(?:^[ \t]*#(?!!).*(?:\n|\Z))+")
_NON_ALPHA_WORD = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
# Two spaces after a sentence are old typing habit; elsewhere they align table columns.
_ALIGNED = re.compile(r"(?<![.!?:)\"']) {2,}|\t")
# English function words that are rare in the other languages of the sample.
_STOP_WORDS = frozenset(
    "the of and to is that it for with this be are if by from not which when will should can "
    "has have was were been".split()
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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


def normalize(text: str) -> str:
    """Lowercase and collapse all whitespace: texts equal under this are normalized duplicates."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the lowercased, whitespace-split text (the whole text if shorter)."""
    words = text.lower().split()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def shingle_jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the word 5-gram sets of ``a`` and ``b``."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


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


@dataclass(frozen=True)
class _Section:
    heading: str
    body: str


@dataclass(frozen=True)
class _Chunk:
    source: str
    sections: tuple[_Section, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.heading}\n{s.body}" if s.heading else s.body for s in self.sections)

    @property
    def title(self) -> str:
        module = self.source.split(":", 1)[1].split("+")[0]
        return next((s.heading for s in self.sections if s.heading), module)


@dataclass(frozen=True)
class _Corpus:
    chunks: tuple[_Chunk, ...]
    code: tuple[tuple[str, str], ...]
    summaries: tuple[tuple[str, str], ...]
    long_material: tuple[str, ...]
    long_chunks: tuple[_Chunk, ...]
    foreign: dict[str, tuple[tuple[str, str], ...]]
    rtl: tuple[str, ...]
    accented: tuple[str, ...]


@dataclass
class _Doc:
    text: str
    source: str
    noise: list[str]
    original: int | None = None
    jaccard: float | None = None


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


def _near_duplicate(text: str, donors: Sequence[str], rng: random.Random) -> tuple[str, float]:
    """Edit words until the 5-gram Jaccard drops to a random target in NEAR_DUPLICATE_RANGE.

    The text is kept as alternating words and whitespace so that edits preserve its layout.
    Span rewrites (a changed sentence) are only tried while far above the target; an edit that
    overshoots below the range is undone and the remaining distance closed with single words.
    """
    low, high = NEAR_DUPLICATE_RANGE
    target = rng.uniform(low, high)
    original = shingles(text)
    parts = re.split(r"(\s+)", text.strip())
    jaccard = 1.0
    spans = True
    for _ in range(5000):
        if jaccard <= target:
            break
        donor = rng.choice(donors).split()
        words = len(parts) // 2 + 1
        i = rng.randrange(words)
        op = rng.random()
        before = list(parts)
        if spans and jaccard - target > 0.15 and op < 0.25:
            length = rng.randint(4, 12)
            start = rng.randrange(max(1, len(donor) - length))
            end = min(words, i + length)
            parts[2 * i : 2 * end - 1] = _interleave(donor[start : start + length])
        elif op < 0.55:
            parts[2 * i] = rng.choice(donor)
        elif op < 0.8 and words > 10:
            cut = 2 * i if i < words - 1 else 2 * i - 1
            del parts[cut : cut + 2]
        else:
            parts[2 * i : 2 * i] = [rng.choice(donor), " "]
        edited = shingles("".join(parts))
        candidate = len(original & edited) / len(original | edited)
        if candidate < low:
            parts = before
            spans = False
            continue
        jaccard = candidate
    edited_text = "".join(parts)
    jaccard = shingle_jaccard(edited_text, text)
    if not low <= jaccard <= high:
        raise RuntimeError(f"near duplicate missed its range: {jaccard:.3f}")
    return edited_text, jaccard


def _interleave(words: Sequence[str]) -> list[str]:
    parts: list[str] = []
    for word in words:
        parts.extend((word, " "))
    return parts[:-1]


def _normalized_variant(text: str, rng: random.Random) -> str:
    """A copy that differs only in case or whitespace, so only normalized matching finds it."""
    variants = [
        text.lower(),
        " ".join(text.split()),
        re.sub(r"(?<=[.!?]) (?=\S)", "  ", text).replace("\n", " \n") + "\n",
        text.upper(),
        "\n".join(line.title() for line in text.split("\n")),
    ]
    rng.shuffle(variants)
    for variant in variants:
        if variant != text and normalize(variant) == normalize(text):
            return variant
    return text + "  "


def _boilerplate(chunk: _Chunk, rng: random.Random) -> str:
    top = sorted(rng.sample(range(len(_BOILERPLATE_TOP)), rng.randint(2, 4)))
    bottom = sorted(rng.sample(range(len(_BOILERPLATE_BOTTOM)), rng.randint(2, 4)))
    site = rng.choice(_SITES)
    year = rng.randint(2015, 2025)
    lines = [_BOILERPLATE_TOP[i] for i in top]
    lines += [chunk.text]
    lines += [_BOILERPLATE_BOTTOM[i].format(year=year, site=site) for i in bottom]
    return "\n".join(lines)


def _markup(chunk: _Chunk, rng: random.Random, *, script: bool = False) -> str:
    """The chunk as an HTML page fragment; ``script`` adds an alert or tracking snippet."""
    module = chunk.source.split(":", 1)[1].split("+")[0]
    if chunk.source.startswith("django:"):
        href = "https://docs.djangoproject.com/en/5.2/ref/"
    else:
        href = f"https://docs.python.org/3/library/{module.split('.')[0]}.html"
    out = ['<div class="document">', f"<h1>{html.escape(chunk.title)}</h1>"]
    for section in chunk.sections:
        if section.heading:
            anchor = html.escape(section.heading.lower().replace(".", "-"), quote=True)
            out.append(f'<h2 id="{anchor}">{html.escape(section.heading)}</h2>')
        out.extend(f"<p>{html.escape(p)}</p>" for p in section.body.split("\n\n"))
    if all(s.heading for s in chunk.sections) and (len(chunk.sections) > 1 or rng.random() < 0.5):
        out.append("<table>")
        out.append("<tr><th>Name</th><th>Summary</th></tr>")
        for section in chunk.sections:
            summary = html.escape(_sentences(section.body)[0])
            out.append(f"<tr><td><code>{html.escape(section.heading)}</code></td>")
            out.append(f"<td>{summary}</td></tr>")
        out.append("</table>")
    out.append(f'<p>See also: <a href="{href}">the reference documentation</a>.</p>')
    out.append("</div>")
    if script:
        out.insert(rng.randint(1, len(out) - 1), rng.choice(_SCRIPTS))
    return "\n".join(out)


def _bulleted(chunk: _Chunk, rng: random.Random) -> str:
    marker = rng.choice(("•", "•", "-", "-", "*"))
    lines: list[str] = []
    for section in chunk.sections:
        lines.extend(f"{marker} {s}" for s in _sentences(section.body))
    return "\n".join([chunk.title, *lines])


def _symbolic(chunk: _Chunk, rng: random.Random) -> str:
    """Hashtag and banner heavy text, as in scraped social posts and ASCII-art headers."""
    bar = rng.choice(("#", "=", "*")) * rng.randint(30, 60)
    lines = [bar, f"### {chunk.title} ###", bar]
    for section in chunk.sections:
        for sentence in _sentences(section.body):
            # About one hashtag per five words, as in tag-stuffed posts; never fewer than three.
            words = sorted({w.lower() for w in _WORD.findall(sentence)})
            tags = [f"#{w}" for w in words[: max(3, len(sentence.split()) // 5)]]
            tags += ["#python", "#programming", "#dev"][: max(0, 3 - len(tags))]
            lines.append(f"{sentence} {' '.join(tags)}")
            if rng.random() < 0.3:
                lines.append(rng.choice(("★★★★★", ">>> ### <<<", "~~~ *** ~~~", "→→→ ✔ ✔ ✔")))
    lines.append(bar)
    return "\n".join(lines)


def _ellipsized(chunk: _Chunk, rng: random.Random) -> str:
    """Teaser lines cut short, as on index pages that link to the full text."""
    mark = rng.choice(("...", "…"))
    lines: list[str] = []
    for section in chunk.sections:
        for sentence in _sentences(section.body):
            words = sentence.split()
            lines.append(" ".join(words[: rng.randint(5, 12)]).rstrip(".,;:") + mark)
    if rng.random() < 0.5:
        lines.append(f"Read more{mark}")
    return "\n".join(lines)


def _unicode_text(chunk: _Chunk, corpus: _Corpus, rng: random.Random) -> str:
    """Real text with emoji, ZWJ sequences, right-to-left lines and combining marks added."""
    paragraphs = chunk.text.split("\n\n")
    paragraphs[0] = f"{rng.choice(_EMOJI)} {paragraphs[0]}"
    paragraphs[-1] = f"{paragraphs[-1]} {rng.choice(_ZWJ_EMOJI)}{rng.choice(_EMOJI)}"
    # U+200F (right-to-left mark) starts the line as a browser would for quoted Hebrew/Arabic.
    rtl = "\u200f" + rng.choice(corpus.rtl)
    # NFD splits accented letters into a base letter and a combining mark.
    combining = unicodedata.normalize("NFD", rng.choice(corpus.accented))
    paragraphs.insert(rng.randint(1, len(paragraphs)), rtl)
    paragraphs.insert(rng.randint(1, len(paragraphs)), f"{combining} {rng.choice(_ZWJ_EMOJI)}")
    return "\n\n".join(paragraphs)


def _sentences(text: str) -> list[str]:
    found = [" ".join(s.split()) for s in _SENTENCE_END.split(text)]
    return [s for s in found if s] or [" ".join(text.split())]


def _short_docs(count: int, corpus: _Corpus, rng: random.Random) -> Iterator[_Doc]:
    seen: set[str] = set()
    made = 0
    for source, summary in rng.sample(corpus.summaries, len(corpus.summaries)):
        if made == count:
            return
        words = summary.split()
        if len(words) > SHORT_MAX_WORDS:
            words = words[: rng.randint(1, SHORT_MAX_WORDS)]
        text = " ".join(words)
        if normalize(text) in seen:
            continue
        seen.add(normalize(text))
        made += 1
        yield _Doc(text, source, ["short"])


def _long_docs(count: int, corpus: _Corpus, rng: random.Random) -> Iterator[_Doc]:
    """Concatenated docstrings; the first is one huge line, the second near the size cap."""
    for k in range(count):
        if k == 0:
            target = rng.randint(HUGE_MIN_CHARS + 10_000, 150_000)
        elif k == 1:
            target = rng.randint(150_000, LONG_MAX_CHARS - 10_000)
        else:
            target = round(math.exp(rng.uniform(math.log(25_000), math.log(80_000))))
        material = rng.sample(corpus.long_material, len(corpus.long_material))
        parts: list[str] = []
        length = 0
        for piece in material:
            if length >= target:
                break
            parts.append(piece)
            length += len(piece) + 2
        text = "\n\n".join(parts)
        if k == 0:
            text = " ".join(text.split())
        if len(text) > LONG_MAX_CHARS:
            text = text[: text.rindex(" ", 0, LONG_MAX_CHARS)]
        yield _Doc(text, "stdlib:turtle+tkinter+idlelib+_pydecimal", ["long"])


def _foreign_docs(count: int, corpus: _Corpus, rng: random.Random) -> Iterator[_Doc]:
    pools = {lang: rng.sample(docs, len(docs)) for lang, docs in sorted(corpus.foreign.items())}
    made = 0
    while made < count and any(pools.values()):
        for lang, pool in pools.items():
            if pool and made < count:
                source, text = pool.pop()
                made += 1
                yield _Doc(text, source, [f"other_language:{lang}"])


@functools.lru_cache(maxsize=1)
def _load_corpus() -> _Corpus:
    """Read and screen the offline corpus once per process; it does not depend on the seed."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    django_root = Path(django.__file__).parent
    prose: list[tuple[str, str, str]] = []
    long_material: dict[str, str] = {}
    reserved_sections: list[tuple[str, str, str]] = []
    for source, qualname, doc, reserved in _docstrings(stdlib, django_root):
        if not reserved:
            prose.append((source, qualname, doc))
        elif normalize(doc) not in long_material:
            long_material[normalize(doc)] = _reflow(doc)
            if _clean_enough(doc, min_words=8) and ">>>" not in doc:
                reserved_sections.append((source, qualname, _reflow(doc)))
    prose.extend(_reference_topics())

    seen_text: set[str] = set()
    seen_shingles: set[tuple[str, ...]] = set()
    kept: list[tuple[str, str, str]] = []
    code_docs: list[tuple[str, str]] = []
    summaries: dict[str, tuple[str, str]] = {}
    for source, qualname, doc in prose:
        first = doc.split("\n\n")[0].split("\n")[0].strip()
        if _clean_enough(first, min_words=1) and "(" not in first:
            summaries.setdefault(normalize(first), (_qualified(source, qualname), first))
        key = normalize(doc)
        # A docstring about Django's {% lorem %} tag would put placeholder text in the sample.
        if key in seen_text or "lorem" in f"{source} {qualname} {key}".lower():
            continue
        seen_text.add(key)
        examples = _doctest_block(doc) if ">>>" in doc else ""
        if examples and not _repeats(examples, seen_shingles):
            code_docs.append((_qualified(source, qualname), examples))
        # Paragraphs of code, markup or tables are dropped rather than the whole docstring,
        # so examples and grammar rules do not cost the prose around them.
        paragraphs = []
        for paragraph in re.split(r"\n\s*\n", doc):
            if ">>>" in paragraph or not _clean_enough(paragraph, min_words=1):
                continue
            if not _repeats(paragraph, seen_shingles):
                paragraphs.append(_reflow(paragraph))
        body = "\n\n".join(paragraphs)
        if _clean_enough(body, min_words=8) and _english_share(body) >= 0.1:
            kept.append((source, qualname, body))

    foreign = {lang: tuple(_foreign_pool(django_root, lang)) for lang in OTHER_LANGUAGES}
    rtl = [
        s for lang in ("he", "ar") for s in _po_strings(django_root, lang) if len(s.split()) >= 4
    ]
    accented = [s for s in _po_strings(django_root, "fr") if len(s.split()) >= 4]
    accented = [s for s in accented if unicodedata.normalize("NFD", s) != s]
    return _Corpus(
        chunks=tuple(c for c in _pack(kept) if _english_share(c.text) >= 0.1),
        code=tuple(_pack_code(code_docs)),
        summaries=tuple(summaries[k] for k in sorted(summaries)),
        long_material=tuple(long_material.values()),
        long_chunks=tuple(_pack(reserved_sections)),
        foreign=foreign,
        rtl=tuple(rtl),
        accented=tuple(accented),
    )


def _repeats(text: str, seen: set[tuple[str, ...]]) -> bool:
    """Whether ``text`` mostly repeats earlier text; if not, remember its 5-grams in ``seen``.

    Overrides restate their base class, reference topics nest each other and examples are
    copied between functions; leaving such text out keeps the injected near duplicates the
    only ones in the sample.
    """
    grams = shingles(text)
    if len(grams & seen) > 0.3 * len(grams):
        return True
    seen |= grams
    return False


def _qualified(source: str, qualname: str) -> str:
    """``source`` extended by an object's dotted name (not by a reference topic's title)."""
    module = source.split(":", 1)[1]
    if qualname == module or not re.fullmatch(r"[\w.]+", qualname):
        return source
    return f"{source}.{qualname}"


def _docstrings(stdlib: Path, django_root: Path) -> Iterator[tuple[str, str, str, bool]]:
    """Yield (source, qualname, docstring, reserved_for_long) in a fixed, sorted order."""
    roots = ((stdlib, "stdlib", stdlib), (django_root, "django", django_root.parent))
    for root, label, base in roots:
        for path in _python_files(root):
            rel = path.relative_to(root)
            reserved = label == "stdlib" and rel.parts[0] in _LONG_MATERIAL
            module = ".".join(path.relative_to(base).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            try:
                text = path.read_text(encoding="utf-8")
                tree = ast.parse(text)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for qualname, doc in _walk(tree, module):
                yield f"{label}:{module}", qualname, doc, reserved
            for block in _comment_blocks(text):
                yield f"{label}-comments:{module}", "", block, reserved


def _comment_blocks(source: str) -> Iterator[str]:
    """Runs of whole-line comments that read as prose, joined into one paragraph each.

    Licence headers and commented-out code are left out: the first would look like injected
    boilerplate, the second is not prose.
    """
    for match in _COMMENT_RUN.finditer(source):
        lines = match.group().split("\n")
        text = " ".join(" ".join(line.strip().lstrip("#") for line in lines).split())
        words = text.split()
        if len(words) < 20 or _NOT_PROSE.search(text):
            continue
        if sum(1 for w in words if _PROSE_WORD.match(w)) >= 0.7 * len(words):
            yield text


def _reference_topics() -> Iterator[tuple[str, str, str]]:
    """Sections of the Python Language Reference that pydoc ships as plain text."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for key in sorted(topics):
        lines = topics[key].strip().split("\n")
        body = "\n".join(line for line in lines[1:] if not _UNDERLINE.match(line))
        yield f"stdlib:pydoc_data.topics.{key}", lines[0].strip(), inspect.cleandoc(body)


def _python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Only packages are entered, which leaves out site-packages, config-* and data folders.
        dirnames[:] = [
            d for d in dirnames if d not in _SKIPPED_PARTS and (here / d / "__init__.py").exists()
        ]
        found.extend(here / f for f in filenames if f.endswith(".py") and f not in _SKIPPED_PARTS)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _walk(node: ast.AST, name: str) -> Iterator[tuple[str, str]]:
    doc = ast.get_docstring(node, clean=True) if isinstance(node, _DOC_NODES) else None
    if doc and doc.strip():
        yield name, doc.strip()
    for child in getattr(node, "body", []):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            prefix = "" if isinstance(node, ast.Module) else f"{name}."
            yield from _walk(child, prefix + child.name)


def _clean_enough(text: str, *, min_words: int) -> bool:
    """Screen prose so that clean documents do not trip the quality signals by accident."""
    words = text.split()
    if len(words) < min_words:
        return False
    lowered = text.lower()
    if "lorem" in lowered or "<script" in lowered or _HTML_TAG.search(text):
        return False
    if _CONTROL.search(text):
        return False
    if len(_NON_ALPHA_WORD.findall(text)) > 0.2 * len(words):
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    bullets = sum(1 for line in lines if line.lstrip().startswith(("•", "-", "*")))
    ellipses = sum(1 for line in lines if line.rstrip().endswith(("...", "…")))
    symbols = text.count("#") + text.count("...") + text.count("…")
    return (
        bullets <= 0.5 * len(lines)
        and ellipses <= 0.1 * len(lines)
        and symbols <= 0.05 * len(words)
    )


def _english_share(text: str) -> float:
    """Share of words that are common English function words; lists of names score near 0."""
    words = [w.strip(".,;:!?()[]\"'").lower() for w in text.split()]
    return sum(1 for w in words if w in _STOP_WORDS) / max(1, len(words))


def _reflow(doc: str) -> str:
    """Join hard-wrapped prose paragraphs into one line each, as web text usually is.

    Paragraphs with indentation, bullets, tables or code keep their line breaks.
    """
    out = []
    for paragraph in re.split(r"\n\s*\n", doc.strip("\n")):
        lines = paragraph.split("\n")
        wrapped = len(lines) > 1 and not any(
            _BLOCK_LINE.match(line) or _ALIGNED.search(line.strip()) for line in lines
        )
        out.append(" ".join(lines) if wrapped else "\n".join(line.rstrip() for line in lines))
    return "\n\n".join(out)


def _pack(docs: Sequence[tuple[str, str, str]]) -> Iterator[_Chunk]:
    """Group consecutive docstrings of one module into reference-page chunks of 50+ words.

    Chunk sizes come from a generator seeded by the module name, so the pool does not depend
    on the sample's seed and can be cached.
    """
    by_module: dict[str, list[_Section]] = {}
    for source, qualname, doc in docs:
        by_module.setdefault(source, []).append(_Section(qualname, doc))
    for source, sections in by_module.items():
        sizer = random.Random(source)
        current: list[_Section] = []
        words = 0
        target = sizer.randint(CHUNK_MIN_WORDS, 150)
        for section in _split_long(sections):
            current.append(section)
            words += len(section.heading.split()) + len(section.body.split())
            if words >= target:
                yield _chunk(source, current)
                current, words = [], 0
                target = sizer.randint(CHUNK_MIN_WORDS, 150)
        if words >= CHUNK_MIN_WORDS:
            yield _chunk(source, current)


def _chunk(source: str, sections: list[_Section]) -> _Chunk:
    name = _qualified(source, sections[0].heading)
    if len(sections) > 1:
        name += f"+{len(sections) - 1}"
    return _Chunk(name, tuple(sections))


def _split_long(sections: Sequence[_Section]) -> Iterator[_Section]:
    """Cut long docstrings at paragraph breaks into pieces of about 150 words.

    Pieces after the first have no heading, so a chunk reads on from one to the next.
    """
    for section in sections:
        heading = section.heading
        piece: list[str] = []
        for paragraph in section.body.split("\n\n"):
            piece.append(paragraph)
            if sum(len(p.split()) for p in piece) >= 150:
                yield _Section(heading, "\n\n".join(piece))
                heading, piece = "", []
        if piece:
            yield _Section(heading, "\n\n".join(piece))


def _doctest_block(doc: str) -> str:
    try:
        examples = doctest.DocTestParser().get_examples(doc)
    except ValueError:
        return ""
    lines: list[str] = []
    for example in examples:
        source = example.source.rstrip("\n").split("\n")
        lines.append(f">>> {source[0]}")
        lines.extend(f"... {line}" for line in source[1:])
        lines.extend(example.want.rstrip("\n").split("\n") if example.want else [])
    return "\n".join(lines)


def _pack_code(blocks: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Join consecutive doctest blocks until each document has at least 12 lines."""
    current: list[str] = []
    first = ""
    for source, block in blocks:
        first = first or source
        current.append(block)
        if sum(b.count("\n") + 1 for b in current) >= 12:
            yield first, "\n\n".join(current)
            current, first = [], ""


def _foreign_pool(django_root: Path, lang: str) -> Iterator[tuple[str, str]]:
    """Documents of 40-200 words made of consecutive translated messages of one catalog."""
    sizer = random.Random(f"po:{lang}")
    for path in _po_paths(django_root, lang):
        source = f"django-locale:{lang}:{path.relative_to(django_root.parent).as_posix()}"
        sentences: list[str] = []
        words = 0
        target = sizer.randint(40, 90)
        for text in _usable_messages(path):
            if text[-1] not in ".!?:;…":
                text += "."
            sentences.append(text)
            words += len(text.split())
            if words >= target:
                paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
                yield source, "\n\n".join(paragraphs)
                sentences, words = [], 0
                target = sizer.randint(40, 90)


def _po_paths(django_root: Path, lang: str) -> list[Path]:
    catalogs = [django_root / "conf" / "locale", *sorted(django_root.glob("contrib/*/locale"))]
    found = [p for c in catalogs for p in (c / lang / "LC_MESSAGES").glob("*.po")]
    return sorted(found, key=lambda p: p.relative_to(django_root).as_posix())


def _po_strings(django_root: Path, lang: str) -> list[str]:
    return [text for path in _po_paths(django_root, lang) for text in _usable_messages(path)]


@functools.cache
def _usable_messages(path: Path) -> tuple[str, ...]:
    """Translated sentences of at least three words, without placeholders or markup."""
    out: dict[str, None] = {}
    for msgid, msgstr in _parse_po(path):
        text = " ".join(msgstr.split())
        if msgid and text and text != msgid and len(text.split()) >= 3:
            if not _PLACEHOLDER.search(text):
                out.setdefault(text)
    return tuple(out)


def _parse_po(path: Path) -> Iterator[tuple[str, str]]:
    """(msgid, first msgstr) of each translated, non-fuzzy entry of a gettext catalog.

    Names of languages (the msgids of the LANGUAGES setting) are skipped: they are not prose.
    """
    entry: dict[str, str] = {}
    key = ""
    skip = False
    languages = _language_names()
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if entry and not skip and entry.get("msgid") not in languages:
                yield entry.get("msgid", ""), entry.get("msgstr", entry.get("msgstr[0]", ""))
            entry, key, skip = {}, "", False
        elif line.startswith("#,") and "fuzzy" in line:
            skip = True
        elif line.startswith("#"):
            continue
        elif line.startswith('"') and key:
            entry[key] += _po_unquote(line)
        else:
            head, _, value = line.partition(" ")
            if value.startswith('"'):
                key = head
                entry[key] = _po_unquote(value)


@functools.lru_cache(maxsize=1)
def _language_names() -> frozenset[str]:
    settings = Path(django.__file__).parent / "conf" / "global_settings.py"
    return frozenset(re.findall(r'gettext_noop\("([^"]+)"\)', settings.read_text(encoding="utf-8")))


_PO_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _po_unquote(quoted: str) -> str:
    """The value of a C-style quoted gettext string (unknown escapes keep their letter)."""
    return re.sub(r"\\(.)", lambda m: _PO_ESCAPES.get(m.group(1), m.group(1)), quoted[1:-1])
