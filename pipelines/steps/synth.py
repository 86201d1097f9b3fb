"""LLM generators over seed documents: instruction/response pairs, QA pairs, rewrites."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, register
from pipelines.steps.derive import (
    COMMON_PARAMS,
    LLM_PARAMS,
    OVERLAP_PARAM,
    Derivation,
    DerivedRecord,
    DeriveStep,
    Neighbours,
    template_params,
)
from pipelines.synthetic.prompts import (
    INSTRUCT_TEMPLATE,
    PARAPHRASE_TEMPLATE,
    QA_TEMPLATE,
    parse_records,
    parse_text,
)

MAX_CHARS = Param(
    "max_chars", int, 6000, "characters of the document given to the model", minimum=10
)


def template_context(document: Document, max_chars: int, **extra: Any) -> dict[str, Any]:
    """What a template sees: the (cut) text, the id and meta of the document, and ``extra``."""
    return {"text": document.text[:max_chars], "id": document.id, "meta": document.meta, **extra}


class _PairGenerator(DeriveStep):
    """Records of named fields parsed from one reply per document."""

    fields: tuple[str, ...] = ()

    def per_document(self) -> int:
        return 1

    def record_text(self, fields: dict[str, str]) -> str:
        raise NotImplementedError

    def prompts(self, batch: Sequence[Document]) -> list[str]:
        context = {"n": self.per_document()}
        return [
            self.template.render(**template_context(d, self.config["max_chars"], **context))
            for d in batch
        ]

    def derive(self, batch: Sequence[Document], neighbours: Neighbours) -> Derivation:
        counts = self.counts(batch)
        limit = self.per_document()
        parsed = self.generate_parsed(
            self.prompts(batch), lambda reply: parse_records(reply, self.fields, limit=limit)
        )
        records = []
        for document, found in zip(batch, parsed, strict=True):
            if found is None:
                counts[f"{self.name}_failed"][document.id] += 1
                continue
            for index, fields in enumerate(found):
                meta: dict[str, Any] = {**fields, "lineage": self.lineage(sources=[document])}
                if self.config.get("keep_context"):
                    meta["context"] = document.text
                records.append(
                    (
                        document,
                        DerivedRecord(
                            external_id=self.external_id(document, index),
                            text=self.record_text(fields),
                            meta=meta,
                        ),
                    )
                )
        return self.finish(batch, records, counts)


@register
class InstructGenerator(_PairGenerator):
    """An instruction and its response written from each seed document."""

    name = "synth_instruct"
    version = "1"
    description = "Instruction/response pairs generated from each document."
    fields = ("instruction", "response")
    params = (
        *COMMON_PARAMS,
        *LLM_PARAMS,
        *template_params(INSTRUCT_TEMPLATE, "instruct"),
        MAX_CHARS,
        OVERLAP_PARAM,
    )

    def record_text(self, fields: dict[str, str]) -> str:
        return f"{fields['instruction']}\n\n{fields['response']}"


@register
class QAGenerator(_PairGenerator):
    """Question/answer pairs answerable from each seed document (the document is the context)."""

    name = "synth_qa"
    version = "1"
    description = "Question/answer pairs generated from each document, kept with the context."
    fields = ("question", "answer")
    params = (
        *COMMON_PARAMS,
        *LLM_PARAMS,
        *template_params(QA_TEMPLATE, "qa"),
        MAX_CHARS,
        Param("per_document", int, 1, "questions asked per document", minimum=1, maximum=20),
        Param("keep_context", bool, True, "store the document as meta['context']"),
    )

    def per_document(self) -> int:
        return int(self.config["per_document"])

    def record_text(self, fields: dict[str, str]) -> str:
        return f"Question: {fields['question']}\nAnswer: {fields['answer']}"


@register
class Paraphrase(DeriveStep):
    """Each document rewritten by a model (cleaning or augmentation); meta is carried over."""

    name = "synth_paraphrase"
    version = "1"
    description = "Each document rewritten or paraphrased by a model."
    params = (
        *COMMON_PARAMS,
        *LLM_PARAMS,
        *template_params(PARAPHRASE_TEMPLATE, "paraphrase"),
        MAX_CHARS,
        Param("min_chars", int, 20, "a shorter reply counts as failed", minimum=1),
        OVERLAP_PARAM,
    )

    def prompts(self, batch: Sequence[Document]) -> list[str]:
        return [
            self.template.render(**template_context(d, self.config["max_chars"])) for d in batch
        ]

    def derive(self, batch: Sequence[Document], neighbours: Neighbours) -> Derivation:
        counts = self.counts(batch)
        parsed = self.generate_parsed(
            self.prompts(batch), lambda reply: parse_text(reply, min_chars=self.config["min_chars"])
        )
        records = []
        for document, text in zip(batch, parsed, strict=True):
            if text is None:
                counts[f"{self.name}_failed"][document.id] += 1
                continue
            meta = {**document.meta, "lineage": self.lineage(sources=[document])}
            records.append(
                (document, DerivedRecord(self.external_id(document, 0), text=text, meta=meta))
            )
        return self.finish(batch, records, counts)
