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
from datatrove.utils.word_tokenizers import (
    SpaCyTokenizer,
    WordTokenizer,
    load_word_tokenizer,
    strip_strings,
)

T = TypeVar("T")

# Texts whose tokens stay cached per process. The heuristic steps run one after the other on
# the same batch; a batch that fits here is tokenized once for all of them. At about 12 bytes
# of token strings per character, 4M characters hold ~50 MB.
MAX_CACHED_CHARS = 4_000_000
# Strings a private spaCy pipeline may learn before it is built anew: with its lexemes and its
# tokenizer's cache, about 60 MB (measured with 100k random words); building one takes ~0.2 s.
MAX_SPACY_STRINGS = 100_000
# Whitespace-separated chunks spaCy's tokenizer remembers: its default, 10,000, fills within a
# few hundred documents, after which every new chunk is split again.
SPACY_CACHE_CHUNKS = 100_000


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
    """Datatrove's tokenizer for ``language``, remembering its words and sentence spans.

    Datatrove's filters accept a ``WordTokenizer`` wherever they take a language code, so they
    share this cache with the steps' own measurements. The lists returned are shared: read them,
    never change them.

    Where datatrove's tokenizer is a plain spaCy pipeline (English and most languages), the
    same pipeline, built the same way but private to this object, tokenizes outside spaCy's
    memory zones. Datatrove opens a zone around every call, and a zone drops everything spaCy
    learned inside it: its lexemes and its tokenizer's cache of whitespace-separated chunks, so
    each document paid for every word again (2-3x slower). The tokens are the same, as spaCy's
    caches only remember its results; the private vocabulary grows with new words, so past
    ``max_strings`` strings the pipeline is built anew.
    """

    def __init__(
        self,
        language: str,
        max_chars: int = MAX_CACHED_CHARS,
        max_strings: int = MAX_SPACY_STRINGS,
    ) -> None:
        super().__init__(language)
        self.inner = load_word_tokenizer(language)
        self.max_strings = max_strings
        self._words = _LruByChars(max_chars)
        self._spans = _LruByChars(max_chars // 4)
        # Datatrove gives Japanese and Chinese a config (chunked input, another segmenter):
        # those keep its own calls.
        self._plain_spacy = isinstance(self.inner, SpaCyTokenizer) and self.inner.config is None
        self._nlp: Any = None

    def word_tokenize(self, text: str) -> list[str]:
        return self._words.get(text, self._word_tokenize)

    def sent_tokenize(self, text: str) -> list[str]:
        return self.inner.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._spans.get(text, self._span_tokenize)

    def _word_tokenize(self, text: str) -> list[str]:
        doc = self._spacy_doc(text, sentences=False)
        if doc is None:
            return self.inner.word_tokenize(text)
        return strip_strings([token.text for token in doc])

    def _span_tokenize(self, text: str) -> list[tuple[int, int]]:
        doc = self._spacy_doc(text, sentences=True)
        if doc is None:
            return self.inner.span_tokenize(text)
        return [(sentence.start_char, sentence.end_char) for sentence in doc.sents]

    def _spacy_doc(self, text: str, *, sentences: bool) -> Any:
        """The private pipeline's ``Doc`` of ``text`` (tokens only unless ``sentences``), or
        None where datatrove's tokenizer must do it."""
        if not self._plain_spacy:
            return None
        if self._nlp is None:
            self._nlp = SpaCyTokenizer(self.inner.language).tokenizer
            self._nlp.tokenizer.max_cache_size = SPACY_CACHE_CHUNKS
        nlp = self._nlp
        nlp.max_length = len(text) + 10
        try:
            # The sentencizer only marks sentence starts: make_doc's tokens are nlp()'s.
            doc = nlp(text) if sentences else nlp.make_doc(text)
        except Exception:  # noqa: BLE001 - datatrove's own call retries a few texts or raises
            self._nlp = None
            return None
        if len(nlp.vocab.strings) > self.max_strings:
            self._nlp = None
        return doc


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
