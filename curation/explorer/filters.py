"""The explorer's parsed filter: what to match, how to sort, where a page starts.

Plain values, no database access: the form builds them from the query string,
``sources.py`` and ``query.py`` turn them into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.models import Signal

DEDUP_KINDS = ("exact", "minhash", "semantic")
DEDUP_STATUSES = ("kept", "removed", "alone")
SORTABLE = (Signal.Dtype.FLOAT, Signal.Dtype.INT, Signal.Dtype.BOOL, Signal.Dtype.TEXT)
NUMERIC = (Signal.Dtype.FLOAT, Signal.Dtype.INT)


class CursorError(ValueError):
    """A page cursor that does not parse for the current sort."""


@dataclass(frozen=True)
class SignalColumn:
    """What a query needs of a signal: its name, its column in the signal table, its dtype."""

    name: str
    column: str
    dtype: str

    @classmethod
    def of(cls, signal: Signal) -> SignalColumn:
        return cls(name=signal.name, column=signal.column_name, dtype=signal.dtype)

    @property
    def is_numeric(self) -> bool:
        return self.dtype in NUMERIC


@dataclass(frozen=True)
class Range:
    """``lo <= value <= hi``; a missing side is open. NULL values never match."""

    signal: SignalColumn
    lo: float | int | None = None
    hi: float | int | None = None


@dataclass(frozen=True)
class Equals:
    signal: SignalColumn
    value: bool | str


@dataclass(frozen=True)
class DedupStatus:
    """Duplicate status by one kind of dedup, read from its ``<kind>_dedup_keep/_size`` signals.

    ``kept``: kept representative of a group of 2 or more; ``removed``: a duplicate
    that the step did not keep; ``alone``: kept and in no group (size 1 or unknown).
    """

    kind: str
    status: str
    keep: SignalColumn
    size: SignalColumn


@dataclass(frozen=True)
class MetaEquals:
    """``meta ->> key = value`` (the value compared as text)."""

    key: str
    value: str


@dataclass(frozen=True)
class Sort:
    """Order by a signal (NULLs last) then id, or by id alone when ``signal`` is None."""

    signal: SignalColumn | None = None
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    """The last row of the previous page: its id and, for a signal sort, its value."""

    id: int
    value: Any = None

    def encode(self, sort: Sort) -> str:
        """``"<id>"`` for the id sort; ``"<id>:n"`` (NULL) or ``"<id>:v<value>"`` otherwise."""
        if sort.signal is None:
            return str(self.id)
        if self.value is None:
            return f"{self.id}:n"
        if isinstance(self.value, bool):
            return f"{self.id}:v{'true' if self.value else 'false'}"
        if isinstance(self.value, float):
            return f"{self.id}:v{self.value!r}"
        return f"{self.id}:v{self.value}"

    @classmethod
    def decode(cls, raw: str, sort: Sort) -> Cursor:
        """Parse :meth:`encode`'s output for ``sort``; :class:`CursorError` when it does not fit."""
        head, sep, tail = raw.partition(":")
        try:
            doc_id = int(head)
        except ValueError as exc:
            raise CursorError("the page cursor does not start with a document id") from exc
        if sort.signal is None:
            if sep:
                raise CursorError("this page cursor belongs to a sort by a signal")
            return cls(id=doc_id)
        if tail == "n":
            return cls(id=doc_id, value=None)
        if not tail.startswith("v"):
            raise CursorError("this page cursor belongs to the sort by id")
        text = tail[1:]
        dtype = sort.signal.dtype
        try:
            if dtype == Signal.Dtype.FLOAT:
                return cls(id=doc_id, value=float(text))
            if dtype == Signal.Dtype.INT:
                return cls(id=doc_id, value=int(text))
        except ValueError as exc:
            raise CursorError(f"the page cursor's value is not a {dtype}") from exc
        if dtype == Signal.Dtype.BOOL:
            if text not in ("true", "false"):
                raise CursorError("the page cursor's value is not true or false")
            return cls(id=doc_id, value=text == "true")
        return cls(id=doc_id, value=text)


@dataclass(frozen=True)
class HitBits:
    """The documents a text query matches: bit n (``get_bit`` order) is document
    ``first_id + n``; ``hits`` bits are set (``explorer/text_hits.py``)."""

    first_id: int
    last_id: int
    hits: int
    bits: bytes = field(repr=False)

    def flags(self, lo: int, hi: int) -> np.ndarray:
        """One flag per document id of ``[lo, hi)``: True for a hit (False outside the bits)."""
        flags = np.zeros(max(0, hi - lo), dtype=bool)
        a, b = max(lo, self.first_id), min(hi, self.last_id + 1)
        if b > a:
            start, n = a - self.first_id, b - a
            packed = np.frombuffer(self.bits, dtype=np.uint8)[start // 8 : (start + n + 7) // 8]
            unpacked = np.unpackbits(packed, bitorder="little")[start % 8 : start % 8 + n]
            flags[a - lo : b - lo] = unpacked.astype(bool)
        return flags


@dataclass(frozen=True)
class ExplorerQuery:
    """A parsed explorer filter for one dataset: every part optional, all of them ANDed.

    ``text_hits`` is not part of the filter: the cached bitmap of ``text``'s hits
    (``text_hits.py``), set for an exact count; the query then reads the signal rows
    alone and tests a bit for the text instead of visiting documents.
    """

    dataset_id: int
    ranges: tuple[Range, ...] = ()
    equals: tuple[Equals, ...] = ()
    dedup: tuple[DedupStatus, ...] = ()
    meta: MetaEquals | None = None
    text: str = ""
    sort: Sort = field(default_factory=Sort)
    text_hits: HitBits | None = field(default=None, compare=False, repr=False)

    @property
    def reads_signals(self) -> bool:
        """True when some predicate needs a signal value (so only rows with one can match)."""
        return bool(self.ranges or self.equals or self.dedup)

    @property
    def reads_documents(self) -> bool:
        return self.meta is not None or (bool(self.text) and self.text_hits is None)

    @property
    def indexable_signals(self) -> tuple[str, ...]:
        """Names of the signals filtered by range or value, or sorted by (index candidates)."""
        names = [p.signal.name for p in self.ranges] + [e.signal.name for e in self.equals]
        if self.sort.signal is not None:
            names.append(self.sort.signal.name)
        return tuple(dict.fromkeys(names))
