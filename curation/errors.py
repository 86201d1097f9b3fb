"""Errors of the curation app, split by retry policy: tasks retry only the transient kind."""

from __future__ import annotations


class CurationError(Exception):
    """Base of the app's errors; the message says what to do next."""


class PermanentError(CurationError):
    """Retrying cannot help: bad input, a missing file, a wrong field name."""


class TransientError(CurationError):
    """Retrying may help: a lost lease, a database restart, a broker hiccup."""


class ImportSourceError(PermanentError):
    """The whole import source cannot be read."""


class LeaseLostError(TransientError):
    """Another worker took over this job (our lease expired); stop without writing."""
