from __future__ import annotations

import time

import pytest

from pipelines.steps.base import Document, StepParamError
from pipelines.steps.pii import Pii, find_pii


def found(text: str) -> list[tuple[str, str]]:
    spans = find_pii(text)
    return [(text[start:end], kind) for start, end, kind in spans]


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        (
            "email",
            ["jane.doe+news@example.co.uk", "bob@mail.example.com", "a_b%c@x-y.org"],
        ),
        (
            "phone",
            [
                "+44 20 7946 0958",
                "+1 (415) 555-2671",
                "+33 1 23 45 67 89",
                "+49-89-636-48018",
                "+4915112345678",
                "+44 (0)20 7946 0958",
                "(415) 555-2671",
                "415-555-2671",
                "415.555.2671",
                "415 555 2671",
                "1-800-555-0199",
                "020 7946 0958",
                "07700 900123",
                "01 23 45 67 89",
                "06.12.34.56.78",
                "030 1234567",
                "(030) 12345678",
                "0171-1234567",
                "030/1234567",
            ],
        ),
        (
            "ip",
            [
                "192.168.1.1",
                "10.0.0.255",
                "8.8.8.8",
                "2001:db8::1",
                "::1",
                "fe80::1ff:fe23:4567:890a",
                "::ffff:192.0.2.1",
                "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            ],
        ),
        (
            "credit_card",
            [
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "4111111111111111",
                "378282246310005",
                "3782 822463 10005",
                "6011000990139424",
                "5555555555554444",
            ],
        ),
    ],
)
def test_finds_each_kind_with_exact_spans(kind: str, values: list[str]) -> None:
    for value in values:
        for text in (value, f"Contact: {value}.", f"({value}), then more text"):
            assert found(text) == [(value, kind)], text


@pytest.mark.parametrize(
    "text",
    [
        # e-mail look-alikes
        "a@b",
        "user@localhost",
        "x@y.c",
        "@example.com",
        "foo@.com",
        "a..b@example.com",
        ".a@example.com",
        "name@example..com",
        "name@-example.com",
        # dates, years, plain numbers, versions
        "2023-10-05",
        "10/05/2023",
        "05.10.2023",
        "01.02.2023 12:30",
        "1999 2000 2001",
        "12345678901",
        "0123456789",
        "3.14159265",
        "1,234,567",
        "version 1.2.3",
        # phone look-alikes
        "+1 555",
        "123-456-7890",
        "415-555-26710",
        "415-555 2671",
        "020 7946-0958",
        # addresses that are not
        "999.1.1.1",
        "256.0.0.1",
        "1.2.3.4.5",
        "192.168.01.1",
        "a[1::2]",
        "x[::3]",
        "12:30:45",
        "00:1A:2B:3C:4D:5E",
        "std::vector<int>",
        "map :: [a] -> [b]",
        # card look-alikes: Luhn fails, one repeated digit, part of a longer run
        "4111 1111 1111 1112",
        "4111111111111112",
        "0000 0000 0000 0000",
        "4111 1111 1111 1111 2222",
        "12345678901234567890123",
    ],
)
def test_ignores_look_alikes(text: str) -> None:
    assert found(text) == []
    assert found(f"See {text} here.") == []


def test_spans_are_sorted_disjoint_and_slice_the_values() -> None:
    text = (
        "Mail ops@example.com from 10.0.0.1, call +1 415-555-2671 or 030 1234567; "
        "card 4111 1111 1111 1111. Again: ops@example.com"
    )
    spans = find_pii(text)
    assert [(text[s:e], k) for s, e, k in spans] == [
        ("ops@example.com", "email"),
        ("10.0.0.1", "ip"),
        ("+1 415-555-2671", "phone"),
        ("030 1234567", "phone"),
        ("4111 1111 1111 1111", "credit_card"),
        ("ops@example.com", "email"),
    ]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_an_address_inside_an_ipv6_address_counts_once() -> None:
    assert found("::ffff:192.0.2.1") == [("::ffff:192.0.2.1", "ip")]


def test_step_counts_and_spans_per_document() -> None:
    batch = [
        Document(id=1, text="a@example.com, b@example.org, +44 20 7946 0958"),
        Document(id=2, text=""),
        Document(id=3, text="Server 8.8.8.8 and card 4111111111111111"),
    ]
    out = Pii().run(batch)
    assert out == {
        "pii_email_count": [2, 0, 0],
        "pii_phone_count": [1, 0, 0],
        "pii_ip_count": [0, 0, 1],
        "pii_credit_card_count": [0, 0, 1],
        "pii_spans": [
            [[0, 13, "email"], [15, 28, "email"], [30, 46, "phone"]],
            [],
            [[7, 14, "ip"], [24, 40, "credit_card"]],
        ],
    }


def test_kinds_restricts_what_is_found_and_the_signals() -> None:
    step = Pii(kinds=["ip", "email"])
    assert [s.name for s in step.signals()] == ["pii_email_count", "pii_ip_count", "pii_spans"]
    out = step.run([Document(id=1, text="a@example.com 8.8.8.8 +44 20 7946 0958")])
    assert out == {
        "pii_email_count": [1],
        "pii_ip_count": [1],
        "pii_spans": [[[0, 13, "email"], [14, 21, "ip"]]],
    }


@pytest.mark.parametrize("kinds", [[], ["email", "ssn"], "email"])
def test_unknown_kinds_are_refused(kinds: object) -> None:
    with pytest.raises(StepParamError, match="kinds"):
        Pii(kinds=kinds)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        "1" * 1_000_000,
        "1 " * 500_000,
        "1-" * 500_000,
        "1." * 500_000,
        "00 " * 333_333,
        "+1 " * 333_333,
        ("+" + "1" * 40 + " ") * 24_000,
        "a@" * 500_000,
        "a." * 500_000 + "@",
        "x@" + "a." * 500_000,
        "a" * 500_000 + "@" + "b" * 499_999,
        ":" * 1_000_000,
        "a:" * 500_000,
        "ab::" * 250_000,
        "1.1.1." * 166_666,
        "4111 " * 200_000,
        "(0" * 500_000,
        "(01) " * 200_000,
        "ab.cd@ef 12-34 +5 (6) 7.8.9 ::" * 33_000,
    ],
)
def test_a_megabyte_of_adversarial_text_is_linear(text: str) -> None:
    start = time.perf_counter()
    find_pii(text)
    # Quadratic backtracking on a megabyte would take hours; linear takes well under a second.
    assert time.perf_counter() - start < 5
