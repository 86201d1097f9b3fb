"""A run survives its broker restarting mid-run with every queued message lost."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from curation.embedded import redis_server_path
from curation.models import Signal
from pipelines.models import PipelineRun, RunBatch
from pipelines.services.runs import run_create, run_dispatch, runs_resume_stale
from tests.conftest import wait_for
from tests.curation.factories import make_dataset
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class PrivateRedis:
    """A redis-server of the test's own, without persistence: a restart drops every message."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(redis_server_path()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path, settings: Any) -> Iterator[PrivateRedis]:
    from curation.celery import app

    redis = PrivateRedis(tmp_path)
    old = app.conf.broker_url
    app.conf.broker_url = settings.CELERY_BROKER_URL = redis.url
    app._after_fork()  # drop pooled connections to the old broker
    yield redis
    app.conf.broker_url = settings.CELERY_BROKER_URL = old
    app._after_fork()
    redis.stop()


def test_a_run_finishes_after_redis_restarts_and_loses_its_queue(
    start_worker: Any, private_redis: PrivateRedis, settings: Any
) -> None:
    settings.WINNOW_REQUEUE_AFTER_SECONDS = 3
    start_worker(
        {
            "REDIS_URL": private_redis.url,
            "WINNOW_STEP_MODULES": ",".join(settings.WINNOW_STEP_MODULES),
        }
    )
    dataset = make_dataset()
    ids = add_documents(dataset, [f"doc {i}" for i in range(150)])
    pipeline = make_pipeline([{"step": "test_slow", "params": {"seconds": 0.03}}])
    run = run_create(pipeline=pipeline, dataset=dataset)
    run_dispatch(run=run)
    wait_for(lambda: run.batches.filter(status=RunBatch.Status.DONE).count() >= 3, interval=0.05)

    private_redis.stop()  # every queued message is gone with it
    private_redis.start()
    assert run.batches.filter(status=RunBatch.Status.PENDING).exists()

    def finished() -> bool:
        runs_resume_stale()  # what beat runs every minute
        return PipelineRun.objects.get(pk=run.pk).is_finished

    wait_for(finished, timeout=120, interval=1)
    assert PipelineRun.objects.get(pk=run.pk).status == PipelineRun.Status.SUCCEEDED
    column = Signal.objects.get(name="test_slow_id").column_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT document_id), bool_and({column} = document_id) "
            "FROM curation_signal_row WHERE dataset_id = %s",
            [dataset.pk],
        )
        assert cursor.fetchone() == (len(ids), len(ids), True)
