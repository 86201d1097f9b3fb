"""Deterministic perturbations of queries and contexts for robustness sets (FailSafeQA).

Query perturbations: misspellings (swapped, dropped, doubled or neighbouring-key
letters) and incomplete queries (cut short). Context perturbations: degraded text
(OCR-like confusions, lost spaces and line breaks) and an empty context; the
irrelevant context (another document) and the change of register (through a model)
are made by the generator step. Every function takes a ``random.Random`` so that the
same seed gives the same perturbation.
"""

from __future__ import annotations

import random
import re

QUERY_KINDS = ("misspelled", "incomplete")
CONTEXT_KINDS = ("degraded", "empty", "irrelevant")

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _row in _KEYBOARD_ROWS:
    for _i, _ch in enumerate(_row):
        _NEIGHBOURS[_ch] = _row[max(0, _i - 1) : _i] + _row[_i + 1 : _i + 2]

# Confusions an OCR engine makes on scanned text.
_OCR = (
    ("rn", "m"),
    ("m", "rn"),
    ("l", "1"),
    ("I", "l"),
    ("O", "0"),
    ("o", "0"),
    ("e", "c"),
    ("S", "5"),
    ("B", "8"),
    ("cl", "d"),
    ("h", "b"),
    ("t", "f"),
)
_WORD = re.compile(r"[A-Za-z]{4,}")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower())
    if not near:
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice(near) + word[i + 1 :]


def misspell(text: str, *, rng: random.Random, rate: float = 0.3) -> str:
    """Put one typo in about ``rate`` of the words of 4+ letters (at least one word)."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    chosen = {m.start() for m in words if rng.random() < rate} or {rng.choice(words).start()}
    out, last = [], 0
    for match in words:
        out.append(text[last : match.start()])
        word = match.group(0)
        out.append(_typo(word, rng) if match.start() in chosen else word)
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def incomplete(text: str, *, rng: random.Random, keep: tuple[float, float] = (0.4, 0.7)) -> str:
    """The first 40-70% of the words (at least one word fewer), without the final mark."""
    words = text.split()
    if len(words) < 2:
        return text
    share = rng.uniform(*keep)
    count = min(len(words) - 1, max(1, round(len(words) * share)))
    return " ".join(words[:count]).rstrip("?.!,;:")


def degrade(text: str, *, rng: random.Random, rate: float = 0.05) -> str:
    """OCR-like damage: about ``rate`` of the confusable spots swapped, spaces and breaks lost."""
    out = []
    i = 0
    while i < len(text):
        for source, target in _OCR:
            if text.startswith(source, i) and rng.random() < rate:
                out.append(target)
                i += len(source)
                break
        else:
            ch = text[i]
            if ch in " \n" and rng.random() < rate:
                out.append("" if ch == " " else " ")
            else:
                out.append(ch)
            i += 1
    return "".join(out)


def perturb_query(kind: str, text: str, *, rng: random.Random) -> str:
    if kind == "misspelled":
        return misspell(text, rng=rng)
    if kind == "incomplete":
        return incomplete(text, rng=rng)
    raise ValueError(f"query perturbation {kind!r} is not one of {', '.join(QUERY_KINDS)}")
