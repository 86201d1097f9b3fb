"""python manage.py winnow_import PATH --dataset NAME [--text-field text] [--id-field id]"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from curation.errors import CurationError
from curation.models import ImportJob
from curation.services.datasets import dataset_get_or_create
from curation.services.imports import import_job_create, import_job_dispatch, import_job_run
from curation.services.readers import FORMATS
from curation.workers import workers_online


class Command(BaseCommand):
    help = (
        "Import a JSONL (.gz/.zst), CSV, Parquet file, a saved Hugging Face dataset or a "
        "directory of them into a dataset, streaming, with a progress bar and a report of "
        "rejected rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--dataset", required=True, help="Dataset name (created if missing).")
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--id-field", default="", help="Blank: ids are file:line.")
        parser.add_argument("--format", default="", choices=["", *FORMATS])
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Import in this process instead of on a worker (default when none is running).",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset, created = dataset_get_or_create(name=options["dataset"])
        if created:
            self.stderr.write(f"created dataset {dataset.name!r}")
        try:
            job = import_job_create(
                dataset=dataset,
                path=options["path"],
                origin=ImportJob.Origin.CLI,
                text_field=options["text_field"],
                id_field=options["id_field"],
                fmt=options["format"],
            )
        except CurationError as exc:
            raise CommandError(str(exc)) from exc
        inline = options["inline"] or not workers_online()
        if inline:
            if not options["inline"]:
                self.stderr.write("no worker answered; importing in this process")
            runner = threading.Thread(target=import_job_run, kwargs={"job_id": job.pk})
            runner.start()
        else:
            import_job_dispatch(job=job)
            self.stderr.write(f"import {job.pk} queued on a worker")
        job = self._follow(job, quiet=options["no_progress"])
        if inline:
            runner.join()
            job.refresh_from_db()
        self._report(job)

    def _follow(self, job: ImportJob, *, quiet: bool) -> ImportJob:
        bar: tqdm[Any] = tqdm(unit=" rows", disable=quiet, file=self.stderr, smoothing=0.1)
        seen = 0
        while True:
            job.refresh_from_db()
            bar.update(job.rows_read - seen)
            seen = job.rows_read
            bar.set_postfix(imported=job.rows_imported, rejected=job.rows_rejected)
            if job.is_finished:
                bar.close()
                return job
            time.sleep(0.5)

    def _report(self, job: ImportJob) -> None:
        rate = job.rows_per_second
        self.stdout.write(
            f"import {job.pk}: {job.status}: {job.rows_read} rows read, {job.rows_imported} "
            f"imported, {job.rows_rejected} rejected" + (f", {rate:,.0f} rows/s" if rate else "")
        )
        for kind, count in sorted(job.rejection_counts.items()):
            self.stdout.write(f"  {count:>8}  {kind}")
        for rejection in job.rejections.order_by("source", "number")[:20]:
            self.stdout.write(f"  {rejection.source}:{rejection.number}: {rejection.reason}")
        if job.rows_rejected > 20:
            self.stdout.write(
                f"  ... full report: /imports/{job.pk}/rejections.csv "
                f"or /api/imports/{job.pk}/rejections"
            )
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.error)
