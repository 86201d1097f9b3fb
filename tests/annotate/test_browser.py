"""The annotator page in headless Chromium, driven with the keyboard (and a mouse span)."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.models import Annotation, Assignment, Item
from annotate.services.items import items_add_pairs
from curation.models import Document
from tests.annotate.factories import ALL_KINDS, make_project, member
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "😀 Alice met Bob in New York today.\r\nThen <script>alert('pwned')</script> left."


def _offsets(word: str) -> tuple[int, int]:
    start = TEXT.index(word)
    return start, start + len(word)


def _select_with_mouse(page: Any, word: str) -> None:
    """Drag across ``word`` in the text, as a person would."""
    box = page.evaluate(
        """(word) => {
          const seg = document.querySelector('#doc-text .seg');
          const node = seg.firstChild;
          const i = node.textContent.indexOf(word);
          const range = document.createRange();
          range.setStart(node, i);
          range.setEnd(node, i + word.length);
          const b = range.getBoundingClientRect();
          return {x: b.left, y: b.top + b.height / 2, w: b.width};
        }""",
        word,
    )
    page.mouse.move(box["x"] + 1, box["y"])
    page.mouse.down()
    page.mouse.move(box["x"] + box["w"] - 1, box["y"], steps=5)
    page.mouse.up()


def test_annotate_every_question_kind_with_the_keyboard(page: Any, live_server: Any) -> None:
    project = make_project(
        texts=[TEXT, "The other answer.", "A third text."],
        questions=ALL_KINDS,
        add_items=False,
        guidelines="Label **people** and places.",
    )
    a, b, c = (
        Document.objects.filter(dataset=project.dataset).order_by("id").values_list("id", flat=True)
    )
    items_add_pairs(project=project, pairs=[(a, b), (b, c), (c, a)])
    ann = member(project, "ann")
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/annotate/{project.slug}/next/")
    page.wait_for_selector("#question-quality.active")
    first_url = page.url
    assert page.locator("#doc-text script").count() == 0
    assert "<script>alert('pwned')</script>" in page.inner_text("#doc-text")
    assert "people" in page.inner_text("#guidelines strong")

    page.keyboard.press("1")  # quality: good, then on to topics
    page.wait_for_selector("#question-topics.active")
    page.keyboard.press("1")
    page.keyboard.press("3")  # topics: news + chat
    page.keyboard.press("]")
    page.wait_for_selector("#question-entities.active")
    _select_with_mouse(page, "Alice")
    page.keyboard.press("1")  # PER on the mouse selection
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # word by word: 😀, Alice, met, Bob
    page.keyboard.press("1")  # PER on "Bob"
    for _ in range(6):
        page.keyboard.press("ArrowRight")  # ... in, New
    page.keyboard.press("Shift+ArrowRight")  # New York
    page.keyboard.press("2")  # LOC
    assert page.locator("#spans-entities li").count() == 3
    page.keyboard.press("]")
    for key in "34210":  # helpfulness .. verbosity; moves on after the last
        page.keyboard.press(key)
    page.wait_for_selector("#question-preference.active")
    page.keyboard.press("6")  # B better (a:3 a:2 a:1 tie b:1 b:2 ...)
    page.wait_for_selector("#question-rewrite.active")
    page.keyboard.type("Alice met Bob.")
    page.keyboard.press("Escape")
    # The status may still show an earlier question's save: wait for this one's row.
    wait_for(
        lambda: Annotation.objects.filter(draft=True, question__key="rewrite").exists(),
        timeout=15,
    )

    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != first_url and "/a/" in url)
    stored = dict(Annotation.objects.filter(draft=False).values_list("question__key", "values"))
    alice, bob, new_york = _offsets("Alice"), _offsets("Bob"), _offsets("New York")
    assert stored == {
        "quality": {"label": "good"},
        "topics": {"labels": ["news", "chat"]},
        "entities": {
            "spans": [
                {"start": alice[0], "end": alice[1], "label": "PER"},
                {"start": bob[0], "end": bob[1], "label": "PER"},
                {"start": new_york[0], "end": new_york[1], "label": "LOC"},
            ]
        },
        "helpsteer": {
            "ratings": {
                "helpfulness": 3,
                "correctness": 4,
                "coherence": 2,
                "complexity": 1,
                "verbosity": 0,
            }
        },
        "preference": {"choice": "b", "strength": 2},
        "rewrite": {"text": "Alice met Bob."},
    }
    done = Assignment.objects.get(user=ann, state=Assignment.State.SUBMITTED)
    assert done.time_spent_ms > 0
    assert Item.objects.get(pk=done.item_id).status == Item.Status.COMPLETE

    # Item two: a label, undone with "u"; then skip with "s".
    page.wait_for_selector("#question-quality.active")
    page.keyboard.press("1")
    assert page.is_checked("#question-quality input[value=good]")
    page.keyboard.press("u")
    assert not page.is_checked("#question-quality input[value=good]")
    second_url = page.url
    page.keyboard.press("s")
    page.wait_for_url(lambda url: url not in (first_url, second_url) and "/a/" in url)
    assert Assignment.objects.filter(user=ann, state=Assignment.State.SKIPPED).count() == 1

    # Backspace goes back: first to the skipped item, then to the submitted one, whose
    # answers come back as drafts to edit.
    page.keyboard.press("Backspace")
    page.wait_for_url(second_url)
    page.wait_for_selector("#question-quality.active")
    page.keyboard.press("Backspace")
    page.wait_for_url(first_url)
    page.wait_for_selector("#spans-entities li")
    assert page.is_checked("#question-quality input[value=good]")
    assert page.locator("#spans-entities li").count() == 3
    assert page.input_value("textarea[name=q-rewrite]") == "Alice met Bob."
    assert Item.objects.get(pk=done.item_id).status == Item.Status.PENDING

    # Ctrl+Enter submits from inside a text field (static/annotate/keys.js), where a
    # plain Enter is the field's own.
    page.click("textarea[name=q-rewrite]")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: url != first_url and "/a/" in url)
    assert Item.objects.get(pk=done.item_id).status == Item.Status.COMPLETE
    assert dialogs == []
