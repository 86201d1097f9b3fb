"""Reads for what a project's answers become: their signals and one-click classifier training."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.text import slugify

from annotate import questions as kinds
from annotate.errors import ProjectError
from annotate.models import AnnotationProject
from annotate.services.answer_signals import answer_signals_check
from curation.models import Signal

CLASSIFIER_NAME_LENGTH = 80


@dataclass(frozen=True)
class TrainingLink:
    """Train the quality classifier with one label of a single-label question as positive."""

    question_key: str
    label: str
    signal: str
    url: str


@dataclass(frozen=True)
class AnswerOutputs:
    signals: list[Signal]  # the project's answer signals written so far
    missing: list[str]  # names its questions make that are not written yet
    training: list[TrainingLink]
    error: str = ""  # why the questions cannot become signals, if they cannot


def classifier_training_url(
    *, project: AnnotationProject, question_key: str, signal: str, label: str
) -> str:
    """The dataset's classifier form, filled in: ``signal == label`` against the rest.

    "The rest" are the documents whose answer is another label (documents without an
    answer have no value and are left out), so the classifier learns reviewed labels only.
    """
    name = slugify(f"{project.slug} {question_key} {label}")[:CLASSIFIER_NAME_LENGTH]
    query = urlencode(
        {
            "name": name,
            "positive_signal": signal,
            "positive_op": "==",
            "positive_value": label,
            "negative": "rest",
        }
    )
    return f"{reverse('classifier_list', args=[project.dataset_id])}?{query}"


def answer_outputs(*, project: AnnotationProject) -> AnswerOutputs:
    """The signals the project's answers make (written or not) and classifier shortcuts."""
    try:
        specs = answer_signals_check(project=project)
    except ProjectError as exc:
        return AnswerOutputs(signals=[], missing=[], training=[], error=str(exc))
    names = [s.name for s in specs]
    written = {s.name: s for s in Signal.objects.filter(name__in=names)}
    by_question = {s.question_id: s.name for s in specs}
    training = []
    for question in project.questions.filter(kind=kinds.SINGLE_LABEL).order_by("order", "id"):
        signal = by_question[question.pk]
        if signal not in written:
            continue
        for label in question.config.get("labels", []):
            url = classifier_training_url(
                project=project, question_key=question.key, signal=signal, label=label
            )
            training.append(TrainingLink(question.key, label, signal, url))
    return AnswerOutputs(
        signals=[written[n] for n in names if n in written],
        missing=[n for n in names if n not in written],
        training=training,
    )
