from __future__ import annotations

import pytest

from pipelines.steps.base import Document, StepParamError
from pipelines.steps.language import LanguageId

SENTENCES = {
    "en": "The library opens at nine in the morning, and the children usually arrive first.",
    "fr": "La bibliothèque ouvre à neuf heures du matin, et les enfants arrivent les premiers.",
    "de": "Die Bibliothek öffnet um neun Uhr morgens, und die Kinder kommen meistens zuerst.",
    "es": "La biblioteca abre a las nueve de la mañana y los niños suelen llegar primero.",
}


def batch(*texts: str) -> list[Document]:
    return [Document(id=i, text=text) for i, text in enumerate(texts)]


def test_identifies_english_french_german_spanish() -> None:
    out = LanguageId().run(batch(*SENTENCES.values()))
    assert out["lang"] == list(SENTENCES)
    assert all(isinstance(s, float) and 0.9 < s <= 1.0 for s in out["lang_score"])


def test_nothing_to_classify_gives_no_language() -> None:
    # Empty or blank text, and text without a character n-gram the model knows, where
    # py3langid would answer with a flat distribution and an arbitrary label.
    out = LanguageId().run(batch("", " \n\t", "😀", "a"))
    assert out == {"lang": [None] * 4, "lang_score": [None] * 4}


def test_restricting_languages() -> None:
    text = SENTENCES["fr"]
    restricted = LanguageId(languages=["es", "en"]).run(batch(text, SENTENCES["en"], ""))
    assert restricted["lang"][0] in ("es", "en")
    assert restricted["lang"][1:] == ["en", None]
    # The full model still answers French: the restriction did not leak into it.
    assert LanguageId().run(batch(text))["lang"] == ["fr"]


def test_only_the_first_max_chars_are_classified() -> None:
    text = SENTENCES["de"] + " " + SENTENCES["fr"] * 20
    assert LanguageId().run(batch(text))["lang"] == ["fr"]
    assert LanguageId(max_chars=len(SENTENCES["de"])).run(batch(text))["lang"] == ["de"]
    assert LanguageId(max_chars=None).run(batch(text))["lang"] == ["fr"]


@pytest.mark.parametrize(
    ("languages", "message"),
    [(["en", "klingon"], "does not know"), (["en"], "two or more"), ([1, 2], "codes")],
)
def test_bad_languages_are_refused(languages: list[object], message: str) -> None:
    with pytest.raises(StepParamError, match=message):
        LanguageId(languages=languages)
