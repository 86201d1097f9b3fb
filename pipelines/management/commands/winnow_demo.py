"""python manage.py winnow_demo: the whole app on one machine, until Ctrl-C.

Migrates, creates an admin user (printing its password once), imports the
sample dataset if it is missing, runs a Celery worker and the web server as
child processes, and queues the "web-quality" pipeline on the sample dataset
the first time. Ctrl-C (or SIGTERM) stops the children, then the embedded
PostgreSQL and Redis if this run's configuration uses them. Data stays in
WINNOW_DATA_DIR, so the next run starts where this one stopped.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from curation import embedded
from curation.models import Dataset, ImportJob
from curation.sample_data import build_sample
from curation.services.datasets import dataset_create
from curation.services.imports import import_from_path
from curation.workers import stop_children
from pipelines.models import Pipeline
from pipelines.services.runs import run_create, run_dispatch

SAMPLE_DATASET = "Python docs sample"
DEMO_PIPELINE = "web-quality"


class Command(BaseCommand):
    help = "Run Winnow with its sample data: migrate, seed, worker, web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("WINNOW_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("WINNOW_PORT", "8000")))

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_admin()
        self._ensure_sample()
        children = self._start_children(options["host"], options["port"])
        url = f"http://{options['host']}:{options['port']}/"
        self._wait_until_up(url, children)
        self._queue_first_run(url)
        self.stdout.write(self.style.SUCCESS(f"Winnow is running at {url}  (Ctrl-C stops it)"))
        self.stdout.flush()
        stopping = False

        def _stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
        stop_children(children)
        ours = tuple(n for n in os.environ.get("WINNOW_EMBEDDED", "").split(",") if n)
        if ours:
            # Close our own connections first so PostgreSQL's fast shutdown is quick.
            from django.db import connections

            connections.close_all()
            stopped = embedded.stop_services(names=ours)
            self.stdout.write(f"stopped embedded {', '.join(stopped) or 'services'}")
        self.stdout.write("Winnow stopped; data kept in " + str(settings.DATA_DIR))

    def _ensure_admin(self) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", "admin@localhost", password)
        self.stdout.write(
            self.style.WARNING(f"admin user: admin  password: {password}  (shown once)")
        )

    def _ensure_sample(self) -> None:
        dataset = Dataset.objects.filter(name=SAMPLE_DATASET).first()
        if (
            dataset is not None
            and dataset.imports.filter(status=ImportJob.Status.SUCCEEDED).exists()
        ):
            return
        if dataset is None:
            dataset = dataset_create(
                name=SAMPLE_DATASET,
                description="Docstrings of the Python standard library and Django, with "
                "recorded noise: duplicates, near duplicates, boilerplate, markup, other "
                "languages, very short and very long documents.",
                source="built offline by curation.sample_data",
            )
        path = Path(settings.DATA_DIR) / "sample" / "python-docs.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = build_sample(path)
        job = import_from_path(
            dataset=dataset, path=path, id_field="id", origin=ImportJob.Origin.SAMPLE
        )
        self.stdout.write(
            f"sample dataset: {job.rows_imported} documents imported ({manifest.size} built)"
        )

    def _queue_first_run(self, url: str) -> None:
        dataset = Dataset.objects.get(name=SAMPLE_DATASET)
        pipeline = Pipeline.objects.filter(name=DEMO_PIPELINE).first()
        if pipeline is None or dataset.pipeline_runs.filter(pipeline=pipeline).exists():
            return
        run = run_create(pipeline=pipeline, dataset=dataset, trigger="demo")
        run_dispatch(run=run)
        self.stdout.write(f"{DEMO_PIPELINE} pipeline queued on the sample: {url}runs/{run.pk}/")

    def _start_children(self, host: str, port: int) -> list[subprocess.Popen[bytes]]:
        env = dict(os.environ)
        python = sys.executable
        worker = subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "curation",
                "worker",
                "-Q",
                "cpu,gpu",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                f"demo@{os.uname().nodename}",
            ],
            env=env,
        )
        web = subprocess.Popen(
            [
                python,
                "-m",
                "gunicorn",
                "curation.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "600",
                "--access-logfile",
                "-",
            ],
            env=env,
        )
        return [worker, web]

    def _wait_until_up(self, url: str, children: list[subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(child.poll() is not None for child in children):
                stop_children(children)
                raise SystemExit("a child process exited at start: see its log above")
            try:
                with urllib.request.urlopen(url + "login/", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        stop_children(children)
        raise SystemExit(f"the web server did not answer at {url} within 60 s")
