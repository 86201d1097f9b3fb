"""Size and character make-up of documents, with datatrove's definitions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, SignalSpec, Step, register
from pipelines.steps.heuristics._base import LANGUAGE, check_language


@register
class DocStats(Step):
    """Size and character make-up of a document, as datatrove's DocStats and LineStats define
    them (lines split on "\\n"; ratios are shares of all characters, None for empty text)."""

    name = "doc_stats"
    version = "1"
    description = "Characters, words, lines, and the share of non-ASCII, uppercase, digits, spaces."
    params = (LANGUAGE,)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_language(self.name, self.config["language"])

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec("doc_stats_char_count", "int", "characters"),
            SignalSpec("doc_stats_word_count", "int", "words (datatrove's tokenizer)"),
            SignalSpec("doc_stats_line_count", "int", "lines (pieces between newlines)"),
            SignalSpec("doc_stats_mean_line_length", "float", "mean characters per line"),
            SignalSpec("doc_stats_non_ascii_ratio", "float", "share of non-ASCII characters"),
            SignalSpec("doc_stats_uppercase_ratio", "float", "share of uppercase characters"),
            SignalSpec("doc_stats_digit_ratio", "float", "share of digit characters"),
            SignalSpec("doc_stats_whitespace_ratio", "float", "share of whitespace characters"),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        from datatrove.utils.text import split_into_words

        from pipelines.steps.heuristics._datatrove import ratio, word_tokenizer

        tokenizer = word_tokenizer(self.config["language"])
        names = [s.name for s in self.signals()]
        columns: list[list[Any]] = [[] for _ in names]
        for doc in batch:
            text = doc.text
            n = len(text)
            n_lines = text.count("\n") + 1
            # str.split() splits on exactly the characters for which str.isspace() is true.
            n_space = n - sum(map(len, text.split()))
            row = [
                n,
                len(split_into_words(text, tokenizer)),
                n_lines,
                (n - n_lines + 1) / n_lines,
                ratio(n - len(text.encode("ascii", "ignore")), n),
                ratio(sum(map(str.isupper, text)), n),
                ratio(sum(map(str.isdigit, text)), n),
                ratio(n_space, n),
            ]
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        return dict(zip(names, columns, strict=True))
