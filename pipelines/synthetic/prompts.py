"""Prompt templates (sandboxed Jinja) and the parsing of what a model answers.

A template is Jinja source rendered in a sandbox (no attribute access to Python
internals, no imports) with the document in the context. Its version is a hash
of its source, so lineage names exactly the text that produced a record, and a
template that does not compile is reported with its line number.

Model output is parsed as JSON (an object, or a list of objects, possibly inside
a fenced block) or, failing that, as delimited fields (``Question: ...`` /
``Answer: ...``). A reply that yields none of the wanted fields is malformed:
the generator retries it once and otherwise counts it, never fills it in.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS = 20_000

# Built-in templates: the defaults of the generator steps, editable per pipeline.
INSTRUCT_TEMPLATE = """\
Write one instruction that a user could give an assistant, answerable from the
document below, and the assistant's complete response.
Reply with JSON only: {"instruction": "...", "response": "..."}

Document:
{{ text }}
"""

QA_TEMPLATE = """\
Write {{ n }} question(s) answerable from the document below, each with its answer
taken from the document.
Reply with JSON only: a list of {"question": "...", "answer": "..."}

Document:
{{ text }}
"""

PARAPHRASE_TEMPLATE = """\
Rewrite the document below in clean, fluent prose. Keep every fact; drop
boilerplate, navigation text and markup. Reply with the rewritten text only.

Document:
{{ text }}
"""

REGISTER_TEMPLATE = """\
Rewrite the question below in a {{ register }} register. Keep what it asks;
change only the wording. Reply with the rewritten question only.

Question: {{ question }}
"""


class PromptTemplateError(ValueError):
    """A template does not compile or does not render; the message says where and why."""


class OutputParseError(ValueError):
    """A model reply holds none of the wanted fields."""


@dataclass(frozen=True)
class PromptTemplate:
    """A named Jinja template; ``version`` is the first 12 hex digits of its source's SHA-256."""

    name: str
    source: str

    @property
    def version(self) -> str:
        return template_version(self.source)

    def render(self, **context: Any) -> str:
        """The prompt for ``context``; PromptTemplateError names the template and the line."""
        compiled = _compile(self.name, self.source)
        try:
            return compiled.render(**context)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"template {self.name!r}" + (f", line {line}" if line else "")
            raise PromptTemplateError(
                f"{where}: {exc.message or exc}; the variables are {', '.join(sorted(context))}"
            ) from exc


def template_version(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:12]


@lru_cache(maxsize=64)
def _compile(name: str, source: str) -> Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise PromptTemplateError(
            f"template {name!r} has {len(source)} characters; the limit is {MAX_TEMPLATE_CHARS}"
        )
    if not source.strip():
        raise PromptTemplateError(f"template {name!r} is empty: write the prompt")
    environment = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    try:
        return environment.from_string(source)
    except TemplateSyntaxError as exc:
        raise PromptTemplateError(f"template {name!r}, line {exc.lineno}: {exc.message}") from exc


def template_check(*, name: str, source: str) -> PromptTemplate:
    """Compile ``source`` now so that a bad template fails when it is saved, not mid-run."""
    template = PromptTemplate(name=name, source=source)
    _compile(name, source)
    return template


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _json_candidates(text: str) -> list[Any]:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for opening, closing in (("[", "]"), ("{", "}")):
        start, end = text.find(opening), text.rfind(closing)
        if start != -1 and end > start:
            candidates.append(text[start : end + 1])
    found = []
    for candidate in candidates:
        try:
            found.append(json.loads(candidate))
        except ValueError:
            continue
    return found


def _records_from_json(value: Any, fields: tuple[str, ...]) -> list[dict[str, str]]:
    items = value if isinstance(value, list) else [value]
    records = []
    for item in items:
        if not isinstance(item, dict):
            continue
        lowered = {str(k).lower(): v for k, v in item.items()}
        values = {f: lowered.get(f) for f in fields}
        if all(isinstance(v, str) and v.strip() for v in values.values()):
            records.append({f: str(values[f]).strip() for f in fields})
    return records


def _records_from_delimited(text: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """``Field: value`` blocks, a value running until the next field label."""
    labels = "|".join(re.escape(f) for f in fields)
    pattern = re.compile(rf"^[\s\-*\d.)]*\**({labels})\**\s*:\s*", re.IGNORECASE | re.MULTILINE)
    marks = list(pattern.finditer(text))
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for n, mark in enumerate(marks):
        field = mark.group(1).lower()
        end = marks[n + 1].start() if n + 1 < len(marks) else len(text)
        value = text[mark.end() : end].strip()
        if field in current:
            current = {}
        current[field] = value
        if len(current) == len(fields) and all(current.values()):
            records.append(current)
            current = {}
    return records


def parse_records(
    text: str, fields: tuple[str, ...], *, limit: int | None = None
) -> list[dict[str, str]]:
    """The records with every one of ``fields`` that the reply holds (at most ``limit``).

    Raises OutputParseError when there are none, saying what was expected.
    """
    for value in _json_candidates(text):
        records = _records_from_json(value, fields)
        if records:
            return records[:limit]
    records = _records_from_delimited(text, fields)
    if records:
        return records[:limit]
    raise OutputParseError(
        f"expected JSON with non-empty {', '.join(fields)} (or lines 'Field: value'); "
        f"got {text[:200]!r}"
    )


def parse_text(text: str, *, min_chars: int = 1) -> str:
    """A plain-text reply, trimmed (the inside of a fenced block when there is one).

    Raises OutputParseError when it is shorter than ``min_chars``.
    """
    cleaned = text.strip()
    fence = _FENCE.search(cleaned)
    if fence is not None:
        cleaned = fence.group(1).strip()
    if len(cleaned) < min_chars:
        raise OutputParseError(f"expected at least {min_chars} characters of text, got {text!r}")
    return cleaned
