"""Robustness sets from (question, context) records: FailSafeQA perturbations, AGent negatives.

Both steps read records such as ``synth_qa`` makes: the question (and answer) in
``meta``, the context in ``meta["context"]`` or, without one, the document text.
A record without a question is not perturbed; it counts as dropped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pipelines.steps.base import Document, Param, StepParamError, register
from pipelines.steps.derive import (
    COMMON_PARAMS,
    LLM_PARAMS,
    Derivation,
    DerivedRecord,
    DeriveStep,
    Neighbours,
    Retrieval,
    normalized,
    template_params,
)
from pipelines.synthetic.perturb import CONTEXT_KINDS, QUERY_KINDS, degrade, perturb_query
from pipelines.synthetic.prompts import REGISTER_TEMPLATE, OutputParseError, parse_text

KINDS = (*QUERY_KINDS, "register", *CONTEXT_KINDS)

FIELD_PARAMS = (
    Param("question_field", str, "question", "meta field holding the question"),
    Param("answer_field", str, "answer", "meta field holding the answer (may be absent)"),
    Param("context_field", str, "context", "meta field holding the context (else the text)"),
)

VERIFY_TEMPLATE = """\
Can the question below be answered from the context alone? Reply with one word: yes or no.

Context:
{{ context }}

Question: {{ question }}
"""


def _optional_backend(params: tuple[Param, ...]) -> tuple[Param, ...]:
    return tuple(
        Param(p.name, p.kind, p.default, p.help + " (leave empty: no model)", nullable=True)
        if p.name == "backend"
        else p
        for p in params
    )


class _QuestionRecords(DeriveStep):
    def fields_of(self, document: Document) -> tuple[str, str, str] | None:
        question = document.meta.get(self.config["question_field"])
        if not isinstance(question, str) or not question.strip():
            return None
        context = document.meta.get(self.config["context_field"])
        answer = document.meta.get(self.config["answer_field"])
        return (
            question,
            context if isinstance(context, str) else document.text,
            answer if isinstance(answer, str) else "",
        )

    def record(
        self,
        source: Document,
        index: str,
        fields: dict[str, Any],
        sources: Sequence[Document],
        extra: dict[str, Any] | None = None,
    ) -> DerivedRecord:
        text = f"Question: {fields['question']}\n\nContext: {fields['context']}"
        meta = {**fields, "lineage": self.lineage(sources=sources, extra=extra)}
        return DerivedRecord(self.external_id(source, index), text=text, meta=meta)


@register
class Perturb(_QuestionRecords):
    """FailSafeQA: misspelled, incomplete and re-registered queries; degraded, empty and
    irrelevant contexts. All but the register change are deterministic in the seed."""

    name = "synth_perturb"
    version = "1"
    description = "FailSafeQA query and context perturbations of question/context records."
    params = (
        *COMMON_PARAMS,
        *FIELD_PARAMS,
        Param("kinds", tuple, KINDS, f"perturbations to make, of {', '.join(KINDS)}"),
        Param("register", str, "casual, chatty", "the register of the 'register' perturbation"),
        *_optional_backend(LLM_PARAMS),
        *template_params(REGISTER_TEMPLATE, "register"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        unknown = sorted(set(self.config["kinds"]) - set(KINDS))
        if unknown or not self.config["kinds"]:
            raise StepParamError(
                f"step {self.name!r}, parameter 'kinds': {unknown or 'none given'}; "
                f"choose from {', '.join(KINDS)}"
            )
        if "register" in self.config["kinds"] and self.config["backend"] is None:
            raise StepParamError(
                f"step {self.name!r}: the 'register' perturbation needs a backend; "
                "set 'backend' or leave 'register' out of 'kinds'"
            )

    def derive(self, batch: Sequence[Document], neighbours: Neighbours) -> Derivation:
        counts = self.counts(batch)
        kinds = self.config["kinds"]
        seed = self.config["seed"]
        usable = [(d, f) for d in batch if (f := self.fields_of(d)) is not None]
        for document in batch:
            if self.fields_of(document) is None:
                counts[f"{self.name}_dropped"][document.id] += 1
        records: list[tuple[Document, DerivedRecord]] = []
        for document, (question, context, answer) in usable:
            base = {"question": question, "context": context, "answer": answer}
            for kind in kinds:
                rng = random.Random(f"{seed}:{document.id}:{kind}")
                fields: dict[str, Any] = {**base, "perturbation": kind, "answerable": True}
                sources = [document]
                if kind in QUERY_KINDS:
                    fields["question"] = perturb_query(kind, question, rng=rng)
                elif kind == "degraded":
                    fields["context"] = degrade(context, rng=rng)
                elif kind == "empty":
                    fields.update(context="", answerable=False)
                elif kind == "irrelevant":
                    others = [(d, f) for d, f in usable if normalized(f[1]) != normalized(context)]
                    if not others:
                        counts[f"{self.name}_dropped"][document.id] += 1
                        continue
                    other, other_fields = rng.choice(others)
                    fields.update(context=other_fields[1], answerable=False)
                    sources = [document, other]
                else:
                    continue  # register: through the model, below
                fields["original_question"] = question
                records.append((document, self.record(document, kind, fields, sources)))
        if "register" in kinds:
            records.extend(self._register(usable, counts))
        return self.finish(batch, records, counts)

    def prompts(self, batch: Sequence[Document]) -> list[str]:
        if "register" not in self.config["kinds"]:
            return []
        usable = [f for d in batch if (f := self.fields_of(d)) is not None]
        return [
            self.template.render(question=q, register=self.config["register"], context=c)
            for q, c, _ in usable
        ]

    def _register(
        self, usable: list[tuple[Document, tuple[str, str, str]]], counts: dict[str, dict]
    ) -> list[tuple[Document, DerivedRecord]]:
        rewritten = self.generate_parsed(self.prompts([d for d, _ in usable]), parse_text)
        records = []
        for (document, (question, context, answer)), text in zip(usable, rewritten, strict=True):
            if text is None:
                counts[f"{self.name}_failed"][document.id] += 1
                continue
            fields = {
                "question": text,
                "context": context,
                "answer": answer,
                "perturbation": "register",
                "answerable": True,
                "original_question": question,
            }
            records.append((document, self.record(document, "register", fields, [document])))
        return records


def _yes_no(reply: str) -> bool:
    words = reply.strip().lower().split()
    first = words[0].strip(".,:;!\"'") if words else ""
    if first in ("yes", "no"):
        return first == "yes"
    raise OutputParseError(f"expected 'yes' or 'no', got {reply[:100]!r}")


@register
class Unanswerable(_QuestionRecords):
    """AGent: pair each question with a similar but different context retrieved from a
    similarity index, one that does not hold the answer; label the pair unanswerable.

    The retrieved context must differ from the record's own, must not be one of its
    source documents and must not contain the answer; with a backend, a model must
    also say that the question cannot be answered from it.
    """

    name = "synth_unanswerable"
    version = "1"
    description = "AGent unanswerable questions: a question with a retrieved, insufficient context."
    params = (
        *COMMON_PARAMS,
        *FIELD_PARAMS,
        Param(
            "index_dataset",
            str,
            None,
            "slug of the dataset whose similarity index gives contexts (default: this one)",
            nullable=True,
        ),
        Param("candidates", int, 5, "neighbours considered per question", minimum=1, maximum=100),
        *_optional_backend(LLM_PARAMS),
        *template_params(VERIFY_TEMPLATE, "agent-verify"),
    )

    def retrieval(self) -> Retrieval:
        field = self.config["question_field"]
        return Retrieval(
            dataset=self.config["index_dataset"],
            k=self.config["candidates"],
            query=lambda d: str(d.meta.get(field) or d.text),
        )

    def _candidate(
        self, document: Document, fields: tuple[str, str, str], found: list[tuple[Document, float]]
    ) -> tuple[Document, str, float] | None:
        _, context, answer = fields
        lineage = document.meta.get("lineage")
        own_sources = set(lineage.get("source_ids", [])) if isinstance(lineage, dict) else set()
        for neighbour, score in found:
            other = neighbour.meta.get(self.config["context_field"])
            other = other if isinstance(other, str) else neighbour.text
            if neighbour.id == document.id or neighbour.id in own_sources:
                continue
            if not other.strip() or normalized(other) == normalized(context):
                continue
            if answer.strip() and normalized(answer) in normalized(other):
                continue
            return neighbour, other, score
        return None

    def derive(self, batch: Sequence[Document], neighbours: Neighbours) -> Derivation:
        counts = self.counts(batch)
        pairs = []
        for document in batch:
            fields = self.fields_of(document)
            found = neighbours.get(document.id, [])
            chosen = None if fields is None else self._candidate(document, fields, found)
            if fields is None or chosen is None:
                counts[f"{self.name}_dropped"][document.id] += 1
                continue
            pairs.append((document, fields, chosen))
        verdicts: list[bool | None] = [False] * len(pairs)
        if self.config["backend"] is not None:
            prompts = [self.template.render(question=f[0], context=c[1]) for _, f, c in pairs]
            verdicts = self.generate_parsed(prompts, _yes_no)
        records = []
        for (document, (question, _, answer), (other, context, score)), answerable in zip(
            pairs, verdicts, strict=True
        ):
            if answerable is None:
                counts[f"{self.name}_failed"][document.id] += 1
                continue
            if answerable:
                counts[f"{self.name}_dropped"][document.id] += 1
                continue
            negative = {
                "question": question,
                "context": context,
                "answer": "",
                "original_answer": answer,
                "answerable": False,
                "label": "unanswerable",
            }
            extra = {"retrieval": {"document_id": other.id, "score": round(score, 4)}}
            record = self.record(document, "0", negative, [document, other], extra)
            records.append((document, record))
        return self.finish(batch, records, counts)
