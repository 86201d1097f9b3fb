"""The noisy documents: duplicates, boilerplate, markup, lists, symbols, unicode, odd lengths.

Each maker draws from the builder's one :class:`random.Random`, so the order of the calls is
part of the sample's determinism.
"""

from __future__ import annotations

import html
import math
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence

from curation.sample_data.base import _Chunk, _Corpus, _Doc, normalize, shingle_jaccard, shingles

NEAR_DUPLICATE_RANGE = (0.5, 0.95)


LONG_MIN_CHARS = 20_000


LONG_MAX_CHARS = 200_000


# The first long document is one line this long or more, to exercise line-length limits.
HUGE_MIN_CHARS = 100_000


SHORT_MAX_WORDS = 5


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


_WORD = re.compile(r"[^\W\d_]{4,}")


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
