"""Shared fixtures: real PostgreSQL (pytest-django's test database), real Redis, real workers,
headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls made
# beside it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent

# This session's Celery keys and broadcasts under a prefix of its own (the workers it
# starts inherit it): test sessions sharing a Redis DB never take each other's tasks.
CELERY_KEYPREFIX = os.environ.setdefault(
    "WINNOW_CELERY_KEYPREFIX", f"winnow-test-{uuid.uuid4().hex[:8]}:"
)


@pytest.fixture(autouse=True, scope="session")
def _celery_keyprefix() -> None:
    """Settings were read before this file: give this process's Celery app the prefix too."""
    from curation.celery import app
    from curation.settings import celery_transport_options

    app.conf.broker_transport_options = celery_transport_options(CELERY_KEYPREFIX)


def database_url(params: dict[str, Any]) -> str:
    """A DATABASE_URL for the connection settings Django is using now (the test database)."""
    user = params.get("USER") or "postgres"
    host = params.get("HOST") or params.get("OPTIONS", {}).get("host") or "127.0.0.1"
    name = params["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}@{quote(host, safe='')}/{name}"
    port = params.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{name}"


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
        self.proc = proc
        self.name = name
        self.log = log

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost host would: no cleanup runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        from curation.workers import stop_children

        stop_children([self.proc])

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(autouse=True)
def _data_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> Path:
    """A fresh data directory per test (vectors, indexes), seen by the workers it starts too.

    Test databases reuse document ids across sessions: files keyed by dataset id
    must not outlive the test that wrote them.
    """
    path = tmp_path_factory.mktemp("data")
    settings.DATA_DIR = path
    monkeypatch.setenv("WINNOW_DATA_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _explorer_columns() -> Iterator[None]:
    """The explorer's column reads a test starts end before its database is flushed, and
    no test sees the columns another kept (``curation/explorer/columns.py``)."""
    from curation.explorer import columns

    columns.clear()
    yield
    columns.wait()
    columns.clear()


@pytest.fixture
def start_worker(
    transactional_db: None, settings: Any, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real Celery worker processes on the test database; all are stopped afterwards."""
    from django.db import connection

    from curation.celery import app

    started: list[WorkerProcess] = []

    def start(extra_env: dict[str, str] | None = None, queues: str = "cpu,gpu") -> WorkerProcess:
        name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        log = tmp_path / f"{name}.log"
        env = dict(os.environ)
        env["DATABASE_URL"] = database_url(connection.settings_dict)
        env["REDIS_URL"] = settings.CELERY_BROKER_URL
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra_env or {})
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "curation",
                "worker",
                "-Q",
                queues,
                "--pool",
                "solo",
                "-n",
                name,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(proc, name, log)
        started.append(worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{worker.output()}")
            if app.control.ping(destination=[name], timeout=0.5):
                return worker
        raise RuntimeError(f"worker did not answer within 60 s:\n{worker.output()}")

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 60, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make chromium` (apt-get install chromium) installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context()
        context.set_default_timeout(30_000)
        yield context.new_page()
        context.close()
        browser.close()
