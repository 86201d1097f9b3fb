"""The curator dashboard: agreement per question, figures per annotator, counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count
from django.utils import timezone

from annotate import agreement
from annotate.models import Annotation, AnnotationProject, Assignment, Question
from annotate.selectors.projects import ProjectProgress, project_progress


@dataclass(frozen=True)
class MetricRow:
    """One agreement figure of a question: what it measures, over what, and its score."""

    label: str
    metric: str
    score: agreement.Score


@dataclass(frozen=True)
class QuestionAgreement:
    question: Question
    annotators: int
    rows: list[MetricRow]
    note: str = ""


@dataclass(frozen=True)
class AnnotatorStats:
    username: str
    items_done: int
    mean_time_ms: float | None
    majority_items: int
    majority_share: float | None


@dataclass(frozen=True)
class ProjectCounts:
    progress: ProjectProgress
    submissions: int
    submissions_24h: int

    @property
    def throughput_per_hour(self) -> float:
        return self.submissions_24h / 24


@dataclass(frozen=True)
class ProjectAgreement:
    counts: ProjectCounts
    questions: list[QuestionAgreement]
    annotators: list[AnnotatorStats]


# question_id -> item_id -> user_id -> the submitted values
_Answers = dict[int, dict[int, dict[int, dict[str, Any]]]]


def _units(by_item: dict[int, dict[int, dict[str, Any]]], value: Any) -> list[list[Any]]:
    """One list per item of ``value(answer)`` for each annotator's answer (None if absent)."""
    return [[value(answer) for answer in by_user.values()] for by_user in by_item.values()]


def _single_label_rows(by_item: dict[int, dict[int, dict[str, Any]]]) -> list[MetricRow]:
    rows = [
        MetricRow(
            "all annotators",
            "Krippendorff's alpha (nominal)",
            agreement.krippendorff_alpha(_units(by_item, lambda v: v.get("label")), "nominal"),
        )
    ]
    users = sorted({u for by_user in by_item.values() for u in by_user})
    if len(users) == 2:
        first, second = users
        shared = [b for b in by_item.values() if first in b and second in b]
        rows.append(
            MetricRow(
                "the two annotators",
                "Cohen's kappa",
                agreement.cohen_kappa(
                    [b[first].get("label") for b in shared],
                    [b[second].get("label") for b in shared],
                ),
            )
        )
    return rows


def _signed_preference(values: dict[str, Any]) -> int | None:
    """A pairwise answer on one scale: A much better < ... < tie (0) < ... < B much better."""
    choice, strength = values.get("choice"), values.get("strength") or 0
    if choice == "a":
        return -int(strength)
    if choice == "b":
        return int(strength)
    return 0 if choice == "tie" else None


def _question_agreement(
    question: Question, by_item: dict[int, dict[int, dict[str, Any]]]
) -> QuestionAgreement:
    """The measure the question's kind calls for (see ``project_agreement``)."""
    annotators = len({u for by_user in by_item.values() for u in by_user})
    kind, config = question.kind, question.config
    rows: list[MetricRow] = []
    if kind == Question.Kind.SINGLE_LABEL:
        rows = _single_label_rows(by_item)
    elif kind == Question.Kind.MULTI_LABEL:
        per_label = [
            MetricRow(
                label,
                "Krippendorff's alpha (nominal, present/absent)",
                agreement.krippendorff_alpha(
                    _units(by_item, lambda v, label=label: label in v.get("labels", [])),
                    "nominal",
                ),
            )
            for label in config["labels"]
        ]
        mean = agreement.mean_score(
            (r.score for r in per_label), "no label has an alpha (see each label)"
        )
        rows = [MetricRow("mean over labels", per_label[0].metric, mean), *per_label]
    elif kind == Question.Kind.RATING:
        rows = [
            MetricRow(
                attribute,
                "Krippendorff's alpha (ordinal)",
                agreement.krippendorff_alpha(
                    _units(by_item, lambda v, a=attribute: v.get("ratings", {}).get(a)),
                    "ordinal",
                ),
            )
            for attribute in config["attributes"]
        ]
    elif kind == Question.Kind.PAIRWISE:
        rows = [
            MetricRow(
                "signed preference (A much better ... B much better)",
                "Krippendorff's alpha (ordinal)",
                agreement.krippendorff_alpha(_units(by_item, _signed_preference), "ordinal"),
            )
        ]
    elif kind == Question.Kind.SPANS:
        spans: dict[int, dict[int, list[tuple[Any, ...]]]] = {}
        for item_id, by_user in by_item.items():
            for user_id, values in by_user.items():
                spans.setdefault(user_id, {})[item_id] = [
                    (s["start"], s["end"], s["label"]) for s in values.get("spans", [])
                ]
        rows = [
            MetricRow(
                "exact (start, end, label), mean over annotator pairs",
                "span F1",
                agreement.span_f1_pairwise(spans),
            )
        ]
    else:
        return QuestionAgreement(
            question, annotators, [], note="No agreement measure for free-text rewrites."
        )
    return QuestionAgreement(question, annotators, rows)


def _majority_matches(
    answers: _Answers, single_label: list[int]
) -> tuple[Counter[int], Counter[int]]:
    """Per user: items where the other annotators have one most common label, and matches."""
    counted: Counter[int] = Counter()
    matched: Counter[int] = Counter()
    for question_id in single_label:
        for by_user in answers.get(question_id, {}).values():
            for user_id, values in by_user.items():
                others = Counter(
                    v.get("label") for u, v in by_user.items() if u != user_id
                ).most_common(2)
                if not others or (len(others) == 2 and others[0][1] == others[1][1]):
                    continue  # alone on the item, or the others are split evenly
                counted[user_id] += 1
                matched[user_id] += others[0][0] == values.get("label")
    return counted, matched


def project_agreement(*, project: AnnotationProject) -> ProjectAgreement:
    """The curator dashboard: agreement per question, figures per annotator, counts.

    1. Submitted (non-draft) annotations are gathered per question, item and annotator.
    2. Per question kind: single label, alpha (nominal) and Cohen's kappa when exactly
       two annotators answered it; multi-label, alpha (nominal) per label as
       present/absent and their mean; rating, alpha (ordinal) per attribute; pairwise,
       alpha (ordinal) on the signed preference scale; spans, exact-match span F1
       averaged over annotator pairs; rewrite, none.
    3. Per annotator: submitted items, mean time per item, and on single-label questions
       the share of items where they gave the label most common among the others
       (items where they are alone or the others tie are not counted).
    4. Counts: items by status, submissions, submissions over the last 24 hours.
    """
    questions = list(project.questions.order_by("order", "id"))
    answers: _Answers = {}
    rows = Annotation.objects.filter(item__project=project, draft=False).values_list(
        "question_id", "item_id", "user_id", "values"
    )
    for question_id, item_id, user_id, values in rows.iterator(chunk_size=5000):
        answers.setdefault(question_id, {}).setdefault(item_id, {})[user_id] = values
    single_label = [q.pk for q in questions if q.kind == Question.Kind.SINGLE_LABEL]
    counted, matched = _majority_matches(answers, single_label)
    submitted = Assignment.objects.filter(project=project, state=Assignment.State.SUBMITTED)
    per_user = (
        submitted.values("user_id", "user__username")
        .annotate(done=Count("id"), mean_ms=Avg("time_spent_ms"))
        .order_by("user__username")
    )
    annotators = [
        AnnotatorStats(
            username=row["user__username"],
            items_done=row["done"],
            mean_time_ms=row["mean_ms"],
            majority_items=counted[row["user_id"]],
            majority_share=(
                matched[row["user_id"]] / counted[row["user_id"]]
                if counted[row["user_id"]]
                else None
            ),
        )
        for row in per_user
    ]
    since = timezone.now() - timedelta(hours=24)
    counts = ProjectCounts(
        progress=project_progress(project=project),
        submissions=submitted.count(),
        submissions_24h=submitted.filter(finished_at__gte=since).count(),
    )
    return ProjectAgreement(
        counts=counts,
        questions=[_question_agreement(q, answers.get(q.pk, {})) for q in questions],
        annotators=annotators,
    )
