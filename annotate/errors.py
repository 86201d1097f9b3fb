"""Errors of the annotate app, on the curation app's retry split (permanent vs transient)."""

from __future__ import annotations

from curation.errors import PermanentError


class AnnotateError(PermanentError):
    """Base of the annotate errors; the message says what to do next."""


class ProjectError(AnnotateError):
    """A project, its items or its members cannot be set up as asked."""


class QuestionConfigError(ProjectError):
    """A question's kind or config is not valid."""


class AnnotationInvalidError(AnnotateError):
    """Submitted values do not fit their questions; ``errors`` maps question key -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


class AssignmentClosedError(AnnotateError):
    """The assignment is no longer open (submitted, skipped, or its lease expired and the
    item went to someone else): take the next item."""


class ReviewError(AnnotateError):
    """A review decision cannot be recorded as asked (an answer that is not the item's,
    a question of another project): the message names it."""
