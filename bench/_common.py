"""Pieces the benchmarks share: the document source, the scratch database, the load line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DISTINCT_MAX = 3000


def write_source(path: Path, docs: int) -> list[str]:
    """Write a JSONL (``id``, ``text``) of ``docs`` sample documents and return the texts.

    Up to DISTINCT_MAX come from ``build_sample``; beyond that, copies with a unique
    suffix, so that no per-process cache sees the same text twice.
    """
    from curation.sample_data import build_sample

    distinct = min(docs, DISTINCT_MAX)
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.jsonl"
        build_sample(sample, seed=0, size=distinct)
        with sample.open(encoding="utf-8") as fh:
            base = [json.loads(line)["text"] for line in fh]
    texts = [
        base[i % distinct] + (f" (copy {i // distinct})" if i >= distinct else "")
        for i in range(docs)
    ]
    with path.open("w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"id": f"bench-{i:07d}", "text": text}, ensure_ascii=False))
            out.write("\n")
    return texts


def read_source(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def warm_texts(texts: Sequence[str], count: int) -> list[str]:
    """Texts for an untimed warm-up: like the bench's, but none of them."""
    return [f"{text} (warm-up)" for text in texts[:count]]


def db_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def drop_database(base: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_database(base: str, name: str) -> str:
    """A scratch database, empty and migrated; returns its URL."""
    import psycopg
    from psycopg import sql

    url = db_url(base, name)
    drop_database(base, name)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate_database(url)
    return url


def migrate_database(url: str) -> None:
    """Apply the project's migrations to the database at ``url`` (a kept one too)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        env=dict(os.environ, DATABASE_URL=url, WINNOW_SKIP_EMBEDDED="1"),
        cwd=ROOT,
        check=True,
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
