"""The pages in a real browser: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.curation.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_upload_watch_import_and_read_an_escaped_document(
    page: Any, live_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    start_worker()
    UserFactory(username="curator")
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    source = tmp_path / "small.jsonl"
    source.write_text(
        '{"id": "intro", "text": "Winnow turns raw text into training data."}\n'
        '{"id": "xss", "text": "<script>alert(\\"pwned\\")</script> plain words"}\n'
        "this line is not json\n"
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.fill("input[name=name]", "Browser data")
    page.click("text=Create dataset")
    page.wait_for_url("**/datasets/browser-data/")
    page.click("text=Import documents")
    page.set_input_files("input[name=file]", str(source))
    page.fill("input[name=id_field]", "id")
    page.click("text=Upload and import")
    page.wait_for_url("**/imports/*/")

    # The progress block polls with htmx until the worker finishes.
    page.wait_for_selector("#import-status:has-text('Succeeded')", timeout=60_000)
    assert page.inner_text("#rows-imported") == "2"
    assert page.inner_text("#rows-rejected") == "1"
    assert "invalid JSON" in page.inner_text("#rejections")

    page.click("#to-dataset")
    page.wait_for_url("**/datasets/browser-data/")
    assert page.inner_text("#document-count") == "2"
    page.click("text=xss")
    page.wait_for_selector("#doc-text")
    assert page.inner_text("#doc-text").startswith('<script>alert("pwned")</script>')
    assert page.locator("#doc-text script").count() == 0
    assert dialogs == []
