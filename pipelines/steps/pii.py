"""Personal data found by pattern: e-mail addresses, phone numbers, IP addresses, card numbers.

Every pattern is linear in the length of the text: each starts with a lookbehind that refuses
to start inside a run it could already have started on, and its repetitions are possessive or
bounded, so no position is scanned more than a constant number of times. A regular expression
finds candidates; Python then checks them (the octets of an address, the Luhn digit of a card,
the digit count of a phone number) and drops the ones that fail.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterator, Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register

KINDS = ("email", "phone", "ip", "credit_card")

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++")
# A card number: 13-19 digits in one run, or in groups of 4-4-4-4(-3) or 4-6-5 (4-6-4) with
# one kind of separator; never a piece of a longer run of digits or digit groups.
CREDIT_CARD = re.compile(
    r"(?<![\w+])(?<!\d[ -])"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?![\w]|[ -]\d)"
)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
IPV6 = re.compile(
    r"(?<![\w:.])"
    r"(?>(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?)"
    r"(?![\w:]|\.\d)"
)
# +CC then digit groups, optionally parenthesized, separated by one space, dot or dash.
PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d++(?:[ .-]?+(?:\(\d++\)|\d++))*+")
# North American: (NXX) XXX-XXXX or NXX-XXX-XXXX with one kind of separator, optional leading 1.
PHONE_NANP = re.compile(
    r"(?<![\w+./-])(?:1[ .-]?)?"
    r"(?:\([2-9]\d\d\) ?\d{3}[ .-]\d{4}|[2-9]\d\d([ .-])\d{3}\1\d{4})"
    r"(?!\w|[./-]\d)"
)
# European national numbers: trunk prefix 0, as in 020 7946 0958, 01 23 45 67 89, (030) 1234567.
PHONE_NATIONAL = re.compile(r"(?<![\w+./-])(?:\(0\d++\) ?+\d++|0\d++)(?:[ ./-]\d++)*+")
DIGIT_GROUPS = re.compile(r"\d+")
SEPARATOR = re.compile(r"[ ./-]")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for m in EMAIL.finditer(text):
        local, domain = m.group().split("@")
        labels = domain.split(".")
        if (
            local.startswith(".")
            or local.endswith(".")
            or ".." in local
            or any(not label or label[0] == "-" or label[-1] == "-" for label in labels)
            or not (labels[-1].isalpha() and 2 <= len(labels[-1]) <= 63)
            or text[m.end() : m.end() + 1] in ("@", "_")
        ):
            continue
        yield m.span()


def _credit_cards(text: str) -> Iterator[tuple[int, int]]:
    for m in CREDIT_CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        # Luhn passes for 0000 0000 0000 0000: placeholders of one repeated digit are not cards.
        if _luhn(digits) and len(set(digits)) > 1:
            yield m.span()


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in IPV6.finditer(text):
        value = m.group()
        groups = value.replace(".", ":").split(":")
        # Python slices (a[1::2], x[::3]) look like short addresses: ask for a real one.
        if value != "::1" and value.count(":") < 3 and all(len(g) < 3 for g in groups):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield m.span()
    for m in IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())  # octets 0-255, no leading zeros
        except ValueError:
            continue
        yield m.span()


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for m in PHONE_INTERNATIONAL.finditer(text):
        value = m.group()
        digits = sum(map(len, DIGIT_GROUPS.findall(value)))
        if 8 <= digits <= 15 and not text[m.end() : m.end() + 1].isalpha():
            yield m.span()
    for m in PHONE_NANP.finditer(text):
        yield m.span()
    for m in PHONE_NATIONAL.finditer(text):
        value = m.group()
        groups = DIGIT_GROUPS.findall(value)
        # One kind of separator, not counting the space after a parenthesized area code.
        rest = value.partition(")")[2].lstrip() if value.startswith("(") else value
        looks_like_date = len(groups) >= 3 and len(groups[1]) <= 2 and len(groups[2]) == 4
        if (
            len(groups) < 2
            or not 9 <= sum(map(len, groups)) <= 13
            or len(set(SEPARATOR.findall(rest))) > 1
            or not 2 <= len(groups[0]) <= 5
            or looks_like_date
            or text[m.end() : m.end() + 1].isalpha()
        ):
            continue
        yield m.span()


FINDERS = {"email": _emails, "credit_card": _credit_cards, "ip": _ips, "phone": _phones}


def find_pii(text: str, kinds: Sequence[str] = KINDS) -> list[list[Any]]:
    """Sorted, non-overlapping ``[start, end, kind]`` spans (Python string offsets).

    Where two candidates overlap, the first found wins, finding e-mail addresses, then card
    numbers, IP addresses and phone numbers (international, North American, national).
    """
    starts: list[int] = []
    spans: list[list[Any]] = []
    for kind in sorted(kinds, key=list(FINDERS).index):
        for start, end in FINDERS[kind](text):
            i = bisect.bisect_right(starts, start)
            if (i and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end):
                continue
            starts.insert(i, start)
            spans.insert(i, [start, end, kind])
    return spans


@register
class Pii(Step):
    """Counts and character spans of personal data; export redacts the spans later."""

    name = "pii"
    version = "1"
    description = "E-mail addresses, phone numbers, IP addresses and card numbers: counts, spans."
    params = (
        Param(
            "kinds",
            tuple,
            KINDS,
            f"what to look for, among {', '.join(KINDS)}",
        ),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        kinds = self.config["kinds"]
        unknown = [k for k in kinds if k not in KINDS]
        if not kinds or unknown:
            raise StepParamError(
                f"step {self.name!r}, parameter 'kinds': expected some of {list(KINDS)}, "
                f"got {list(kinds)!r}"
            )
        self.config["kinds"] = tuple(k for k in KINDS if k in kinds)

    def signals(self) -> list[SignalSpec]:
        return [
            *(
                SignalSpec(f"pii_{kind}_count", "int", f"{kind.replace('_', ' ')}s found")
                for kind in self.config["kinds"]
            ),
            SignalSpec("pii_spans", "json", "sorted, non-overlapping [start, end, kind]"),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        kinds = self.config["kinds"]
        out: dict[str, list[Any]] = {f"pii_{kind}_count": [] for kind in kinds}
        out["pii_spans"] = []
        for doc in batch:
            spans = find_pii(doc.text, kinds)
            for kind in kinds:
                out[f"pii_{kind}_count"].append(sum(1 for s in spans if s[2] == kind))
            out["pii_spans"].append(spans)
        return out
