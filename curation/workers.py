"""What tasks and commands need to know about the Celery workers, and how to stop them."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Sequence
from typing import Any


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


def stop_children(children: Sequence[subprocess.Popen[Any]], *, timeout: float = 20) -> None:
    """Stop child processes (workers, web servers) gracefully, by force if they hang.

    1. SIGTERM to each child still running, so all of them shut down side by side.
    2. Wait up to ``timeout`` seconds for each in turn; SIGKILL one that is still running.
    """
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
