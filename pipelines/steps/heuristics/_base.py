"""The shape shared by the steps that wrap a datatrove filter, and their checks."""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError

LANGUAGE = Param(
    "language",
    str,
    "eng",
    "language of datatrove's word tokenizer (a code in its tokenizer_assignment.csv)",
)


def check_language(step: str, language: str) -> None:
    from datatrove.utils.word_tokenizers import load_tokenizer_assignments

    if language not in load_tokenizer_assignments():
        raise StepParamError(
            f"step {step!r}, parameter 'language': datatrove has no word tokenizer for "
            f"{language!r}; use a code from datatrove's tokenizer_assignment.csv such as 'eng'"
        )


def check_strings(step: str, name: str, value: tuple[Any, ...] | None) -> None:
    if value is not None and not all(isinstance(v, str) and v for v in value):
        raise StepParamError(f"step {step!r}, parameter {name!r}: expected non-empty strings")


class DatatroveFilterStep(Step):
    """A datatrove filter: ``_keep`` and ``_reason`` from ``judge`` (by default, the filter's
    own verdict), numbers from ``measure``."""

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        check_language(self.name, self.config["language"])
        self._filter: Any = None

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec(f"{self.name}_keep", "bool", "datatrove's verdict: keep the document"),
            SignalSpec(f"{self.name}_reason", "text", "datatrove's reason for dropping it"),
            *self.number_signals(),
        ]

    @abstractmethod
    def number_signals(self) -> list[SignalSpec]:
        """The numbers measured, after ``_keep`` and ``_reason``."""

    @abstractmethod
    def make_filter(self, tokenizer: Any) -> Any:
        """Datatrove's filter with this step's parameters, tokenizing with ``tokenizer``."""

    @abstractmethod
    def measure(self, text: str, tokenizer: Any) -> list[Any]:
        """Values of ``number_signals()``, in order, for one document."""

    def judge(self, text: str, numbers: list[Any]) -> tuple[bool | None, str | None]:
        """``(keep, reason)`` for ``text``, whose ``measure`` gave ``numbers``: here, the filter's
        own verdict. A step whose numbers already decide it may derive it from them instead,
        with a test that it equals the filter's on every document."""
        from pipelines.steps.heuristics._datatrove import verdict

        return verdict(self._filter, text)

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        from pipelines.steps.heuristics._datatrove import word_tokenizer

        tokenizer = word_tokenizer(self.config["language"])
        if self._filter is None:
            self._filter = self.make_filter(tokenizer)
        names = [s.name for s in self.signals()]
        columns: list[list[Any]] = [[] for _ in names]
        with warnings.catch_warnings():
            # Gopher's filter takes numpy's mean of no words once min_doc_words is off.
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            for doc in batch:
                numbers = self.measure(doc.text, tokenizer)
                row = [*self.judge(doc.text, numbers), *numbers]
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
        return dict(zip(names, columns, strict=True))
