"""Helpers shared by the format readers: bounded line draining, ids, NUL checks, reasons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curation.services.readers.base import _MISSING, Rejection

# Oversized lines are drained in small chunks: readline(n) briefly holds about 2n bytes.
_DRAIN_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"


def _drain(first: bytes, readline: Callable[[int], bytes]) -> tuple[int, int, int]:
    """Consume the rest of a line that began with `first`, in bounded chunks.

    Returns (size without line terminator, bytes consumed, count of '"' in the line).
    """
    consumed = len(first)
    quotes = first.count(b'"')
    chunk = first
    while not chunk.endswith(b"\n"):
        chunk = readline(_DRAIN_CHUNK)
        if not chunk:
            break
        consumed += len(chunk)
        quotes += chunk.count(b'"')
    if chunk.endswith(b"\r\n"):
        return consumed - 2, consumed, quotes
    if chunk.endswith(b"\n"):
        return consumed - 1, consumed, quotes
    return consumed, consumed, quotes


def _too_long(size: int, limit: int, what: str = "record") -> str:
    return (
        f"the {what} is {size:,} bytes, over the limit of {limit:,} bytes; split it, remove it, "
        "or raise WINNOW_MAX_RECORD_BYTES"
    )


def _bad_utf8(offset: int, line: int | None = None) -> str:
    where = f"byte {offset} of the line" if line is None else f"byte {offset} of line {line}"
    return f"invalid UTF-8 at {where}; re-encode the file as UTF-8"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction (float)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _coerce_id(value: Any, id_field: str) -> tuple[str | None, str]:
    """Return (external id, "") or (None, reason)."""
    kind = type(value)
    if kind is str:
        if value.strip() and "\x00" not in value:
            return value, ""
        if "\x00" in value:
            return None, (
                f"the id field {id_field!r} contains a NUL character (\\x00), which "
                "PostgreSQL cannot store; fix the id"
            )
        return None, f"the id field {id_field!r} is empty; give every row a non-empty id"
    if kind is int:
        return str(value), ""
    if value is _MISSING:
        return None, (
            f"missing id field {id_field!r}; give every row an id, or import without an id field"
        )
    return None, (
        f"the id field {id_field!r} is {_type_name(value)}; ids must be non-empty strings "
        "or integers"
    )


def _find_nul(value: Any, path: str) -> str | None:
    """Return the path of the first string or key holding NUL inside `value`, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path} (a key)"
            found = _find_nul(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _nul_rejection(
    source: str, number: int, text: str, meta: dict[str, Any], text_field: str
) -> Rejection | None:
    at = text.find("\x00")
    if at >= 0:
        return Rejection(
            source,
            number,
            f"the text contains a NUL character (\\x00) at character {at}, which PostgreSQL "
            "text cannot store; strip NUL characters from the data",
            text_field,
        )
    for key, value in meta.items():
        where = _find_nul(key, key) or _find_nul(value, key)
        if where is not None:
            return Rejection(
                source,
                number,
                f"field {where!r} contains a NUL character (\\x00), which PostgreSQL jsonb "
                "cannot store; strip NUL characters from the data",
                key.replace("\x00", "\\x00"),
            )
    return None


def _columns(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"its columns are {shown}{more}" if names else "it has no columns"
