"""Errors of the pipelines app, split by retry policy like curation.errors."""

from __future__ import annotations

from curation.errors import PermanentError, TransientError


class PipelineDefinitionError(PermanentError):
    """A pipeline definition names an unknown step or a bad parameter."""


class BatchLeaseLostError(TransientError):
    """Another worker took over this batch (our lease expired); stop without writing."""
