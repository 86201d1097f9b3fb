"""Steps: small classes registered by name that turn a batch of documents into signal values.

Importing this package registers every built-in step (see ``registry``).
"""

from pipelines.steps.base import REGISTRY, Document, Param, SignalSpec, Step, get_step, register

__all__ = ["REGISTRY", "Document", "Param", "SignalSpec", "Step", "get_step", "register"]
