"""The dataset card (README.md): YAML front matter that ``datasets`` reads, then prose.

The front matter names the data files (``configs``), the features with their
dtypes (``dataset_info``), the size category and the license; a ``winnow`` block
records where the snapshot came from. The prose lists the columns, the recipe's
rules with what each removed, the PII redaction and a histogram per numeric
signal, computed from the per-row numbers the export kept beside each shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from django.utils import timezone

from curation.models import ExportSnapshot
from curation.services.exports.options import PII_KINDS, PII_TOKENS, ExportOptions, Plan

HISTOGRAM_BINS = 10
INTEGER_BINS_MAX = 20
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


def size_category(rows: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "1B<n<10B"


@dataclass
class Histogram:
    name: str
    dtype: str
    count: int = 0
    missing: int = 0
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """For the front matter: ``bins`` are ``[low, high, documents]``, the last one closed."""
        plain = self._plain
        return {
            "values": self.count,
            "missing": self.missing,
            "min": plain(self.minimum),
            "max": plain(self.maximum),
            "mean": None if self.mean is None else float(f"{self.mean:.6g}"),
            "bins": [
                [plain(lo), plain(hi), n]
                for lo, hi, n in zip(self.edges, self.edges[1:], self.counts, strict=False)
            ],
        }

    def _plain(self, value: float | None) -> float | int | None:
        if value is None:
            return None
        if self.dtype in ("int64", "bool") and float(value).is_integer():
            return int(value)
        return float(f"{value:.6g}")


@dataclass
class Summary:
    """What the card reports, from the stats files of every shard."""

    rows: int
    histograms: list[Histogram]
    unscanned: int = 0
    redacted_documents: int = 0
    redacted_spans: dict[str, int] = field(default_factory=dict)


def _matrices(paths: list[Path], width: int) -> list[np.ndarray]:
    return [
        np.fromfile(p, dtype=np.float64).reshape(-1, width) if width else np.empty((0, 0))
        for p in paths
    ]


def stats_summarize(*, plan: Plan, stats_paths: list[Path], rows: int) -> Summary:
    """Two passes over the stats files, one at a time: ranges, then bin counts."""
    names = plan.stat_names
    width = len(names)
    summary = Summary(rows=rows, histograms=[])
    for j, column in enumerate(plan.histogram_columns):
        hist = Histogram(column.name, column.dtype)
        total = 0.0
        for m in _matrices(stats_paths, width):
            values = m[:, j][~np.isnan(m[:, j])]
            hist.count += len(values)
            if len(values):
                total += float(values.sum())
                low, high = float(values.min()), float(values.max())
                hist.minimum = low if hist.minimum is None else min(hist.minimum, low)
                hist.maximum = high if hist.maximum is None else max(hist.maximum, high)
        hist.missing = rows - hist.count
        if hist.count:
            hist.mean = total / hist.count
            hist.edges = _edges(hist)
            if hist.edges[0] == hist.edges[-1]:
                hist.counts = [hist.count]
            else:
                counts = np.zeros(len(hist.edges) - 1, dtype=np.int64)
                for m in _matrices(stats_paths, width):
                    values = m[:, j][~np.isnan(m[:, j])]
                    counts += np.histogram(values, bins=hist.edges)[0]
                hist.counts = [int(c) for c in counts]
        summary.histograms.append(hist)
    if plan.redact:
        base = len(plan.histogram_columns)
        spans = dict.fromkeys(PII_KINDS, 0)
        for m in _matrices(stats_paths, width):
            summary.unscanned += int(m[:, base].sum())
            per_kind = m[:, base + 1 : base + 1 + len(PII_KINDS)]
            summary.redacted_documents += int((per_kind.sum(axis=1) > 0).sum())
            for k, kind in enumerate(PII_KINDS):
                spans[kind] += int(per_kind[:, k].sum())
        summary.redacted_spans = spans
    return summary


def _edges(hist: Histogram) -> list[float]:
    assert hist.minimum is not None and hist.maximum is not None
    low, high = hist.minimum, hist.maximum
    if hist.dtype == "bool":
        return [0.0, 0.5, 1.0]
    if hist.dtype == "int64" and high - low < INTEGER_BINS_MAX:
        return [low + i for i in range(int(high - low) + 1)] + [high + 1]
    if low == high:
        return [low, high + 1] if hist.dtype == "int64" else [low, high]
    return [float(x) for x in np.linspace(low, high, HISTOGRAM_BINS + 1)]


def card_render(
    *,
    snapshot: ExportSnapshot,
    options: ExportOptions,
    plan: Plan,
    summary: Summary,
    shards: list[dict[str, Any]],
    pattern: str,
) -> str:
    """README.md of the snapshot: front matter, then the prose sections."""
    dataset = snapshot.dataset
    version = snapshot.recipe_version
    data_bytes = sum(s["bytes"] for s in shards)
    front: dict[str, Any] = {
        "license": options.license or "other",
        "pretty_name": dataset.name,
        "size_categories": [size_category(summary.rows)],
        "tags": ["winnow"],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": pattern}]}
        ],
        "dataset_info": {
            "features": plan.features(),
            "splits": [{"name": "train", "num_bytes": data_bytes, "num_examples": summary.rows}],
            "download_size": data_bytes,
            "dataset_size": data_bytes,
        },
        "winnow": {
            "snapshot": snapshot.pk,
            "dataset": dataset.name,
            "source": dataset.source or None,
            "recipe": version.recipe.name if version else None,
            "recipe_version": version.version if version else None,
            "format": snapshot.format,
            "rows": summary.rows,
            "shards": len(shards),
            "redaction": _redaction_json(plan, summary),
            "signals": {h.name: h.as_json() for h in summary.histograms},
        },
    }
    parts = [
        "---\n" + _yaml(front) + "---\n",
        f"# {_md(dataset.name)}\n",
        _intro(snapshot, summary, shards, data_bytes),
        _columns_section(plan),
        _recipe_section(snapshot),
        _redaction_section(plan, summary),
        _signals_section(summary),
    ]
    return "\n".join(p for p in parts if p)


def _yaml(data: dict[str, Any]) -> str:
    # Flow style for lists of scalars keeps a histogram bin on one line: [low, high, n].
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


def _md(value: object) -> str:
    """Text in a markdown table cell or line: no pipes, no line breaks."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _intro(
    snapshot: ExportSnapshot, summary: Summary, shards: list[dict[str, Any]], data_bytes: int
) -> str:
    dataset = snapshot.dataset
    lines = []
    if dataset.description:
        lines += [_md(dataset.description), ""]
    when = (snapshot.started_at or timezone.now()).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        f"Exported by Winnow from the dataset **{_md(dataset.name)}** (snapshot {snapshot.pk}, "
        f"{when}).",
        "",
        f"- Source: {_md(dataset.source) if dataset.source else 'not recorded'}",
        f"- Documents: {summary.rows:,}",
        f"- Files: {len(shards)} {snapshot.format} shard(s), {data_bytes:,} bytes",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


def _columns_section(plan: Plan) -> str:
    about = {
        "id": "the document's id in its source",
        "text": "the document's text" + (" (PII redacted)" if plan.redact else ""),
        "meta": "the source's other fields, as a JSON object in a string",
    }
    rows = ["## Columns", "", "| Column | Type | Description |", "|---|---|---|"]
    for c in plan.columns:
        if c.signal is not None:
            origin = f"signal of step {c.signal.step} v{c.signal.step_version}"
            text = f"{c.signal.description} ({origin})" if c.signal.description else origin
        elif c.name.endswith("_dedup_group"):
            kind = c.name.removesuffix("_dedup_group")
            text = f"id of the document's {kind} duplicate group; empty when not in one"
        else:
            text = about.get(c.name, "")
        rows.append(f"| {_md(c.name)} | {c.dtype} | {_md(text)} |")
    return "\n".join(rows) + "\n"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _rule_text(rule: dict[str, Any]) -> str:
    target = rule.get("value", rule.get("values"))
    if rule.get("percentile") is not None:
        target = f"p{rule['percentile']}"
    return " ".join(str(x) for x in (rule.get("signal"), rule.get("op"), target) if x is not None)


def _recipe_section(snapshot: ExportSnapshot) -> str:
    version = snapshot.recipe_version
    if version is None:
        return "## Selection\n\nEvery document of the dataset (no recipe).\n"
    counts = version.counts or {}
    waterfall = counts.get("waterfall") or []
    alone = counts.get("alone") or []
    thresholds = (version.resolved or {}).get("thresholds", {})
    lines = [
        f"## Recipe: {_md(version.recipe.name)} v{version.version}",
        "",
        *([_md(version.note), ""] if version.note else []),
        f"Of {_count(counts.get('documents'))} documents when the version was saved, the recipe "
        f"kept {_count(counts.get('kept'))}. Rules in order, with the documents each removed "
        "after the ones before it and on its own:"
        if counts
        else "Rules in order:",
        "",
        "| # | Rule | Threshold | Removed (in order) | Removed alone |",
        "|---|---|---|---|---|",
    ]
    for i, rule in enumerate(version.rules):
        outcome = waterfall[i] if i < len(waterfall) and isinstance(waterfall[i], dict) else {}
        text = outcome.get("label") or _rule_text(rule)
        own = alone[i] if i < len(alone) else ""
        threshold = thresholds.get(str(i), rule.get("value", ""))
        lines.append(
            f"| {i + 1} | {_md(text)} | {_md(threshold)} | {outcome.get('removed', '')} | {own} |"
        )
    policy = [kind for kind, on in (version.dedup or {}).items() if on]
    dedup_step = counts.get("dedup", {}).get("step", "")
    lines += [
        "",
        f"Deduplication: keep one document per {', '.join(policy)} duplicate group "
        f"({dedup_step} removed)."
        if policy
        else "Deduplication: none.",
        "",
    ]
    return "\n".join(lines)


def _redaction_json(plan: Plan, summary: Summary) -> dict[str, Any] | None:
    if not plan.redact:
        return None
    return {
        "redacted_documents": summary.redacted_documents,
        "spans": summary.redacted_spans,
        "unscanned_documents": summary.unscanned,
    }


def _redaction_section(plan: Plan, summary: Summary) -> str:
    if not plan.redact:
        return "## Personal data\n\nThe text is exported as stored: no PII redaction.\n"
    spans = ", ".join(
        f"{n:,} {kind.replace('_', ' ')} ({PII_TOKENS[kind]})"
        for kind, n in summary.redacted_spans.items()
    )
    lines = [
        "## Personal data",
        "",
        f"E-mail addresses, phone numbers, IP addresses and card numbers found by the pii step "
        f"are replaced in the text by tokens: {summary.redacted_documents:,} documents redacted; "
        f"spans replaced: {spans}.",
    ]
    if summary.unscanned:
        lines += [
            "",
            f"**{summary.unscanned:,} documents had no PII scan (the pii step did not run on "
            "them) and are exported unredacted.**",
        ]
    return "\n".join(lines) + "\n"


def _bin_label(hist: Histogram, lo: float, hi: float) -> str:
    if hist.dtype == "bool":
        return "false" if hi <= 0.5 else "true"
    if hist.dtype == "int64" and hi - lo == 1 and float(lo).is_integer():
        return f"{int(lo)}"
    last = hi == hist.edges[-1]
    return f"[{_num(lo)}, {_num(hi)}{']' if last else ')'}"


def _num(x: float | None) -> str:
    if x is None or math.isnan(x):
        return ""
    return f"{x:.6g}"


def _signals_section(summary: Summary) -> str:
    if not summary.histograms:
        return ""
    lines = ["## Signals", ""]
    for hist in summary.histograms:
        lines += [
            f"### {_md(hist.name)}",
            "",
            f"{hist.count:,} values, {hist.missing:,} missing; min {_num(hist.minimum)}, "
            f"mean {_num(hist.mean)}, max {_num(hist.maximum)}.",
            "",
        ]
        if hist.counts:
            lines += ["| Range | Documents |", "|---|---|"]
            for lo, hi, n in zip(hist.edges, hist.edges[1:], hist.counts, strict=False):
                lines.append(f"| {_bin_label(hist, lo, hi)} | {n:,} |")
            lines.append("")
    return "\n".join(lines)
