"""Recipe rules: validation and coercion of raw rules and dedup policies.

A rule is ``{"signal": name, "op": op, "value": v}`` or ``{"signal": name, "op": op,
"percentile": p}``. A document with no value for a rule's signal (no signal row,
or NULL in the column) FAILS the rule; ``is_null`` / ``not_null`` make that choice
explicit. Errors name the rule (1-based in the message, 0-based ``index``) and
the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from curation.errors import PermanentError
from curation.models import DuplicateGroup, Signal

OPS = ("==", "!=", ">=", "<=", ">", "<", "in", "is_null", "not_null")
COMPARISONS = frozenset({">=", "<=", ">", "<"})
NULL_OPS = frozenset({"is_null", "not_null"})
DEDUP_KINDS = tuple(DuplicateGroup.Kind.values)
MAX_RULES = 50
MAX_IN_VALUES = 1000
_NUMERIC = frozenset({Signal.Dtype.FLOAT, Signal.Dtype.INT})
OPS_BY_DTYPE: dict[str, tuple[str, ...]] = {
    Signal.Dtype.FLOAT: OPS,
    Signal.Dtype.INT: OPS,
    Signal.Dtype.BOOL: ("==", "!=", "is_null", "not_null"),
    Signal.Dtype.TEXT: ("==", "!=", "in", "is_null", "not_null"),
    Signal.Dtype.JSON: ("is_null", "not_null"),
}
_INT64 = 2**63


class RecipeRuleError(PermanentError):
    """A rule or the dedup policy is invalid; ``index`` (0-based) and ``field`` say where."""

    def __init__(self, message: str, *, index: int | None = None, field: str = "") -> None:
        self.index = index
        self.field = field
        self.detail = message
        where = f"rule {index + 1}" if index is not None else "recipe"
        super().__init__(f"{where}, {field}: {message}" if field else f"{where}: {message}")


@dataclass(frozen=True)
class Rule:
    """One validated rule; ``threshold`` is the value, or the resolved percentile."""

    index: int
    signal: Signal
    op: str
    value: Any = None
    percentile: float | None = None
    threshold: Any = None

    @property
    def column(self) -> str:
        return self.signal.column_name

    @property
    def needs_value(self) -> bool:
        return self.op not in NULL_OPS

    @property
    def passes_null(self) -> bool:
        """What a document without a value gets: only ``is_null`` passes it."""
        return self.op == "is_null"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"signal": self.signal.name, "op": self.op}
        if self.percentile is not None:
            data["percentile"] = self.percentile
        elif self.needs_value:
            data["value"] = self.value
        return data

    @property
    def label(self) -> str:
        if not self.needs_value:
            return f"{self.signal.name} {self.op}"
        if self.percentile is not None:
            shown = "…" if self.threshold is None else _short(self.threshold)
            return f"{self.signal.name} {self.op} p{_short(self.percentile)} ({shown})"
        if self.op == "in":
            return f"{self.signal.name} in [{', '.join(_short(v) for v in self.value)}]"
        return f"{self.signal.name} {self.op} {_short(self.value)}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rule_passes(rule: Rule, value: Any) -> bool:
    """The same semantics in Python (provenance display and tests)."""
    if rule.op == "is_null":
        return value is None
    if rule.op == "not_null":
        return value is not None
    if value is None:
        return False
    threshold = rule.threshold
    if rule.op == "in":
        return bool(value in threshold)
    return bool(
        {
            "==": value == threshold,
            "!=": value != threshold,
            ">=": value >= threshold,
            "<=": value <= threshold,
            ">": value > threshold,
            "<": value < threshold,
        }[rule.op]
    )


def ruleset_parse(*, dataset_id: int, rules: Any, dedup: Any) -> tuple[list[Rule], tuple[str, ...]]:
    """Validate raw rules and a dedup policy; values coerced to the signal's dtype.

    Raises ``RecipeRuleError`` naming the rule (1-based in the message) and field.
    """
    if not isinstance(rules, list):
        raise RecipeRuleError("rules must be a list of objects", field="rules")
    if len(rules) > MAX_RULES:
        raise RecipeRuleError(f"at most {MAX_RULES} rules", field="rules")
    names = {r.get("signal") for r in rules if isinstance(r, dict)}
    signals = {s.name: s for s in Signal.objects.filter(name__in=[n for n in names if n])}
    parsed = [_rule_parse(i, raw, signals) for i, raw in enumerate(rules)]
    return parsed, _dedup_parse(dedup)


def _rule_parse(index: int, raw: Any, signals: dict[str, Signal]) -> Rule:
    if not isinstance(raw, dict):
        raise RecipeRuleError("expected an object with signal, op and value", index=index)
    unknown = sorted(set(raw) - {"signal", "op", "value", "percentile"})
    if unknown:
        raise RecipeRuleError(
            f"unknown field {unknown[0]!r}: use signal, op, value or percentile",
            index=index,
            field=unknown[0],
        )
    name = raw.get("signal")
    if not name or not isinstance(name, str):
        raise RecipeRuleError("choose a signal", index=index, field="signal")
    signal = signals.get(name)
    if signal is None:
        raise RecipeRuleError(
            f"no signal named {name!r}: run the step that produces it first",
            index=index,
            field="signal",
        )
    op = raw.get("op")
    if op not in OPS:
        raise RecipeRuleError(
            f"{op!r} is not an operator: use one of {', '.join(OPS)}", index=index, field="op"
        )
    allowed = OPS_BY_DTYPE[signal.dtype]
    if op not in allowed:
        raise RecipeRuleError(
            f"{op} does not apply to {signal.dtype} signal {name!r}: use {', '.join(allowed)}",
            index=index,
            field="op",
        )
    value, percentile = raw.get("value"), raw.get("percentile")
    if value == "":
        value = None
    if percentile == "":
        percentile = None
    if op in NULL_OPS:
        if percentile is not None:
            raise RecipeRuleError(f"{op} takes no percentile", index=index, field="percentile")
        return Rule(index=index, signal=signal, op=op)
    if percentile is not None:
        if value is not None:
            raise RecipeRuleError(
                "give a value or a percentile, not both", index=index, field="percentile"
            )
        return _percentile_rule(index, signal, op, percentile)
    if value is None:
        raise RecipeRuleError(f"{op} needs a value (or a percentile)", index=index, field="value")
    if op == "in":
        items = value if isinstance(value, list) else None
        if not items or len(items) > MAX_IN_VALUES:
            raise RecipeRuleError(
                f"in needs a list of 1 to {MAX_IN_VALUES} values", index=index, field="value"
            )
        coerced = [_coerce(index, signal, v) for v in items]
        return Rule(index=index, signal=signal, op=op, value=coerced, threshold=coerced)
    coerced_value = _coerce(index, signal, value)
    return Rule(index=index, signal=signal, op=op, value=coerced_value, threshold=coerced_value)


def _percentile_rule(index: int, signal: Signal, op: str, percentile: Any) -> Rule:
    if signal.dtype not in _NUMERIC or op not in COMPARISONS:
        raise RecipeRuleError(
            "a percentile applies to a numeric signal with >=, <=, > or <",
            index=index,
            field="percentile",
        )
    try:
        p = float(percentile)
    except (TypeError, ValueError):
        p = math.nan
    if isinstance(percentile, bool) or not 0 <= p <= 100:
        raise RecipeRuleError(
            f"percentile must be a number from 0 to 100, not {percentile!r}",
            index=index,
            field="percentile",
        )
    return Rule(index=index, signal=signal, op=op, percentile=p)


def _coerce(index: int, signal: Signal, value: Any) -> Any:
    """The value as the signal's type; strings from forms are parsed."""
    dtype = signal.dtype
    if dtype in _NUMERIC:
        number: float | int | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                try:
                    number = float(value.strip())
                except ValueError:
                    number = None
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            raise RecipeRuleError(
                f"{value!r} is not a number ({signal.name} is {dtype})", index=index, field="value"
            )
        if isinstance(number, int) and not -_INT64 <= number < _INT64:
            if dtype == Signal.Dtype.INT:
                raise RecipeRuleError(
                    f"{number} is out of the 64-bit range of {signal.name}",
                    index=index,
                    field="value",
                )
            number = float(number)
        return number
    if dtype == Signal.Dtype.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
        raise RecipeRuleError(
            f"{value!r} is not true or false ({signal.name} is bool)", index=index, field="value"
        )
    if not isinstance(value, str):
        raise RecipeRuleError(
            f"{value!r} is not text ({signal.name} is text)", index=index, field="value"
        )
    return value


def _dedup_parse(dedup: Any) -> tuple[str, ...]:
    if dedup is None:
        return ()
    if not isinstance(dedup, dict):
        raise RecipeRuleError('dedup must be an object like {"exact": true}', field="dedup")
    unknown = sorted(set(dedup) - set(DEDUP_KINDS))
    if unknown:
        raise RecipeRuleError(
            f"unknown kind {unknown[0]!r}: use {', '.join(DEDUP_KINDS)}", field="dedup"
        )
    for kind, on in dedup.items():
        if not isinstance(on, bool):
            raise RecipeRuleError(f"{kind} must be true or false", field="dedup")
    return tuple(k for k in DEDUP_KINDS if dedup.get(k))


def signal_snapshot(rule: Rule) -> dict[str, Any]:
    s = rule.signal
    return {
        "id": s.pk,
        "name": s.name,
        "dtype": s.dtype,
        "step": s.step,
        "step_version": s.step_version,
    }


def rules_from_version(*, rules: list[dict[str, Any]], resolved: dict[str, Any]) -> list[Rule]:
    """A saved version's rules with the signals and thresholds recorded at save time."""
    snapshots = resolved.get("signals", {})
    thresholds = resolved.get("thresholds", {})
    ids = [snapshots[str(i)]["id"] for i in range(len(rules))]
    signals = Signal.objects.in_bulk(ids)
    out = []
    for i, raw in enumerate(rules):
        signal = signals.get(ids[i])
        if signal is None:
            raise PermanentError(
                f"rule {i + 1}: signal {snapshots[str(i)]['name']!r} (id {ids[i]}) no longer "
                "exists; this version cannot be evaluated"
            )
        threshold = thresholds[str(i)] if str(i) in thresholds else raw.get("value")
        out.append(
            Rule(
                index=i,
                signal=signal,
                op=raw["op"],
                value=raw.get("value"),
                percentile=raw.get("percentile"),
                threshold=threshold,
            )
        )
    return out
