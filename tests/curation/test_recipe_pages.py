"""Recipe and provenance pages through the Django test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from curation.models import Document, Recipe, Signal
from curation.services.recipes import recipe_create, recipe_preview, recipe_version_save
from curation.services.signals import signal_values_write
from tests.curation.factories import UserFactory
from tests.curation.recipe_factories import build_world
from tests.pipelines.factories import add_documents

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def editor_data(rows: list[dict[str, Any]], **extra: str) -> dict[str, str]:
    data = {"rules-TOTAL_FORMS": str(len(rows)), "rules-INITIAL_FORMS": "0", **extra}
    for i, row in enumerate(rows):
        for field in ("signal", "op", "value", "percentile"):
            data[f"rules-{i}-{field}"] = str(row.get(field, ""))
    return data


@pytest.mark.parametrize(
    "url",
    [
        "/datasets/x/recipes/",
        "/datasets/x/recipes/r/",
        "/datasets/x/recipes/r/v1/",
        "/datasets/x/documents/1/provenance/",
        "/datasets/x/duplicates/",
        "/datasets/x/duplicates/1/",
    ],
)
def test_recipe_pages_require_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_recipe_list_creates_a_recipe_and_the_dataset_page_links_it(user_client: Client) -> None:
    world = build_world(n=40)
    slug = world.dataset.slug
    assert f"/datasets/{slug}/recipes/" in user_client.get(f"/datasets/{slug}/").content.decode()
    response = user_client.post(f"/datasets/{slug}/recipes/", {"name": "Web quality"})
    assert response["Location"] == f"/datasets/{slug}/recipes/web-quality/"
    again = user_client.post(f"/datasets/{slug}/recipes/", {"name": "Web quality"})
    assert "already has a recipe" in again.content.decode()
    page = user_client.get(f"/datasets/{slug}/recipes/").content.decode()
    assert "Web quality" in page


def test_live_preview_shows_counts_waterfall_and_escaped_samples(user_client: Client) -> None:
    world = build_world(n=60)
    [evil] = add_documents(world.dataset, ['<script>alert("x")</script> short'], prefix="evil")
    signal_values_write(
        signal=Signal.objects.get(name="rt_words"), dataset_id=world.dataset.pk, values=[(evil, 0)]
    )
    recipe = recipe_create(dataset=world.dataset, name="r")
    rows = [{"signal": "rt_words", "op": ">=", "value": "1"}]
    response = user_client.post(
        f"/datasets/{world.dataset.slug}/recipes/r/preview/",
        editor_data(rows, exact="on"),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    expected = recipe_preview(
        dataset=world.dataset, rules=[{**rows[0], "value": 1}], dedup={"exact": True}, samples=0
    )
    assert body.lstrip().startswith('<section id="preview"')
    assert f'id="preview-kept">{expected.kept:,}<' in body
    assert f'id="rule-0-alone">{expected.rules[0].alone:,}<' in body
    assert f'id="dedup-step">{expected.dedup.step:,}<' in body
    assert "<script>alert" not in body
    if f"/documents/{evil}/" in body:
        assert "&lt;script&gt;alert" in body
    assert "fails that rule" in body
    assert recipe.versions.count() == 0


def test_preview_names_the_rule_and_field_of_an_error(user_client: Client) -> None:
    world = build_world(n=30)
    recipe_create(dataset=world.dataset, name="r")
    rows = [
        {"signal": "rt_words", "op": ">=", "value": "1"},
        {"signal": "rt_lang", "op": ">=", "value": "en"},
    ]
    body = user_client.post(
        f"/datasets/{world.dataset.slug}/recipes/r/preview/", editor_data(rows)
    ).content.decode()
    assert "rule 2, op: &gt;= does not apply to text signal" in body
    assert 'id="preview-kept"' not in body


def test_editor_rows_move_are_added_and_removed_on_the_server(user_client: Client) -> None:
    world = build_world(n=30)
    recipe_create(dataset=world.dataset, name="r")
    url = f"/datasets/{world.dataset.slug}/recipes/r/"
    rows = [
        {"signal": "rt_words", "op": ">=", "value": "1"},
        {"signal": "rt_ppl", "op": "<=", "percentile": "90"},
    ]
    moved = user_client.post(url, editor_data(rows, action="up-1"), HTTP_HX_REQUEST="true")
    body = moved.content.decode()
    assert body.lstrip().startswith('<div id="editor"')
    assert body.index('value="rt_ppl" selected') < body.index('value="rt_words" selected')
    added = user_client.post(url, editor_data(rows, action="add")).content.decode()
    assert 'name="rules-2-signal"' in added and 'name="rules-TOTAL_FORMS" value="3"' in added
    removed = user_client.post(url, editor_data(rows, action="remove-0")).content.decode()
    assert 'name="rules-TOTAL_FORMS" value="1"' in removed
    assert 'value="rt_words" selected' not in removed


def test_save_version_then_view_it_and_edit_from_it(user_client: Client) -> None:
    world = build_world(n=50)
    recipe_create(dataset=world.dataset, name="r")
    base = f"/datasets/{world.dataset.slug}/recipes/r/"
    rows = [
        {"signal": "rt_words", "op": ">=", "value": "10"},
        {"signal": "rt_ppl", "op": "<=", "percentile": "80"},
        {"signal": "", "op": ">=", "value": ""},  # a blank row is ignored
    ]
    response = user_client.post(f"{base}save/", editor_data(rows, minhash="on", note="first"))
    assert response.status_code == 302 and response["Location"] == f"{base}v1/"
    version = Recipe.objects.get(slug="r").versions.get()
    assert version.rules[1] == {"signal": "rt_ppl", "op": "<=", "percentile": 80.0}
    assert version.dedup == {"exact": False, "minhash": True, "semantic": False}
    page = user_client.get(f"{base}v1/").content.decode()
    assert f'id="version-kept">{version.counts["kept"]:,}<' in page
    assert "run-2-minhash_dedup" in page
    threshold = version.resolved["thresholds"]["1"]
    assert f"{threshold:.6g}"[:5] in page
    editor = user_client.get(f"{base}?from=1").content.decode()
    assert (
        'value="rt_ppl" selected' in editor and 'name="rules-1-percentile" value="80.0"' in editor
    )
    assert 'id="preview-kept"' in editor and "v1" in editor


def test_save_refuses_invalid_rules_with_the_error_on_the_row(user_client: Client) -> None:
    world = build_world(n=30)
    recipe_create(dataset=world.dataset, name="r")
    rows = [{"signal": "rt_words", "op": ">=", "value": "many"}]
    response = user_client.post(
        f"/datasets/{world.dataset.slug}/recipes/r/save/", editor_data(rows)
    )
    assert response.status_code == 422
    assert "rule 1, value: &#x27;many&#x27; is not a number" in response.content.decode()
    assert not Recipe.objects.get(slug="r").versions.exists()


def test_document_page_loads_provenance_for_the_chosen_version(user_client: Client) -> None:
    world = build_world(n=40)
    recipe = recipe_create(dataset=world.dataset, name="r")
    strict = recipe_version_save(
        recipe=recipe,
        rules=[{"signal": "rt_words", "op": ">=", "value": 1000}],
        dedup={},
        user=None,
    )
    loose = recipe_version_save(
        recipe=recipe, rules=[{"signal": "rt_words", "op": "is_null"}], dedup={}, user=None
    )
    no_row = Document.objects.get(pk=world.ids[-1])
    doc_page = user_client.get(no_row.get_absolute_url()).content.decode()
    url = f"/datasets/{world.dataset.slug}/documents/{no_row.pk}/provenance/"
    assert f'hx-get="{url}"' in doc_page
    latest = user_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert latest.lstrip().startswith('<div id="provenance"')
    assert "Kept by" in latest and f'value="{loose.pk}" selected' in latest
    chosen = user_client.get(f"{url}?version={strict.pk}").content.decode()
    assert "Dropped by" in chosen and "fails (no value)" in chosen and "step_rt_words (3)" in chosen
