"""Exports: snapshots that ``datasets`` loads, their card, caps, redaction, CLI, worker, pages."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from curation.models import (
    Dataset,
    Document,
    DuplicateGroup,
    DuplicateMember,
    ExportSnapshot,
    Signal,
)
from curation.services.exports import (
    ExportOptions,
    export_create,
    export_diff,
    export_run,
)
from curation.services.exports.rows import redact_text
from curation.services.imports import import_from_path
from curation.services.signals import signal_define, signal_rows_write
from tests.conftest import wait_for
from tests.curation.factories import UserFactory, make_dataset

SIGNALS = {
    "words": "int",
    "quality": "float",
    "english": "bool",
    "lang": "text",
    "pii_spans": "json",
}
PII_TEXTS = [
    "Write to jane.doe@example.com or call +44 20 7946 0958 today.",
    "Server 192.168.10.20 logged card 4111 1111 1111 1111 twice.",
    "Nothing personal here at all, just words about data.",
]


@dataclass
class Corpus:
    dataset: Dataset
    ids: list[int]  # document ids in id order
    externals: list[str]


def text_for(i: int) -> str:
    body = PII_TEXTS[i % 3] if i % 4 == 0 else f"Document number {i} about curation."
    return f"{body} " + "filler words " * (i % 7)


def build_corpus(tmp_path: Path, n: int = 60, name: str = "Export corpus") -> Corpus:
    """``n`` documents with meta, five signals (the last 10 documents without pii spans),
    one exact and one MinHash duplicate group."""
    from pipelines.steps.pii import find_pii

    source = tmp_path / f"{name}.jsonl"
    with open(source, "wb") as out:
        for i in range(n):
            record = {"id": f"doc-{i:03d}", "text": text_for(i), "url": f"https://x.org/{i}"}
            out.write(orjson.dumps(record) + b"\n")
    dataset = make_dataset(name, source="https://x.org crawl")
    import_from_path(dataset=dataset, path=source, id_field="id")
    docs = list(Document.objects.filter(dataset=dataset).order_by("id").values_list("id", "text"))
    signals = [
        signal_define(name=s, step="test", step_version="1", dtype=d) for s, d in SIGNALS.items()
    ]
    rows = [
        (
            doc_id,
            len(text.split()),
            round(k / n, 4),
            k % 2 == 0,
            "en" if k % 3 else None,
            find_pii(text) if k < n - 10 else None,
        )
        for k, (doc_id, text) in enumerate(docs)
    ]
    signal_rows_write(signals=signals, dataset_id=dataset.pk, rows=rows)
    for kind, members in ((DuplicateGroup.Kind.EXACT, [0, 1]), ("minhash", [2, 3, 4])):
        group = DuplicateGroup.objects.create(
            dataset=dataset, kind=kind, step="t", step_version="1", run_key="r", size=len(members)
        )
        for k in members:
            DuplicateMember.objects.create(
                group=group, document_id=docs[k][0], is_representative=k == members[0]
            )
    externals = [f"doc-{i:03d}" for i in range(n)]
    return Corpus(dataset, [d for d, _ in docs], externals)


def run_export(
    corpus: Corpus, fmt: str = "parquet", recipe_version: Any = None, **options: Any
) -> ExportSnapshot:
    snapshot = export_create(
        dataset=corpus.dataset,
        fmt=fmt,
        options=ExportOptions(**options),
        recipe_version=recipe_version,
    )
    snapshot = export_run(snapshot_id=snapshot.pk)
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, snapshot.error
    return snapshot


def load(path: Path | str, cache: Path) -> Any:
    import datasets

    return datasets.load_dataset(str(path), split="train", cache_dir=str(cache))


def front_matter(path: Path) -> dict[str, Any]:
    text = (path / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.django_db
def test_parquet_snapshot_loads_with_datasets_with_typed_columns_and_a_matching_card(
    tmp_path: Path,
) -> None:
    corpus = build_corpus(tmp_path)
    snapshot = run_export(
        corpus, signals=("words", "quality", "english", "lang", "pii_spans"), shard_rows=25
    )
    path = Path(snapshot.path)

    names = sorted(p.name for p in (path / "data").iterdir())
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert not list(path.parent.glob(".*partial"))
    ds = load(path, tmp_path / "cache")
    assert ds.num_rows == 60
    assert {k: v.dtype for k, v in ds.features.items()} == {
        "id": "string",
        "text": "string",
        "meta": "string",
        "words": "int64",
        "quality": "float64",
        "english": "bool",
        "lang": "string",
        "pii_spans": "string",
    }
    row = ds[4]
    assert row["id"] == "doc-004" and row["text"] == text_for(4)
    assert orjson.loads(row["meta"]) == {"url": "https://x.org/4"}
    assert row["words"] == len(text_for(4).split()) and row["english"] is True
    assert row["lang"] == "en" and row["quality"] == round(4 / 60, 4)
    assert [s[2] for s in orjson.loads(row["pii_spans"])] == ["ip", "credit_card"]
    assert ds[3]["lang"] is None and ds[59]["pii_spans"] is None

    card = front_matter(path)
    assert card["license"] == "other" and card["size_categories"] == ["n<1K"]
    assert card["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    assert card["dataset_info"]["splits"][0]["num_examples"] == 60
    assert card["winnow"]["rows"] == 60 and card["winnow"]["shards"] == 3
    quality = card["winnow"]["signals"]["quality"]
    assert quality["values"] == 60 and sum(b[2] for b in quality["bins"]) == 60
    assert quality["min"] == 0 and quality["max"] == round(59 / 60, 4)
    english = card["winnow"]["signals"]["english"]
    assert [b[2] for b in english["bins"]] == [30, 30]
    assert "lang" not in card["winnow"]["signals"]
    readme = (path / "README.md").read_text()
    assert "### quality" in readme and "| true | 30 |" in readme
    assert "https://x.org crawl" in readme
    assert snapshot.rows_done == snapshot.rows_total == 60
    assert [f["name"] for f in snapshot.files][:2] == ["README.md", "data/" + names[0]]
    assert snapshot.bytes_written == sum(f["bytes"] for f in snapshot.files)


def external_ids(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    files = sorted((path / "data").glob("*.parquet"))
    return [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]


@pytest.mark.django_db
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_jsonl_snapshot_loads_with_datasets(tmp_path: Path, compression: str) -> None:
    corpus = build_corpus(tmp_path)
    snapshot = run_export(
        corpus,
        fmt="jsonl",
        compression=compression,
        columns=("id", "text"),
        signals=("words", "english", "lang"),
        dedup_groups=True,
        shard_rows=40,
    )
    path = Path(snapshot.path)
    suffix = ".jsonl.gz" if compression == "gzip" else ".jsonl"
    names = sorted(p.name for p in (path / "data").iterdir())
    assert names == [f"train-0000{i}-of-00002{suffix}" for i in range(2)]
    first = path / "data" / names[0]
    raw = gzip.decompress(first.read_bytes()) if compression == "gzip" else first.read_bytes()
    assert len(raw.splitlines()) == 40

    ds = load(path, tmp_path / "cache")
    assert ds.num_rows == 60
    assert {k: v.dtype for k, v in ds.features.items()} == {
        "id": "string",
        "text": "string",
        "words": "int64",
        "english": "bool",
        "lang": "string",
        "exact_dedup_group": "int64",
        "minhash_dedup_group": "int64",
        "semantic_dedup_group": "int64",
    }
    assert ds["id"] == corpus.externals
    assert ds[1]["exact_dedup_group"] == ds[0]["exact_dedup_group"] is not None
    assert ds[5]["exact_dedup_group"] is None and ds[3]["minhash_dedup_group"] is not None
    assert front_matter(path)["configs"][0]["data_files"][0]["path"] == f"data/train-*{suffix}"


@pytest.mark.django_db
def test_shards_stay_within_the_row_and_byte_caps(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    source = tmp_path / "big.jsonl"
    with open(source, "wb") as out:
        for i in range(300):
            words = " ".join(
                "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
                for _ in range(rng.randint(50, 700))
            )
            out.write(orjson.dumps({"id": f"d{i}", "text": words}) + b"\n")
    dataset = make_dataset("Big docs")
    import_from_path(dataset=dataset, path=source, id_field="id")
    corpus = Corpus(dataset, [], [])
    cap = 64 * 1024

    snapshot = run_export(corpus, shard_bytes=cap, shard_rows=1000)
    sizes = [f["bytes"] for f in snapshot.files if f["name"].startswith("data/")]
    assert len(sizes) > 3 and max(sizes) <= cap
    assert max(sizes) > cap * 0.6, "shards should fill up to near the cap"
    assert sizes == [(Path(snapshot.path) / f["name"]).stat().st_size for f in snapshot.files[1:]]
    assert len(external_ids(Path(snapshot.path))) == 300

    jsonl = run_export(corpus, fmt="jsonl", compression="none", shard_bytes=cap, shard_rows=70)
    rows = [f["rows"] for f in jsonl.files[1:]]
    assert sum(rows) == 300 and max(rows) <= 70
    assert max(f["bytes"] for f in jsonl.files[1:]) <= cap


def test_redact_text_replaces_each_span_with_its_token() -> None:
    text = "mail a@b.io, ip 10.0.0.1"
    spans = [[16, 24, "ip"], [5, 11, "email"]]
    assert redact_text(text, spans) == ("mail [EMAIL], ip [IP]", [1, 0, 1, 0])
    # Spans past the end of the text or overlapping one before are clipped, never raise.
    assert redact_text("abc", [[1, 9, "phone"], [2, 3, "ip"]]) == ("a[PHONE]", [0, 1, 0, 0])


@pytest.mark.django_db
def test_redaction_replaces_exactly_the_stored_spans_and_counts_unscanned_documents(
    tmp_path: Path,
) -> None:
    corpus = build_corpus(tmp_path)
    snapshot = run_export(corpus, columns=("id", "text"), redact_pii=True)
    ds = load(snapshot.path, tmp_path / "cache")
    spans = Signal.objects.get(name="pii_spans").column_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT document_id, {spans}::text FROM curation_signal_row WHERE dataset_id = %s",
            [corpus.dataset.pk],
        )
        stored = {doc: orjson.loads(raw) if raw else None for doc, raw in cursor.fetchall()}
    tokens = {"email": "[EMAIL]", "phone": "[PHONE]", "ip": "[IP]", "credit_card": "[CARD]"}
    for k, (doc_id, row) in enumerate(zip(corpus.ids, ds, strict=True)):
        original = text_for(k)
        expected = original
        for start, end, kind in sorted(stored[doc_id] or [], reverse=True):
            expected = expected[:start] + tokens[kind] + expected[end:]
        assert row["text"] == expected
    assert ds[0]["text"].startswith("Write to [EMAIL] or call [PHONE] today.")
    assert ds[4]["text"].startswith("Server [IP] logged card [CARD] twice.")
    assert "192.168.10.20" in ds[52]["text"], "unscanned documents are exported as stored"

    card = front_matter(Path(snapshot.path))["winnow"]["redaction"]
    pii_docs = [k for k in range(50) if k % 4 == 0 and k % 3 != 2]
    assert card == {
        "redacted_documents": len(pii_docs),
        "spans": {
            "email": sum(1 for k in pii_docs if k % 3 == 0),
            "phone": sum(1 for k in pii_docs if k % 3 == 0),
            "ip": sum(1 for k in pii_docs if k % 3 == 1),
            "credit_card": sum(1 for k in pii_docs if k % 3 == 1),
        },
        "unscanned_documents": 10,
    }
    assert "10 documents had no PII scan" in (Path(snapshot.path) / "README.md").read_text()


class Crash(BaseException):
    """A worker dying mid-export (not an error the service handles)."""


@pytest.mark.django_db
def test_an_interrupted_export_resumes_after_its_last_complete_shard(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.utils import timezone

    from curation.services.exports.jobs import partial_dir
    from curation.services.exports.rows import RowReader

    settings.WINNOW_EXPORT_CHUNK_ROWS = 7
    corpus = build_corpus(tmp_path)
    snapshot = export_create(dataset=corpus.dataset, options=ExportOptions(shard_rows=10))
    read, reads, dying = RowReader.read, [], [True]

    def dies_on_fifth_chunk(self: RowReader, ids: Any) -> Any:
        reads.append(int(ids[0]))
        if dying[0] and len(reads) == 5:
            raise Crash
        return read(self, ids)

    monkeypatch.setattr(RowReader, "read", dies_on_fifth_chunk)
    with pytest.raises(Crash):
        export_run(snapshot_id=snapshot.pk, owner="first")
    work = partial_dir(Path(snapshot.path))
    state = orjson.loads((work / ".winnow" / "state.json").read_bytes())
    assert (state["rows_done"], len(state["shards"])) == (20, 2)
    assert not Path(snapshot.path).exists()
    # What a killed worker leaves behind: a half-written shard, a shard never committed.
    (work / "data" / ".tmp-dead.parquet").write_bytes(b"PAR1 half")
    (work / "data" / "part-00002.parquet").write_bytes(b"PAR1 uncommitted")

    assert export_run(snapshot_id=snapshot.pk, owner="second").status == "running"
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(lease_expires_at=timezone.now())
    reads.clear()
    dying[0] = False
    resumed = export_run(snapshot_id=snapshot.pk, owner="second")

    assert resumed.status == ExportSnapshot.Status.SUCCEEDED, resumed.error
    assert reads[0] == corpus.ids[20], "the second run starts after the committed shards"
    assert external_ids(Path(resumed.path)) == corpus.externals
    assert len(resumed.files) == 1 + 6 and not work.exists()


@pytest.mark.django_db
def test_recipe_exports_keep_what_the_version_keeps_and_diff_shows_the_changes(
    tmp_path: Path, client: Client
) -> None:
    from curation.services.recipes import recipe_create, recipe_version_save

    corpus = build_corpus(tmp_path)
    recipe = recipe_create(dataset=corpus.dataset, name="Long docs")
    v1 = recipe_version_save(
        recipe=recipe, rules=[{"signal": "words", "op": ">=", "value": 8}], dedup={}, user=None
    )
    v2 = recipe_version_save(
        recipe=recipe,
        rules=[{"signal": "words", "op": ">=", "value": 12}],
        dedup={"exact": True},
        user=None,
    )
    old = run_export(corpus, recipe_version=v1)
    new = run_export(corpus, recipe_version=v2)

    words = {f"doc-{i:03d}": len(text_for(i).split()) for i in range(60)}
    kept_old = [e for e in corpus.externals if words[e] >= 8]
    kept_new = [e for e in corpus.externals if words[e] >= 12 and e != "doc-001"]
    assert external_ids(Path(old.path)) == kept_old
    assert external_ids(Path(new.path)) == kept_new
    assert old.rows_done == v1.counts["kept"] == len(kept_old)
    card = (Path(new.path) / "README.md").read_text()
    assert "## Recipe: Long docs v2" in card
    assert f"| 1 | words >= 12 | 12 | {v2.counts['waterfall'][0]['removed']} |" in card
    assert front_matter(Path(new.path))["winnow"]["recipe_version"] == 2

    diff = export_diff(old=old, new=new)
    assert diff.added == 0 and diff.unchanged == len(kept_new)
    assert diff.removed == len(kept_old) - len(kept_new)
    assert {e for _, e in diff.removed_sample} == set(kept_old) - set(kept_new)
    assert diff.rules_added == [{"signal": "words", "op": ">=", "value": 12}]
    assert diff.rules_removed == [{"signal": "words", "op": ">=", "value": 8}]
    assert diff.dedup_changes == {"exact": (False, True)}

    client.force_login(UserFactory.create())
    page = client.get(reverse("export_diff", args=[new.pk]), {"other": old.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<dd id="diff-removed">{diff.removed}</dd>' in html
    assert "Rule added: <code>words &gt;= 12</code>" in html


@pytest.mark.django_db(transaction=True)
def test_cli_exports_every_signal_and_dedup_group_ids(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    out = tmp_path / "snapshot"
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "winnow_export",
        "--dataset",
        corpus.dataset.name,
        "--out",
        str(out),
        "--with-signals",
        "--redact-pii",
        "--shard-rows",
        "25",
        stdout=stdout,
        stderr=stderr,
    )
    assert "60 rows in 3 file(s)" in stdout.getvalue() and str(out) in stdout.getvalue()
    assert "60/60" in stderr.getvalue(), "a progress bar to the total"
    ds = load(out, tmp_path / "cache")
    assert ds.column_names == [
        "id",
        "text",
        "meta",
        *sorted(SIGNALS),
        "exact_dedup_group",
        "minhash_dedup_group",
        "semantic_dedup_group",
    ]
    groups = dict(DuplicateGroup.objects.values_list("kind", "pk"))
    assert ds["exact_dedup_group"][:3] == [groups["exact"], groups["exact"], None]
    assert ds["minhash_dedup_group"][:6] == [None, None, *[groups["minhash"]] * 3, None]
    assert set(ds["semantic_dedup_group"]) == {None}
    assert ds[0]["text"].startswith("Write to [EMAIL]")

    with pytest.raises(CommandError, match="already exists"):
        call_command("winnow_export", "--dataset", corpus.dataset.name, "--out", str(out))


@pytest.mark.django_db
def test_files_are_served_by_listed_name_only(tmp_path: Path, client: Client) -> None:
    corpus = build_corpus(tmp_path, n=12)
    snapshot = run_export(corpus)
    client.force_login(UserFactory.create())
    card = client.get(reverse("export_file", args=[snapshot.pk, "README.md"]))
    assert card.status_code == 200
    assert card["Content-Type"] == "text/markdown; charset=utf-8"
    assert card["Content-Disposition"].startswith("attachment;")
    assert card["X-Content-Type-Options"] == "nosniff"
    assert card.getvalue().startswith(b"---\n")
    for name in ("../../secret_key", ".winnow/state.json", "data", "%2e%2e/x", "/etc/passwd"):
        url = f"/exports/{snapshot.pk}/files/{name}"
        assert client.get(url).status_code == 404, name
    listing = client.get(reverse("export_list", args=[corpus.dataset.slug]))
    assert f'id="export-{snapshot.pk}"' in listing.content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_runs_an_export_queued_from_the_page_which_shows_it_finished(
    start_worker: Any, tmp_path: Path, client: Client
) -> None:
    start_worker()
    corpus = build_corpus(tmp_path)
    client.force_login(UserFactory.create())
    response = client.post(
        reverse("export_list", args=[corpus.dataset.slug]),
        {
            "format": "jsonl",
            "compression": "gzip",
            "columns": ["id", "text"],
            "signals": ["quality"],
            "shard_rows": 25,
            "shard_mb": 1,
        },
    )
    snapshot = ExportSnapshot.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("export_detail", args=[snapshot.pk])
    polls: list[int] = []

    def finished() -> bool:
        current = ExportSnapshot.objects.get(pk=snapshot.pk)
        polls.append(current.rows_done)
        return current.status in ("succeeded", "failed")

    wait_for(finished, timeout=60)
    snapshot.refresh_from_db()
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, snapshot.error
    assert snapshot.rows_done == snapshot.rows_total == 60 and polls == sorted(polls)
    fragment = client.get(reverse("export_detail", args=[snapshot.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286
    html = fragment.content.decode()
    assert 'id="export-status">Succeeded' in html and "hx-get" not in html
    assert "data/train-00002-of-00003.jsonl.gz" in html
    ds = load(snapshot.path, tmp_path / "cache")
    assert ds.column_names == ["id", "text", "quality"] and ds.num_rows == 60


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_browser_creates_an_export_watches_it_finish_and_downloads_its_card(
    page: Any, live_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    start_worker()
    corpus = build_corpus(tmp_path)
    UserFactory(username="curator")
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}{corpus.dataset.get_absolute_url()}")
    page.click("#exports-link")
    page.wait_for_url("**/exports/")
    page.check("input[name=signals][value=quality]")
    page.check("input[name=redact_pii]")
    page.fill("input[name=shard_rows]", "25")
    page.click("#export-form button[type=submit]")
    page.wait_for_url("**/exports/*/")

    # The progress block polls with htmx until the worker finishes.
    page.wait_for_selector("#export-status:has-text('Succeeded')", timeout=60_000)
    assert page.inner_text("#rows-done") == "60"
    assert "data/train-00002-of-00003.parquet" in page.inner_text("#files")
    with page.expect_download() as download:
        page.click("#download-card")
    snapshot = ExportSnapshot.objects.get()
    assert download.value.suggested_filename == f"export-{snapshot.pk}-README.md"
    card = Path(download.value.path()).read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["winnow"]["rows"] == 60 and meta["winnow"]["redaction"]["unscanned_documents"] == 10
    assert "### quality" in card


@pytest.mark.django_db
def test_an_export_of_nothing_fails_with_what_to_do(tmp_path: Path) -> None:
    dataset = make_dataset("Nothing yet")
    snapshot = export_create(dataset=dataset, options=ExportOptions())
    snapshot = export_run(snapshot_id=snapshot.pk)
    assert snapshot.status == ExportSnapshot.Status.FAILED
    assert snapshot.error == "Nothing yet has no documents yet: import some first"
    assert not Path(snapshot.path).exists() and not list(Path(snapshot.path).parent.iterdir())
