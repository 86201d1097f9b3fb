"""What the heuristic steps share when they call datatrove: a memoizing word tokenizer, verdicts.

Imported only from inside ``run`` (datatrove's filters take about 0.4 s to import).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from datatrove.data import Document as DatatroveDocument
from datatrove.pipeline.filters.base_filter import get_filter_result
from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer

T = TypeVar("T")

# Texts whose tokens stay cached per process. The heuristic steps run one after the other on
# the same batch; a batch that fits here is tokenized once for all of them. At about 12 bytes
# of token strings per character, 4M characters hold ~50 MB.
MAX_CACHED_CHARS = 4_000_000


class _LruByChars:
    """Least-recently-used cache keyed by text, bounded by the total length of its keys."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._chars = 0

    def get(self, key: str, compute: Callable[[str], T]) -> T:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]  # type: ignore[no-any-return]
        value = compute(key)
        if len(key) > self.max_chars:
            return value
        self._items[key] = value
        self._chars += len(key)
        while self._chars > self.max_chars:
            old, _ = self._items.popitem(last=False)
            self._chars -= len(old)
        return value


class MemoTokenizer(WordTokenizer):
    """Datatrove's own tokenizer for ``language``, remembering its words and sentence spans.

    Datatrove's filters accept a ``WordTokenizer`` wherever they take a language code, so they
    share this cache with the steps' own measurements. The lists returned are shared: read them,
    never change them.
    """

    def __init__(self, language: str, max_chars: int = MAX_CACHED_CHARS) -> None:
        super().__init__(language)
        self.inner = load_word_tokenizer(language)
        self._words = _LruByChars(max_chars)
        self._spans = _LruByChars(max_chars // 4)

    def word_tokenize(self, text: str) -> list[str]:
        return self._words.get(text, self.inner.word_tokenize)

    def sent_tokenize(self, text: str) -> list[str]:
        return self.inner.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._spans.get(text, self.inner.span_tokenize)


@cache
def word_tokenizer(language: str) -> MemoTokenizer:
    """The process's tokenizer for ``language`` (a code datatrove knows: "eng", "en", "fr"...)."""
    return MemoTokenizer(language)


def verdict(datatrove_filter: Any, text: str) -> tuple[bool | None, str | None]:
    """The filter's own ``(keep, reason)`` on a throwaway datatrove document holding ``text``.

    A fresh document each time: C4's filter rewrites ``doc.text``, which must never reach us.
    Datatrove divides by the number of words or lines without checking it; that happens only
    on documents without any, once the thresholds that reject them are disabled. Such a
    document gets no verdict: ``(None, None)``.
    """
    try:
        result = datatrove_filter.filter(DatatroveDocument(text=text, id=""))
    except ZeroDivisionError:
        return None, None
    keep, reason = get_filter_result(result)
    return bool(keep), (None if keep else reason)


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None where the denominator is zero (nothing to measure)."""
    return numerator / denominator if denominator else None
