from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curation.models import Dataset, Document

pytestmark = pytest.mark.django_db(transaction=True)


def run_import(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("winnow_import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_import_creates_the_dataset_and_reports_bad_lines(tmp_path: Path) -> None:
    source = tmp_path / "cli.jsonl"
    source.write_text(
        '{"doc": "a", "body": "first document"}\n'
        '{"doc": "b", "body": ["not", "a", "string"]}\n'
        '{"doc": "c", "body": "third document"}\n'
    )
    out, err = run_import(
        str(source),
        "--dataset",
        "From CLI",
        "--text-field",
        "body",
        "--id-field",
        "doc",
        "--inline",
        "--no-progress",
    )
    assert "created dataset 'From CLI'" in err
    assert "succeeded: 3 rows read, 2 imported, 1 rejected" in out
    assert "cli.jsonl:2:" in out and "array, not a string" in out
    dataset = Dataset.objects.get(name="From CLI")
    assert dataset.document_count == 2
    assert set(Document.objects.values_list("external_id", flat=True)) == {"a", "c"}


def test_cli_import_of_a_missing_path_fails_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="missing.jsonl"):
        run_import(str(tmp_path / "missing.jsonl"), "--dataset", "x", "--inline")


def test_cli_import_reads_a_csv_with_other_field_names(tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    source.write_text('key,content,lang\nk1,"Hello, world",en\nk2,"Bonjour\nle monde",fr\n')
    out, _ = run_import(
        str(source),
        "--dataset",
        "csv",
        "--text-field",
        "content",
        "--id-field",
        "key",
        "--inline",
        "--no-progress",
    )
    assert "2 imported, 0 rejected" in out
    doc = Document.objects.get(external_id="k2")
    assert doc.text == "Bonjour\nle monde" and doc.meta == {"lang": "fr"}
