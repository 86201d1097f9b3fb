"""Reads about model suggestions: an item's suggestions, and how far humans agree with them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from django.db.models import Count, Exists, OuterRef

from annotate import agreement
from annotate.models import Annotation, AnnotationProject, FinalAnswer, Question, Suggestion

POOLED = "all annotators (each answer)"
FINAL = "final answer (reviewed)"


@dataclass(frozen=True)
class SuggestionView:
    """One suggestion as the annotator page lists it."""

    question_key: str
    origin: str
    source: str
    score: float | None
    answer: str


@dataclass(frozen=True)
class ItemSuggestions:
    rows: list[SuggestionView]
    # question key -> the answer the accept key fills in (shaped as Annotation.values)
    accept: dict[str, dict[str, Any]]


def _answer_text(values: dict[str, Any]) -> str:
    if "label" in values:
        return str(values["label"])
    if "labels" in values:
        return ", ".join(map(str, values["labels"]))
    if "ratings" in values:
        return ", ".join(f"{a} {n}" for a, n in values["ratings"].items())
    if "choice" in values:
        return f"{values['choice']} ({values.get('strength')})"
    return orjson.dumps(values).decode()


def item_suggestions(*, item_id: int, questions: Iterable[Question]) -> ItemSuggestions:
    """The item's suggestions in question order, and the answers accepting them gives.

    Where several sources suggest a label for one question, the first (by source name)
    is the one accepted; ratings from several sources are merged attribute by attribute,
    the first source's rating winning.
    """
    order = {q.pk: (i, q) for i, q in enumerate(questions)}
    found = (
        Suggestion.objects.filter(item_id=item_id, question_id__in=list(order))
        .order_by("source", "id")
        .values_list("question_id", "origin", "source", "score", "values")
    )
    ranked = sorted(found, key=lambda row: order[row[0]][0])
    rows: list[SuggestionView] = []
    accept: dict[str, dict[str, Any]] = {}
    for question_id, origin, source, score, values in ranked:
        question = order[question_id][1]
        rows.append(
            SuggestionView(
                question.key,
                Suggestion.Origin(origin).label,
                source,
                score,
                _answer_text(values),
            )
        )
        if "ratings" in values:
            merged = accept.setdefault(question.key, {"ratings": {}})["ratings"]
            for attribute, rating in values["ratings"].items():
                merged.setdefault(attribute, rating)
        else:
            accept.setdefault(question.key, values)
    return ItemSuggestions(rows=rows, accept=accept)


@dataclass(frozen=True)
class ModelAgreementRow:
    """Agreement of one suggestion source with one human (or all, or the final answers)."""

    question: Question
    source: str
    origin: str
    suggested: int
    attribute: str
    against: str
    metric: str
    score: agreement.Score
    mean_abs_diff: agreement.Score | None = None


# item_id -> value
_ByItem = dict[int, Any]


def _pairs(
    model: _ByItem, humans: dict[str, dict[int, Any]]
) -> list[tuple[str, list[Any], list[Any]]]:
    """(against, model values, human values) for the pooled answers, each human, final."""
    out: list[tuple[str, list[Any], list[Any]]] = []
    pooled_m: list[Any] = []
    pooled_h: list[Any] = []
    per_person: list[tuple[str, list[Any], list[Any]]] = []
    for who, answers in humans.items():
        shared = [i for i in answers if i in model]
        m = [model[i] for i in shared]
        h = [answers[i] for i in shared]
        if who != FINAL:
            pooled_m += m
            pooled_h += h
        per_person.append((who, m, h))
    out.append((POOLED, pooled_m, pooled_h))
    people = sorted((p for p in per_person if p[0] != FINAL), key=lambda p: p[0])
    out += people
    out += [p for p in per_person if p[0] == FINAL]
    return out


def _mean_abs_diff(a: list[Any], b: list[Any]) -> agreement.Score:
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not diffs:
        return agreement.Score(None, "no item has both a suggestion and a rating")
    return agreement.Score(sum(diffs) / len(diffs), n=len(diffs))


def _humans(
    question_id: int,
    answers: dict[int, dict[str, dict[int, dict[str, Any]]]],
    finals: dict[int, dict[int, dict[str, Any]]],
    value: Callable[[dict[str, Any]], Any],
) -> dict[str, dict[int, Any]]:
    humans = {
        who: {i: value(v) for i, v in by_item.items()}
        for who, by_item in answers.get(question_id, {}).items()
    }
    if question_id in finals:
        humans[FINAL] = {i: value(v) for i, v in finals[question_id].items()}
    return humans


def model_agreement(*, project: AnnotationProject) -> list[ModelAgreementRow]:
    """Agreement between each suggestion source and the humans, per question.

    1. Per (question, source): the suggested value per item; per annotator their
       submitted answer per item; the reviewed final answer per item where one exists.
    2. Single label: Cohen's kappa of the model's label against all human answers pooled
       (one pair per answer), against each annotator, and against the final answers.
    3. Rating: per attribute the source rates, Krippendorff's alpha (interval) over the
       (model, human) pairs and their mean absolute difference, against the same three.
    ``n`` on each score counts the items (pairs) it rests on.
    """
    questions = {
        q.pk: q
        for q in project.questions.filter(
            kind__in=[Question.Kind.SINGLE_LABEL, Question.Kind.RATING]
        )
    }
    suggestions = Suggestion.objects.filter(project=project, question_id__in=list(questions))
    counts = {
        (question_id, source): (origin, n)
        for question_id, source, origin, n in suggestions.values_list(
            "question_id", "source", "origin"
        )
        .annotate(n=Count("id"))
        .values_list("question_id", "source", "origin", "n")
    }
    if not counts:
        return []
    # Only suggestions on items some human answered (or a reviewer decided) are compared;
    # a project may carry a classifier's suggestion on every one of a million items.
    answered = Annotation.objects.filter(
        item_id=OuterRef("item_id"), question_id=OuterRef("question_id"), draft=False
    )
    decided = FinalAnswer.objects.filter(
        item_id=OuterRef("item_id"), question_id=OuterRef("question_id")
    )
    models: dict[tuple[int, str], dict[int, dict[str, Any]]] = {key: {} for key in counts}
    for question_id, source, item_id, values in (
        suggestions.filter(Exists(answered) | Exists(decided))
        .values_list("question_id", "source", "item_id", "values")
        .iterator(chunk_size=5000)
    ):
        models[question_id, source][item_id] = values
    answers: dict[int, dict[str, dict[int, dict[str, Any]]]] = {}
    for question_id, item_id, username, values in (
        Annotation.objects.filter(question_id__in=list(questions), draft=False)
        .values_list("question_id", "item_id", "user__username", "values")
        .iterator(chunk_size=5000)
    ):
        answers.setdefault(question_id, {}).setdefault(username, {})[item_id] = values
    finals: dict[int, dict[int, dict[str, Any]]] = {}
    for question_id, item_id, values in FinalAnswer.objects.filter(
        question_id__in=list(questions)
    ).values_list("question_id", "item_id", "values"):
        finals.setdefault(question_id, {})[item_id] = values

    rows: list[ModelAgreementRow] = []
    for (question_id, source), suggested in sorted(
        models.items(), key=lambda kv: (questions[kv[0][0]].order, kv[0][0], kv[0][1])
    ):
        question = questions[question_id]
        origin, count = counts[question_id, source]
        row = partial(ModelAgreementRow, question, source, Suggestion.Origin(origin).label, count)
        if question.kind == Question.Kind.SINGLE_LABEL:
            model = {i: v.get("label") for i, v in suggested.items()}
            humans = _humans(question_id, answers, finals, _label_of)
            for against, m, h in _pairs(model, humans):
                rows.append(row("", against, "Cohen's kappa", agreement.cohen_kappa(m, h)))
            continue
        sample = suggestions.filter(question_id=question_id, source=source).values_list(
            "values", flat=True
        )[:1]
        attributes = sorted(
            {a for v in [*sample, *suggested.values()] for a in v.get("ratings", {})}
        )
        for attribute in attributes:
            rating = _rating_of(attribute)
            model = {i: rating(v) for i, v in suggested.items()}
            humans = _humans(question_id, answers, finals, rating)
            for against, m, h in _pairs(model, humans):
                alpha = agreement.krippendorff_alpha(
                    [[x, y] for x, y in zip(m, h, strict=True)], agreement.INTERVAL
                )
                rows.append(
                    row(
                        attribute,
                        against,
                        "Krippendorff's alpha (interval)",
                        alpha,
                        _mean_abs_diff(m, h),
                    )
                )
    return rows


def _label_of(values: dict[str, Any]) -> Any:
    return values.get("label")


def _rating_of(attribute: str) -> Callable[[dict[str, Any]], Any]:
    def rating(values: dict[str, Any]) -> Any:
        return values.get("ratings", {}).get(attribute)

    return rating


@dataclass(frozen=True)
class SuggestionSource:
    question_key: str
    source: str
    origin: str
    items: int


def suggestion_sources(*, project: AnnotationProject) -> list[SuggestionSource]:
    """Each (question, source) that has suggestions in the project, with how many items."""
    rows = (
        Suggestion.objects.filter(project=project)
        .values_list("question__key", "source", "origin")
        .annotate(n=Count("id"))
        .values_list("question__key", "source", "origin", "n")
        .order_by("question__order", "question__key", "source")
    )
    return [
        SuggestionSource(key, source, Suggestion.Origin(origin).label, n)
        for key, source, origin, n in rows
    ]
