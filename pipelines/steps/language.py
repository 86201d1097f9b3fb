"""Language identification with py3langid (its model ships in the wheel: works offline)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register

_IDENTIFIERS: dict[tuple[str, ...] | None, Any] = {}


def identifier(languages: tuple[str, ...] | None = None) -> Any:
    """The process's py3langid identifier (normalized probabilities), restricted to ``languages``.

    The model loads once; a restricted identifier is a shallow copy that shares it.
    """
    if languages not in _IDENTIFIERS:
        if None not in _IDENTIFIERS:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _IDENTIFIERS[None] = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if languages is not None:
            restricted = copy.copy(_IDENTIFIERS[None])
            restricted.set_languages(languages)
            _IDENTIFIERS[languages] = restricted
    return _IDENTIFIERS[languages]


@register
class LanguageId(Step):
    """The most likely language of the start of each document, and its probability.

    ``lang`` is the model's label: an ISO 639-1 code where the language has one ("en", "fr"),
    else ISO 639-3 ("ace", "arz"), or "zxx" for content that is not language (numbers, markup).
    A document with nothing to classify (empty, only whitespace, or without a single character
    n-gram the model knows, where py3langid returns a flat distribution and an arbitrary label)
    gets ``lang`` and ``lang_score`` None.
    """

    name = "language_id"
    version = "1"
    description = "Language (py3langid) of the first max_chars characters, with its probability."
    params = (
        Param(
            "languages",
            tuple,
            None,
            "candidate language codes (None: all the model knows)",
            nullable=True,
        ),
        Param(
            "max_chars",
            int,
            2000,
            "classify only the first characters (None: all)",
            nullable=True,
            minimum=1,
        ),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        languages = self.config["languages"]
        if languages is None:
            return
        if len(set(languages)) < 2 or not all(isinstance(code, str) for code in languages):
            raise StepParamError(
                f"step {self.name!r}, parameter 'languages': expected two or more language "
                f"codes, got {list(languages)!r}"
            )
        unknown = sorted(set(languages) - set(identifier().labels))
        if unknown:
            raise StepParamError(
                f"step {self.name!r}, parameter 'languages': py3langid does not know {unknown}; "
                f"known: {', '.join(sorted(identifier().labels))}"
            )
        # One identifier per language set, whatever the order the codes came in.
        self.config["languages"] = tuple(sorted(set(languages)))

    def signals(self) -> list[SignalSpec]:
        return [
            SignalSpec("lang", "text", "language code (py3langid's label)"),
            SignalSpec("lang_score", "float", "its probability, 0 to 1"),
        ]

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        import numpy as np

        model = identifier(self.config["languages"])
        # py3langid answers a featureless text with the uniform distribution over its columns
        # (float32); the top label gets 1/columns, or twice that where two columns share a
        # label (sr). No real text scores exactly that.
        flat = float(np.float32(1) / np.float32(len(model.nb_classes)))
        if len(model.labels) < len(model.nb_classes):
            flat *= 2
        max_chars = self.config["max_chars"]
        langs: list[str | None] = []
        scores: list[float | None] = []
        for doc in batch:
            text = doc.text[:max_chars] if max_chars is not None else doc.text
            if not text.strip():
                langs.append(None)
                scores.append(None)
                continue
            lang, score = model.classify(text)
            if score == flat:
                langs.append(None)
                scores.append(None)
                continue
            langs.append(str(lang))
            scores.append(float(score))
        return {"lang": langs, "lang_score": scores}
