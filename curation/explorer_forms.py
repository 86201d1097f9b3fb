"""The explorer's filter form: the whole filter lives in the URL's query string.

Fixed fields (``q``, ``lang``, ``exact``/``minhash``/``semantic``, ``meta_key`` and
``meta_value``, ``sort``, ``order``, ``after``) plus one or two per signal:
``min.<name>`` and ``max.<name>`` for numbers, ``eq.<name>`` for booleans and text.
A ``min.``/``max.``/``eq.`` key naming no signal is a form error, never ignored,
so a shared link that no longer applies says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.forms.boundfield import BoundField

from curation.explorer import (
    DEDUP_KINDS,
    NUMERIC,
    SORTABLE,
    Cursor,
    CursorError,
    DedupStatus,
    Equals,
    ExplorerPage,
    ExplorerQuery,
    MetaEquals,
    Range,
    SignalColumn,
    Sort,
)
from curation.models import Signal

SIGNAL_PREFIXES = ("min.", "max.", "eq.")
# What a form sends for "no choice": left out of the canonical URL.
DEFAULTS = {("order", "asc"), ("sort", "id")}
LANG_SIGNAL = "lang"
DEDUP_CHOICES = [
    ("", "any"),
    ("kept", "kept representative"),
    ("removed", "duplicate removed"),
    ("alone", "not in a group"),
]


@dataclass(frozen=True)
class SignalFilterRow:
    """A signal and its filter inputs, for the template."""

    signal: Signal
    low: BoundField | None
    high: BoundField | None
    equal: BoundField | None

    @property
    def active(self) -> bool:
        return any(
            f is not None and f.value() not in (None, "") for f in (self.low, self.high, self.equal)
        )

    @property
    def numeric(self) -> bool:
        return self.signal.dtype in NUMERIC


class ExplorerForm(forms.Form):
    q = forms.CharField(
        label="Text search",
        required=False,
        max_length=500,
        help_text='Words (all must occur), "a phrase", or, -excluded.',
    )
    lang = forms.CharField(label="Language", required=False, max_length=32)
    exact = forms.ChoiceField(label="Exact duplicates", choices=DEDUP_CHOICES, required=False)
    minhash = forms.ChoiceField(label="Near duplicates", choices=DEDUP_CHOICES, required=False)
    semantic = forms.ChoiceField(label="Semantic duplicates", choices=DEDUP_CHOICES, required=False)
    meta_key = forms.CharField(label="Meta field", required=False, max_length=200)
    meta_value = forms.CharField(label="equals", required=False, max_length=1000)
    sort = forms.CharField(label="Sort by", required=False, max_length=100)
    order = forms.ChoiceField(
        label="Order", choices=[("asc", "ascending"), ("desc", "descending")], required=False
    )
    after = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def __init__(self, data: Any, *, signals: list[Signal], search_problem: str = "") -> None:
        """``signals``: every defined signal; ``search_problem``: why text search is off, or ""."""
        super().__init__(data)
        self.signals = {s.name: s for s in signals}
        self.search_problem = search_problem
        for signal in signals:
            if signal.dtype == Signal.Dtype.FLOAT:
                number = forms.FloatField
                attrs = {"step": "any"}
            elif signal.dtype == Signal.Dtype.INT:
                number = forms.IntegerField  # type: ignore[assignment]
                attrs = {}
            else:
                number = None  # type: ignore[assignment]
                attrs = {}
            if number is not None:
                for side in ("min", "max"):
                    self.fields[f"{side}.{signal.name}"] = number(
                        label=f"{signal.name} {side}",
                        required=False,
                        widget=forms.NumberInput(attrs={**attrs, "placeholder": side}),
                    )
            elif signal.dtype == Signal.Dtype.BOOL:
                self.fields[f"eq.{signal.name}"] = forms.ChoiceField(
                    label=signal.name,
                    required=False,
                    choices=[("", "any"), ("true", "true"), ("false", "false")],
                )
            elif signal.dtype == Signal.Dtype.TEXT:
                self.fields[f"eq.{signal.name}"] = forms.CharField(
                    label=signal.name, required=False, max_length=1000
                )
        self.fields["sort"].widget = forms.Select(
            choices=[("", "id")] + [(s.name, s.name) for s in signals if s.dtype in SORTABLE]
        )

    def filter_fields(self) -> list[BoundField]:
        """The fixed filters, in display order (the signal filters are in ``signal_rows``)."""
        names = ("q", "lang", "exact", "minhash", "semantic", "meta_key", "meta_value")
        return [self[name] for name in (*names, "sort", "order")]

    def signal_rows(self) -> list[SignalFilterRow]:
        """One row per filterable signal, by name."""

        def bound(name: str) -> BoundField | None:
            return self[name] if name in self.fields else None

        return [
            SignalFilterRow(
                signal=s,
                low=bound(f"min.{s.name}"),
                high=bound(f"max.{s.name}"),
                equal=bound(f"eq.{s.name}"),
            )
            for s in self.signals.values()
            if s.dtype != Signal.Dtype.JSON
        ]

    def clean_q(self) -> str:
        q = self.cleaned_data["q"].strip()
        if q and not re.search(r"\w", q):
            raise forms.ValidationError("Search for at least one word.")
        if q and self.search_problem:
            raise forms.ValidationError(self.search_problem)
        return q

    def clean_lang(self) -> str:
        lang = self.cleaned_data["lang"].strip()
        if lang and LANG_SIGNAL not in self.signals:
            raise forms.ValidationError(
                "No language signal yet: run the language_id step on this dataset first."
            )
        return lang

    def clean_sort(self) -> str:
        sort = self.cleaned_data["sort"].strip()
        if sort in ("", "id"):
            return ""
        signal = self.signals.get(sort)
        if signal is None:
            raise forms.ValidationError(
                f"Unknown signal {sort!r}: sort by id or by a listed signal."
            )
        if signal.dtype not in SORTABLE:
            raise forms.ValidationError(f"Signal {sort!r} holds JSON, which has no order.")
        return sort

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unknown = sorted(
            key for key in self.data if key.startswith(SIGNAL_PREFIXES) and key not in self.fields
        )
        for key in unknown:
            name = key.split(".", 1)[1]
            if name in self.signals:
                dtype = self.signals[name].dtype
                problem = f"{key}: signal {name!r} holds {dtype}, which has no such filter."
            else:
                problem = (
                    f"{key}: there is no signal named {name!r} (the signals are listed below)."
                )
            self.add_error(None, problem)
        for name in self.signals:
            low, high = cleaned.get(f"min.{name}"), cleaned.get(f"max.{name}")
            if low is not None and high is not None and low > high:
                self.add_error(f"max.{name}", f"The maximum is below the minimum ({low}).")
        for kind in DEDUP_KINDS:
            if cleaned.get(kind) and not {f"{kind}_dedup_keep", f"{kind}_dedup_size"} <= set(
                self.signals
            ):
                self.add_error(
                    kind, f"No {kind} dedup signals yet: run the {kind}_dedup step first."
                )
        if cleaned.get("meta_key") and not cleaned.get("meta_value"):
            self.add_error("meta_value", "Enter the value the meta field must equal.")
        if cleaned.get("meta_value") and not cleaned.get("meta_key"):
            self.add_error("meta_key", "Enter the meta field to compare.")
        if cleaned.get("after") and "sort" in cleaned:
            try:
                cleaned["cursor"] = Cursor.decode(cleaned["after"], self._sort(cleaned))
            except CursorError as exc:
                self.add_error("after", f"Bad page link ({exc}): start again from the first page.")
        return cleaned

    def _column(self, name: str) -> SignalColumn:
        return SignalColumn.of(self.signals[name])

    def _sort(self, cleaned: dict[str, Any]) -> Sort:
        name = cleaned.get("sort")
        return Sort(
            signal=self._column(name) if name else None,
            descending=cleaned.get("order") == "desc",
        )

    def query(self, *, dataset_id: int) -> ExplorerQuery:
        """The parsed filter; call after ``is_valid()`` returned True."""
        cd = self.cleaned_data
        ranges = []
        equals = []
        for name, signal in self.signals.items():
            low, high = cd.get(f"min.{name}"), cd.get(f"max.{name}")
            if low is not None or high is not None:
                ranges.append(Range(signal=self._column(name), lo=low, hi=high))
            value = cd.get(f"eq.{name}")
            if value not in (None, ""):
                if signal.dtype == Signal.Dtype.BOOL:
                    value = value == "true"
                equals.append(Equals(signal=self._column(name), value=value))
        if cd.get("lang"):
            equals.append(Equals(signal=self._column(LANG_SIGNAL), value=cd["lang"]))
        dedup = tuple(
            DedupStatus(
                kind=kind,
                status=cd[kind],
                keep=self._column(f"{kind}_dedup_keep"),
                size=self._column(f"{kind}_dedup_size"),
            )
            for kind in DEDUP_KINDS
            if cd.get(kind)
        )
        meta = MetaEquals(cd["meta_key"], cd["meta_value"]) if cd.get("meta_key") else None
        return ExplorerQuery(
            dataset_id=dataset_id,
            ranges=tuple(ranges),
            equals=tuple(equals),
            dedup=dedup,
            meta=meta,
            text=cd.get("q", ""),
            sort=self._sort(cd),
        )

    @property
    def cursor(self) -> Cursor | None:
        return self.cleaned_data.get("cursor")

    def query_string(self, *, after: Cursor | None = None) -> str:
        """The filter as typed, less empty and default fields and the page; ``after`` appended."""
        lists = (
            self.data.lists()
            if hasattr(self.data, "lists")
            else ((k, v if isinstance(v, list) else [v]) for k, v in self.data.items())
        )
        pairs = [
            (key, str(value))
            for key, values in lists
            if key != "after"
            for value in values
            if str(value).strip() and (key, value) not in DEFAULTS
        ]
        if after is not None:
            pairs.append(("after", after.encode(self._sort(self.cleaned_data))))
        return urlencode(pairs)

    def next_query(self, page: ExplorerPage) -> str:
        """The query string of the page after ``page`` ("" on the last page)."""
        return self.query_string(after=page.next_cursor) if page.next_cursor is not None else ""

    def url(self, path: str, page: ExplorerPage | None = None) -> str:
        """``path`` with this filter (and the page cursor when the form was valid)."""
        query_string = self.query_string(after=self.cursor if page is not None else None)
        return f"{path}?{query_string}" if query_string else path

    def bounds(self, name: str) -> tuple[float | None, float | None]:
        """The min/max typed for the signal ``name`` when they are valid, else None."""
        cd = getattr(self, "cleaned_data", {})
        return cd.get(f"min.{name}"), cd.get(f"max.{name}")
