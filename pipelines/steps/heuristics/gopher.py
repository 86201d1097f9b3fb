"""Gopher's quality and repetition rules (Rae et al. 2021, table A1) as datatrove runs them."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipelines.steps.base import Param, SignalSpec, StepParamError, register
from pipelines.steps.heuristics._base import LANGUAGE, DatatroveFilterStep, check_strings

TOP_N_GRAMS = ((2, 0.2), (3, 0.18), (4, 0.16))
DUP_N_GRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


def _n_gram_thresholds(step: str, name: str, value: tuple[Any, ...]) -> tuple[Any, ...]:
    """Validate ``((n, max_fraction | None), ...)``; lists (from JSON) become tuples."""
    pairs = []
    for pair in value:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not isinstance(pair[0], int)
            or isinstance(pair[0], bool)
            or pair[0] < 1
            or not (pair[1] is None or isinstance(pair[1], (int, float)))
            or isinstance(pair[1], bool)
        ):
            raise StepParamError(
                f"step {step!r}, parameter {name!r}: expected pairs (n >= 1, max fraction or "
                f"None), got {pair!r}"
            )
        pairs.append((pair[0], None if pair[1] is None else float(pair[1])))
    if len({n for n, _ in pairs}) != len(pairs):
        raise StepParamError(f"step {step!r}, parameter {name!r}: each n may appear once")
    return tuple(pairs)


@register
class GopherQuality(DatatroveFilterStep):
    """Gopher's quality rules (datatrove's ``GopherQualityFilter``).

    As in datatrove, a threshold of 0 switches its rule off, as None does (it tests ``if x``).
    """

    name = "gopher_quality"
    version = "1"
    description = (
        "Gopher quality rules: document length, word length, symbols, bullets, stop words."
    )
    params = (
        Param("min_doc_words", int, 50, "fewest non-symbol words", nullable=True, minimum=0),
        Param("max_doc_words", int, 100000, "most non-symbol words", nullable=True, minimum=0),
        Param("min_avg_word_length", float, 3.0, "shortest mean word length", nullable=True),
        Param("max_avg_word_length", float, 10.0, "longest mean word length", nullable=True),
        Param(
            "max_symbol_word_ratio",
            float,
            0.1,
            "most '#' per word, and most ellipses per word",
            nullable=True,
            minimum=0,
        ),
        Param(
            "max_bullet_lines_ratio",
            float,
            0.9,
            "largest share of lines starting with a bullet",
            nullable=True,
            minimum=0,
        ),
        Param(
            "max_ellipsis_lines_ratio",
            float,
            0.3,
            "largest share of lines ending with an ellipsis",
            nullable=True,
            minimum=0,
        ),
        Param(
            "max_non_alpha_words_ratio",
            float,
            0.8,
            "smallest share of words with a letter (datatrove's name says max; it is a minimum)",
            nullable=True,
            minimum=0,
        ),
        Param("min_stop_words", int, 2, "fewest distinct stop words", nullable=True, minimum=0),
        Param(
            "stop_words",
            tuple,
            None,
            "stop words (None: datatrove's 'the be to of and that have with'); case-sensitive",
            nullable=True,
        ),
        LANGUAGE,
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_strings(self.name, "stop_words", self.config["stop_words"])

    def number_signals(self) -> list[SignalSpec]:
        p = self.name
        return [
            SignalSpec(f"{p}_word_count", "int", "words with a character that isn't punctuation"),
            SignalSpec(f"{p}_mean_word_length", "float", "mean length of those words"),
            SignalSpec(f"{p}_hash_word_ratio", "float", "'#' characters per word (all words)"),
            SignalSpec(f"{p}_ellipsis_word_ratio", "float", "'...' and '…' per word"),
            SignalSpec(f"{p}_bullet_lines_ratio", "float", "share of lines starting with - or •"),
            SignalSpec(
                f"{p}_ellipsis_lines_ratio", "float", "share of lines ending with an ellipsis"
            ),
            SignalSpec(f"{p}_alpha_words_ratio", "float", "share of words with a letter"),
            SignalSpec(f"{p}_stop_word_count", "int", "distinct stop words present"),
        ]

    def make_filter(self, tokenizer: Any) -> Any:
        from datatrove.pipeline.filters import GopherQualityFilter

        c = self.config
        return GopherQualityFilter(
            min_doc_words=c["min_doc_words"],
            max_doc_words=c["max_doc_words"],
            min_avg_word_length=c["min_avg_word_length"],
            max_avg_word_length=c["max_avg_word_length"],
            max_symbol_word_ratio=c["max_symbol_word_ratio"],
            max_bullet_lines_ratio=c["max_bullet_lines_ratio"],
            max_ellipsis_lines_ratio=c["max_ellipsis_lines_ratio"],
            max_non_alpha_words_ratio=c["max_non_alpha_words_ratio"],
            min_stop_words=c["min_stop_words"],
            stop_words=None if c["stop_words"] is None else list(c["stop_words"]),
            language=tokenizer,
        )

    def measure(self, text: str, tokenizer: Any) -> list[Any]:
        from datatrove.utils.text import PUNCTUATION_SET, split_into_words

        from pipelines.steps.heuristics._datatrove import ratio

        words = split_into_words(text, tokenizer)
        non_symbol = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
        lines = text.splitlines()
        return [
            len(non_symbol),
            ratio(sum(map(len, non_symbol)), len(non_symbol)),
            ratio(text.count("#"), len(words)),
            ratio(text.count("...") + text.count("…"), len(words)),
            ratio(sum(s.lstrip().startswith(("•", "-")) for s in lines), len(lines)),
            ratio(sum(s.rstrip().endswith(("...", "…")) for s in lines), len(lines)),
            ratio(sum(any(c.isalpha() for c in w) for w in words), len(words)),
            len(self._filter.stop_words.intersection(words)),
        ]


@register
class GopherRepetition(DatatroveFilterStep):
    """Gopher's repetition rules (datatrove's ``GopherRepetitionFilter``).

    As in datatrove, a line or paragraph threshold of 0 switches its rule off, as None does.
    The most frequent n-gram counts even when it occurs once, so short documents without any
    repetition can fail ``top_n_grams``. The verdict is the filter's, derived from the numbers
    measured (each computed once, as the filter computes it), not by running the filter again.
    """

    name = "gopher_repetition"
    version = "1"
    description = "Gopher repetition rules: duplicate lines, paragraphs and n-grams."
    params = (
        Param("dup_line_frac", float, 0.3, "largest share of duplicate lines", nullable=True),
        Param("dup_para_frac", float, 0.3, "largest share of duplicate paragraphs", nullable=True),
        Param(
            "dup_line_char_frac",
            float,
            0.2,
            "largest share of characters in duplicate lines",
            nullable=True,
        ),
        Param(
            "dup_para_char_frac",
            float,
            0.2,
            "largest share of characters in duplicate paragraphs",
            nullable=True,
        ),
        Param(
            "top_n_grams",
            tuple,
            TOP_N_GRAMS,
            "pairs (n, largest character share of the most frequent n-gram or None)",
        ),
        Param(
            "dup_n_grams",
            tuple,
            DUP_N_GRAMS,
            "pairs (n, largest character share of repeated n-grams or None)",
        ),
        LANGUAGE,
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        for name in ("top_n_grams", "dup_n_grams"):
            self.config[name] = _n_gram_thresholds(self.name, name, self.config[name])

    def number_signals(self) -> list[SignalSpec]:
        p = self.name
        return [
            SignalSpec(f"{p}_dup_para_frac", "float", "share of paragraphs that repeat one"),
            SignalSpec(f"{p}_dup_para_char_frac", "float", "their characters / all characters"),
            SignalSpec(f"{p}_dup_line_frac", "float", "share of lines that repeat one"),
            SignalSpec(f"{p}_dup_line_char_frac", "float", "their characters / all characters"),
            *(
                SignalSpec(
                    f"{p}_top_{n}_gram_char_frac",
                    "float",
                    f"characters of the most frequent word {n}-gram x its count / all characters",
                )
                for n, _ in self.config["top_n_grams"]
            ),
            *(
                SignalSpec(
                    f"{p}_dup_{n}_gram_char_frac",
                    "float",
                    f"characters in repeated word {n}-grams / all characters",
                )
                for n, _ in self.config["dup_n_grams"]
            ),
        ]

    def make_filter(self, tokenizer: Any) -> Any:
        from datatrove.pipeline.filters import GopherRepetitionFilter

        c = self.config
        return GopherRepetitionFilter(
            dup_line_frac=c["dup_line_frac"],
            dup_para_frac=c["dup_para_frac"],
            dup_line_char_frac=c["dup_line_char_frac"],
            dup_para_char_frac=c["dup_para_char_frac"],
            # datatrove has no way to switch one n off: leave it out of the filter's list.
            top_n_grams=tuple((n, f) for n, f in c["top_n_grams"] if f is not None),
            dup_n_grams=tuple((n, f) for n, f in c["dup_n_grams"] if f is not None),
            language=tokenizer,
        )

    def measure(self, text: str, tokenizer: Any) -> list[Any]:
        from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
        from datatrove.utils.text import split_into_words

        top, dup = self.config["top_n_grams"], self.config["dup_n_grams"]
        if not text:
            return [None] * (4 + len(top) + len(dup))
        # The filter's own patterns, so that paragraphs and lines are cut where it cuts them.
        paragraphs = self._filter.paragraph_exp.split(text.strip())
        para_dups, para_dup_chars = find_duplicates(paragraphs)
        lines = self._filter._line_splitter.split(text)
        line_dups, line_dup_chars = find_duplicates(lines)
        words = split_into_words(text, tokenizer)
        top_chars = [top_n_gram_chars(words, n) for n, _ in top]
        dup_chars = repeated_n_gram_chars(words, [n for n, _ in dup])
        return [
            para_dups / len(paragraphs),
            para_dup_chars / len(text),
            line_dups / len(lines),
            line_dup_chars / len(text),
            *(None if chars is None else chars / len(text) for chars in top_chars),
            *(dup_chars[n] / len(text) for n, _ in dup),
        ]

    def judge(self, text: str, numbers: list[Any]) -> tuple[bool | None, str | None]:
        """The filter's verdict from the numbers: its rules in its order, each on the same
        quotient it compares (a threshold of 0 or None off for lines and paragraphs, None off
        for n-grams; a top n-gram share of None, no n-grams, passes)."""
        if not text:
            return False, "empty"
        c = self.config
        rules = [
            (c["dup_para_frac"] or None, "dup_para_frac"),
            (c["dup_para_char_frac"] or None, "dup_para_char_frac"),
            (c["dup_line_frac"] or None, "dup_line_frac"),
            (c["dup_line_char_frac"] or None, "dup_line_char_frac"),
            *((bound, f"top_{n}_gram") for n, bound in c["top_n_grams"]),
            *((bound, f"duplicated_{n}_n_grams") for n, bound in c["dup_n_grams"]),
        ]
        for (bound, reason), value in zip(rules, numbers, strict=True):
            if bound is not None and value is not None and value > bound:
                return False, reason
        return True, None


def top_n_gram_chars(words: list[str], n: int) -> int | None:
    """Characters of the most frequent word n-gram (words joined by a space) times its count,
    None without any n-gram: datatrove's ``find_top_duplicate(get_n_grams(words, n))``. On a tie
    the n-gram met first counts, as with ``Counter.most_common``."""
    if len(words) < n:
        return None
    counts = Counter(map(" ".join, zip(*(words[i:] for i in range(n)), strict=False)))
    n_gram, count = counts.most_common(1)[0]
    return len(n_gram) * count


def repeated_n_gram_chars(words: list[str], ns: Iterable[int]) -> dict[int, int]:
    """For each n in ``ns``, datatrove's ``find_all_duplicate(words, n)``: the characters of
    the word n-grams (words concatenated without spaces) that repeat one met before, scanning
    from the left and jumping past each repeat.

    The n-grams of each length are built from the previous length's, one word longer.
    """
    wanted = set(ns)
    found: dict[int, int] = {}
    n_grams = words
    for n in range(1, max(wanted, default=0) + 1):
        if n > 1:
            n_grams = list(map(operator.add, n_grams, words[n - 1 :]))
        if n in wanted:
            found[n] = _repeated_chars(n_grams, n)
    return found


def _repeated_chars(n_grams: list[str], n: int) -> int:
    if len(set(n_grams)) == len(n_grams):
        return 0  # none repeats: the scan below would find nothing
    seen: set[str] = set()
    repeated = i = 0
    while i < len(n_grams):
        n_gram = n_grams[i]
        if n_gram in seen:
            repeated += len(n_gram)
            i += n  # past the repeat: its words count once
        else:
            seen.add(n_gram)
            i += 1
    return repeated
