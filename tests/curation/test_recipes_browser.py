"""Recipes, provenance and duplicate review in a real browser (headless Debian Chromium)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from curation.models import Dataset, DuplicateGroup, DuplicateMember, Recipe
from curation.services.recipes import recipe_create, recipe_version_save
from curation.services.signals import signal_define, signal_values_write
from tests.curation.factories import UserFactory, make_dataset
from tests.pipelines.factories import add_documents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@dataclass
class Shop:
    dataset: Dataset
    ids: list[int]
    recipe: Recipe
    group: DuplicateGroup


def setup_shop(rules: list[dict[str, Any]], dedup: dict[str, bool]) -> Shop:
    """40 documents whose ``br_words`` is their position, one exact group of the first
    three (the first represents it), and a recipe with one saved version."""
    UserFactory(username="curator")
    dataset = make_dataset("Browser recipes")
    ids = add_documents(dataset, [f"document number {i} " + "text " * i for i in range(40)])
    signal = signal_define(name="br_words", step="doc_stats", step_version="7", dtype="int")
    signal_values_write(
        signal=signal, dataset_id=dataset.pk, values=[(d, i) for i, d in enumerate(ids)]
    )
    group = DuplicateGroup.objects.create(
        dataset=dataset,
        kind="exact",
        step="exact_dedup",
        step_version="1",
        run_key="run-1-exact_dedup",
        size=3,
    )
    DuplicateMember.objects.bulk_create(
        DuplicateMember(group=group, document_id=d, similarity=1.0, is_representative=i == 0)
        for i, d in enumerate(ids[:3])
    )
    recipe = recipe_create(dataset=dataset, name="Quality")
    recipe_version_save(recipe=recipe, rules=rules, dedup=dedup, user=None)
    return Shop(dataset=dataset, ids=ids, recipe=recipe, group=group)


def login(page: Any, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def text_is(page: Any, selector: str, expected: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.trim() === t", arg=[selector, expected]
    )


def test_changing_a_threshold_updates_the_live_preview(page: Any, live_server: Any) -> None:
    shop = setup_shop([{"signal": "br_words", "op": ">=", "value": 10}], {})
    login(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/")
    page.click("#recipes-link")
    page.click("text=Quality")
    text_is(page, "#preview-kept", "30")
    page.fill("input[name=rules-0-value]", "25")  # keyup, then the preview re-renders
    text_is(page, "#preview-kept", "15")
    text_is(page, "#rule-0-alone", "25")
    page.select_option("select[name=rules-0-op]", "<")
    text_is(page, "#preview-kept", "25")
    page.check("input[name=exact]")
    text_is(page, "#preview-kept", "23")
    text_is(page, "#dedup-step", "2")
    page.click("#add-rule")
    page.wait_for_selector("select[name=rules-1-signal]")
    page.select_option("select[name=rules-1-signal]", "br_words")
    page.fill("input[name=rules-1-percentile]", "50")
    page.select_option("select[name=rules-1-op]", ">=")
    text_is(page, "#preview-kept", "5")
    page.click("#save-version")
    page.wait_for_url("**/recipes/quality/v2/")
    assert page.inner_text("#version-kept") == "5"


def test_the_document_page_explains_a_recipe_verdict(page: Any, live_server: Any) -> None:
    shop = setup_shop([{"signal": "br_words", "op": ">=", "value": 10}], {"exact": True})
    login(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/documents/{shop.ids[5]}/")
    page.wait_for_selector("#provenance-verdict")
    assert page.inner_text("#provenance-verdict").startswith("Dropped by Quality v1")
    row = page.inner_text("#provenance-rule-0")
    assert "5" in row and "10" in row and "fails" in row and "doc_stats (7)" in row
    recipe_version_save(
        recipe=shop.recipe,
        rules=[{"signal": "br_words", "op": "<", "value": 10}],
        dedup={"exact": True},
        user=None,
    )
    page.reload()
    page.wait_for_selector("#provenance-verdict")
    assert page.inner_text("#provenance-verdict").startswith("Kept by Quality v2")
    page.select_option("#provenance-version", label="Quality v1")
    page.wait_for_selector("#provenance-verdict:has-text('Dropped')")
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/documents/{shop.ids[1]}/")
    page.wait_for_selector("#provenance-dedup")
    assert "removed" in page.inner_text("#provenance-dedup")


def test_marking_a_false_duplicate_makes_the_recipe_keep_it(page: Any, live_server: Any) -> None:
    shop = setup_shop([], {"exact": True})
    member = shop.ids[1]
    login(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/duplicates/")
    page.click(f"#group-{shop.group.pk} a")
    page.wait_for_selector(f"#member-{member}")
    assert "recipes drop it" in page.inner_text(f"#member-{member}-verdict")
    page.click(f"#member-{member} .mark-not-duplicate")
    page.wait_for_selector(f"#member-{member}-verdict:has-text('recipes keep it')")
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/duplicates/")
    assert page.inner_text("#fp-rate-exact") == "100%"
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/recipes/quality/")
    text_is(page, "#preview-kept", "39")
    page.click("#save-version")
    page.wait_for_url("**/recipes/quality/v2/")
    assert page.inner_text("#version-kept") == "39"
    page.goto(f"{live_server.url}/datasets/{shop.dataset.slug}/documents/{member}/")
    page.wait_for_selector("#provenance-verdict")
    assert page.inner_text("#provenance-verdict").startswith("Kept by Quality v2")
    assert "marked not a duplicate" in page.inner_text("#provenance-dedup")
