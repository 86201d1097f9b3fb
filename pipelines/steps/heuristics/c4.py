"""C4's line and document rules (Raffel et al. 2020) as datatrove runs them."""

from __future__ import annotations

from typing import Any

from pipelines.steps.base import Param, SignalSpec, register
from pipelines.steps.heuristics._base import LANGUAGE, DatatroveFilterStep


@register
class C4Quality(DatatroveFilterStep):
    """C4's rules (datatrove's ``C4QualityFilter``). The stored text is never changed.

    The filter removes lines and keeps the document if enough sentences remain; the counts say
    how many lines each rule would remove. Each line counts under the first rule that removes
    it, in datatrove's order, with the rules that this step's parameters switch on. Lines with
    "lorem ipsum" or a curly bracket make datatrove drop the whole document, but only once the
    line has passed the punctuation and word-count rules.
    """

    name = "c4_quality"
    version = "1"
    description = "C4 rules: lines removed by each rule, lines and sentences kept."
    params = (
        Param("split_paragraph", bool, True, "rules apply to lines (False: to sentences)"),
        Param("remove_citations", bool, True, "strip [1], [edit], [citation needed] first"),
        Param("filter_no_terminal_punct", bool, True, "remove lines without end punctuation"),
        Param("min_num_sentences", int, 5, "fewest sentences kept", nullable=True, minimum=0),
        Param("min_words_per_line", int, 3, "remove shorter lines", nullable=True, minimum=0),
        Param(
            "max_word_length", int, 1000, "remove lines with longer words", nullable=True, minimum=1
        ),
        Param("filter_lorem_ipsum", bool, True, "drop documents with 'lorem ipsum'"),
        Param("filter_javascript", bool, True, "remove lines with 'javascript'"),
        Param("filter_curly_bracket", bool, True, "drop documents with '{'"),
        Param("filter_policy", bool, True, "remove cookie and terms-of-use lines"),
        LANGUAGE,
    )
    RULES = (
        "too_long_word",
        "no_terminal_punct",
        "too_few_words",
        "lorem_ipsum",
        "javascript",
        "curly_bracket",
        "policy",
    )

    def number_signals(self) -> list[SignalSpec]:
        p = self.name
        unit = "lines" if self.config["split_paragraph"] else "sentences"
        return [
            SignalSpec(f"{p}_line_count", "int", f"{unit} examined"),
            SignalSpec(f"{p}_kept_line_count", "int", f"{unit} no rule removes"),
            SignalSpec(f"{p}_kept_lines_frac", "float", f"kept {unit} / {unit} examined"),
            SignalSpec(f"{p}_sentence_count", "int", f"sentences in the kept {unit}"),
            *(
                SignalSpec(f"{p}_{rule}_lines", "int", f"{unit} removed first by rule {rule}")
                for rule in self.RULES
            ),
        ]

    def make_filter(self, tokenizer: Any) -> Any:
        from datatrove.pipeline.filters import C4QualityFilter

        c = self.config
        return C4QualityFilter(
            split_paragraph=c["split_paragraph"],
            remove_citations=c["remove_citations"],
            filter_no_terminal_punct=c["filter_no_terminal_punct"],
            min_num_sentences=_or_minus_one(c["min_num_sentences"]),
            min_words_per_line=_or_minus_one(c["min_words_per_line"]),
            max_word_length=_or_minus_one(c["max_word_length"]),
            filter_lorem_ipsum=c["filter_lorem_ipsum"],
            filter_javascript=c["filter_javascript"],
            filter_curly_bracket=c["filter_curly_bracket"],
            filter_policy=c["filter_policy"],
            language=tokenizer,
        )

    def measure(self, text: str, tokenizer: Any) -> list[Any]:
        """Datatrove's line loop, without its early exits and with counters."""
        from datatrove.pipeline.filters.c4_filters import (
            CITATION_REGEX,
            ELLIPSIS,
            END_PUNCTUATION,
            POLICY_SUBSTRINGS,
        )
        from datatrove.utils.text import split_into_sentences

        from pipelines.steps.heuristics._datatrove import ratio

        c = self.config
        by_paragraph = c["split_paragraph"]
        max_word_length = _or_minus_one(c["max_word_length"])
        min_words = _or_minus_one(c["min_words_per_line"])
        lines = text.splitlines() if by_paragraph else split_into_sentences(text, tokenizer)
        removed = dict.fromkeys(self.RULES, 0)
        kept = sentences = 0
        for line in lines:
            line = line.strip()
            words = line.split()
            if max_word_length != -1 and any(len(w) > max_word_length for w in words):
                removed["too_long_word"] += 1
                continue
            if c["remove_citations"]:
                line = CITATION_REGEX.sub("", line)
            if c["filter_no_terminal_punct"] and (
                not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)
            ):
                removed["no_terminal_punct"] += 1
                continue
            if len(words) < min_words:
                removed["too_few_words"] += 1
                continue
            line_l = line.lower()
            if c["filter_lorem_ipsum"] and "lorem ipsum" in line_l:
                removed["lorem_ipsum"] += 1
                continue
            if c["filter_javascript"] and "javascript" in line_l:
                removed["javascript"] += 1
                continue
            if c["filter_curly_bracket"] and "{" in line:
                removed["curly_bracket"] += 1
                continue
            if c["filter_policy"] and any(p in line_l for p in POLICY_SUBSTRINGS):
                removed["policy"] += 1
                continue
            kept += 1
            sentences += len(split_into_sentences(line, tokenizer)) if by_paragraph else 1
        return [len(lines), kept, ratio(kept, len(lines)), sentences, *removed.values()]


def _or_minus_one(value: int | None) -> int:
    """C4's filter switches an integer rule off with -1."""
    return -1 if value is None else value
