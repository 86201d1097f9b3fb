"""What tasks and commands need to know about the Celery workers."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    """This process as a lease owner: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def workers_online(timeout: float = 1.0) -> bool:
    """Whether any worker answers a ping (commands run in-process when none does)."""
    from curation.celery import app

    try:
        return bool(app.control.ping(timeout=timeout))
    except OSError:
        return False
