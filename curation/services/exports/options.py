"""What an export writes: its options (stored on the snapshot) and the column plan they make."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import pyarrow as pa
from psycopg import sql

from curation.errors import PermanentError
from curation.models import DuplicateGroup, ExportSnapshot, Signal

BASE_COLUMNS = ("id", "text", "meta")
PII_SPANS_SIGNAL = "pii_spans"
PII_KINDS = ("email", "phone", "ip", "credit_card")
PII_TOKENS = {"email": "[EMAIL]", "phone": "[PHONE]", "ip": "[IP]", "credit_card": "[CARD]"}
PARQUET_COMPRESSIONS = ("zstd", "snappy", "none")
JSONL_COMPRESSIONS = ("gzip", "none")
MB = 1024 * 1024

# Hugging Face ``Value`` dtypes by signal dtype; JSON values travel as JSON text.
HF_DTYPES = {
    Signal.Dtype.FLOAT: "float64",
    Signal.Dtype.INT: "int64",
    Signal.Dtype.BOOL: "bool",
    Signal.Dtype.TEXT: "string",
    Signal.Dtype.JSON: "string",
}
ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}


class ExportOptionsError(PermanentError):
    """The export's options cannot work (unknown signal, bad cap)."""


@dataclass(frozen=True)
class ExportOptions:
    """The choices of one export, stored as ``ExportSnapshot.options``."""

    columns: tuple[str, ...] = BASE_COLUMNS
    signals: tuple[str, ...] = ()
    dedup_groups: bool = False
    redact_pii: bool = False
    shard_rows: int = 100_000
    shard_bytes: int = 256 * MB
    compression: str = ""
    license: str = ""
    hub_repo: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"], data["signals"] = list(self.columns), list(self.signals)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("columns", "signals"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


def export_options_clean(*, options: ExportOptions, fmt: str) -> ExportOptions:
    """Check the options against the format and the defined signals; fill the defaults."""
    if fmt not in ExportSnapshot.Format.values:
        raise ExportOptionsError(f"unknown format {fmt!r}: use parquet or jsonl")
    unknown = [c for c in options.columns if c not in BASE_COLUMNS]
    if unknown:
        raise ExportOptionsError(
            f"unknown columns {unknown}: choose among {', '.join(BASE_COLUMNS)}"
        )
    defined = set(Signal.objects.filter(name__in=options.signals).values_list("name", flat=True))
    missing = [s for s in options.signals if s not in defined]
    if missing:
        raise ExportOptionsError(f"no signal named {', '.join(missing)}: check the signal names")
    if not options.columns and not options.signals and not options.dedup_groups:
        raise ExportOptionsError("choose at least one column or signal to export")
    if options.shard_rows < 1 or options.shard_bytes < 64 * 1024:
        raise ExportOptionsError("shards need at least 1 row and 64 KiB")
    allowed = PARQUET_COMPRESSIONS if fmt == ExportSnapshot.Format.PARQUET else JSONL_COMPRESSIONS
    compression = options.compression or allowed[0]
    if compression not in allowed:
        raise ExportOptionsError(
            f"compression {compression!r} does not go with {fmt}: use one of {', '.join(allowed)}"
        )
    ordered = tuple(c for c in BASE_COLUMNS if c in options.columns)
    signals = tuple(dict.fromkeys(options.signals))
    dedup = [dedup_column(k) for k in DuplicateGroup.Kind.values] if options.dedup_groups else []
    names = [*ordered, *signals, *dedup]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        raise ExportOptionsError(f"signal names clash with column names: {sorted(clashes)}")
    return replace(options, columns=ordered, signals=signals, compression=compression)


def dedup_column(kind: str) -> str:
    return f"{kind}_dedup_group"


@dataclass(frozen=True)
class Column:
    """One column of the files: its name, its Hugging Face dtype, and the SQL that reads it."""

    name: str
    dtype: str
    select: sql.Composable
    signal: Signal | None = None

    @property
    def numeric(self) -> bool:
        return self.dtype in ("int64", "float64", "bool")


@dataclass(frozen=True)
class Plan:
    """The columns to write, in order, and how the text is redacted."""

    columns: list[Column]
    redact: bool
    pii_spans: Signal | None

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype]) for c in self.columns])

    @property
    def histogram_columns(self) -> list[Column]:
        """Numeric signals, summarized in the card (their values go to the stats files)."""
        return [c for c in self.columns if c.signal is not None and c.numeric]

    @property
    def stat_names(self) -> list[str]:
        """Columns of the per-row stats matrix: numeric signals, then redaction counters."""
        names = [c.name for c in self.histogram_columns]
        if self.redact:
            names += ["_unscanned", *(f"_{kind}" for kind in PII_KINDS)]
        return names

    def features(self) -> list[dict[str, str]]:
        return [{"name": c.name, "dtype": c.dtype} for c in self.columns]


def export_plan(*, options: ExportOptions) -> Plan:
    """The columns in file order: id, text, meta, then signals, then dedup group ids."""
    columns: list[Column] = []
    base = {
        "id": sql.SQL("d.external_id"),
        "text": sql.SQL("d.text"),
        "meta": sql.SQL("d.meta::text"),
    }
    for name in options.columns:
        columns.append(Column(name, "string", base[name]))
    by_name = {s.name: s for s in Signal.objects.filter(name__in=options.signals)}
    for name in options.signals:
        signal = by_name[name]
        select: sql.Composable = sql.SQL("s.{}").format(sql.Identifier(signal.column_name))
        if signal.dtype == Signal.Dtype.JSON:
            select = sql.SQL("{}::text").format(select)
        columns.append(Column(name, HF_DTYPES[Signal.Dtype(signal.dtype)], select, signal))
    if options.dedup_groups:
        for kind in DuplicateGroup.Kind.values:
            # A rerun of a step replaces its groups; the newest group of a kind wins.
            select = sql.SQL(
                "(SELECT max(m.group_id) FROM curation_duplicatemember m "
                "JOIN curation_duplicategroup g ON g.id = m.group_id "
                "WHERE m.document_id = d.id AND g.kind = {})"
            ).format(sql.Literal(kind))
            columns.append(Column(dedup_column(kind), "int64", select))
    redact = options.redact_pii and "text" in options.columns
    pii_spans = Signal.objects.filter(name=PII_SPANS_SIGNAL).first() if redact else None
    return Plan(columns=columns, redact=redact, pii_spans=pii_spans)
