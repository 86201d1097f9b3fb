"""FineWeb's quality rules (Penedo et al. 2024) as datatrove runs them."""

from __future__ import annotations

from typing import Any

from pipelines.steps.base import Param, SignalSpec, register
from pipelines.steps.heuristics._base import LANGUAGE, DatatroveFilterStep, check_strings


@register
class FineWebQuality(DatatroveFilterStep):
    """FineWeb's quality rules (datatrove's ``FineWebQualityFilter``), over non-blank lines."""

    name = "fineweb_quality"
    version = "1"
    description = "FineWeb rules: lines ending in punctuation, short lines, duplicates, lists."
    params = (
        Param(
            "line_punct_thr",
            float,
            0.12,
            "smallest share of lines ending in punctuation",
            nullable=True,
        ),
        Param(
            "line_punct_exclude_zero",
            bool,
            False,
            "keep documents where no line ends in punctuation",
        ),
        Param(
            "stop_chars",
            tuple,
            None,
            "line-ending punctuation (None: datatrove's TERMINAL_PUNCTUATION)",
            nullable=True,
        ),
        Param("short_line_thr", float, 0.67, "largest share of short lines", nullable=True),
        Param("short_line_length", int, 30, "a short line has at most this many chars", minimum=0),
        Param(
            "char_duplicates_ratio",
            float,
            0.01,
            "largest share of characters in duplicate lines",
            nullable=True,
        ),
        Param("new_line_ratio", float, 0.3, "most newlines per word", nullable=True),
        LANGUAGE,
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_strings(self.name, "stop_chars", self.config["stop_chars"])

    def number_signals(self) -> list[SignalSpec]:
        p = self.name
        return [
            SignalSpec(f"{p}_line_punct_ratio", "float", "share of lines ending in stop_chars"),
            SignalSpec(f"{p}_short_line_ratio", "float", "share of lines of short_line_length"),
            SignalSpec(
                f"{p}_char_dup_ratio",
                "float",
                "characters in duplicate lines / characters other than newlines",
            ),
            SignalSpec(f"{p}_newline_word_ratio", "float", "newlines per word"),
        ]

    def make_filter(self, tokenizer: Any) -> Any:
        from datatrove.pipeline.filters import FineWebQualityFilter

        c = self.config
        # Datatrove's thresholds cannot be None: a disabled one becomes a bound never crossed.
        return FineWebQualityFilter(
            line_punct_thr=_or(c["line_punct_thr"], float("-inf")),
            line_punct_exclude_zero=c["line_punct_exclude_zero"],
            stop_chars=c["stop_chars"],
            short_line_thr=_or(c["short_line_thr"], float("inf")),
            short_line_length=c["short_line_length"],
            char_duplicates_ratio=_or(c["char_duplicates_ratio"], float("inf")),
            new_line_ratio=_or(c["new_line_ratio"], float("inf")),
            language=tokenizer,
        )

    def measure(self, text: str, tokenizer: Any) -> list[Any]:
        from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
        from datatrove.utils.text import split_into_words

        from pipelines.steps.heuristics._datatrove import ratio

        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return [None, None, None, None]
        stop_chars = self._filter.stop_chars
        short = self.config["short_line_length"]
        words = split_into_words(text, tokenizer)
        return [
            sum(1 for line in lines if line.endswith(stop_chars)) / len(lines),
            sum(1 for line in lines if len(line) <= short) / len(lines),
            find_duplicates(lines)[1] / len(text.replace("\n", "")),
            ratio(text.count("\n"), len(words)),
        ]


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
