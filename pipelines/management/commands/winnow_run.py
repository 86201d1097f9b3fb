"""python manage.py winnow_run PIPELINE --dataset NAME [--inline]"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from curation.errors import CurationError
from curation.models import Dataset
from curation.workers import workers_online
from pipelines.models import Pipeline, PipelineRun, RunBatch
from pipelines.selectors import run_failures
from pipelines.services.runs import run_batch_execute, run_create, run_dispatch


class Command(BaseCommand):
    help = "Run a pipeline over a dataset on the workers, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pipeline", help="Pipeline name or slug.")
        parser.add_argument("--dataset", required=True, help="Dataset name or slug.")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Run the batches in this process (default when no worker answers).",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        pipeline = Pipeline.objects.filter(name=options["pipeline"]).first() or (
            Pipeline.objects.filter(slug=options["pipeline"]).first()
        )
        if pipeline is None:
            names = ", ".join(Pipeline.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no pipeline {options['pipeline']!r}; pipelines: {names}")
        dataset = Dataset.objects.filter(name=options["dataset"]).first() or (
            Dataset.objects.filter(slug=options["dataset"]).first()
        )
        if dataset is None:
            raise CommandError(f"no dataset {options['dataset']!r}")
        try:
            run = run_create(pipeline=pipeline, dataset=dataset, trigger="cli")
        except CurationError as exc:
            raise CommandError(str(exc)) from exc
        inline = options["inline"] or not workers_online()
        total = run.batches.count()
        bar: tqdm[Any] = tqdm(
            total=total, unit=" batches", disable=options["no_progress"], file=self.stderr
        )
        if inline:
            if not options["inline"]:
                self.stderr.write("no worker answered; running in this process")
            for batch_id in run.batches.order_by("stage_index", "first_document_id").values_list(
                "pk", flat=True
            ):
                run_batch_execute(batch_id=batch_id)
                bar.update(1)
        else:
            run_dispatch(run=run)
            self.stderr.write(f"run {run.pk} queued ({total} batches)")
            seen = 0
            while not run.is_finished:
                time.sleep(0.5)
                run.refresh_from_db()
                done = run.batches.exclude(
                    status__in=[RunBatch.Status.PENDING, RunBatch.Status.RUNNING]
                ).count()
                bar.update(done - seen)
                seen = done
        bar.close()
        run.refresh_from_db()
        self.stdout.write(f"run {run.pk}: {run.status}")
        for batch in run_failures(run=run):
            self.stdout.write(
                f"  step {(batch.failed_step_index or 0) + 1} documents {batch.first_document_id}-"
                f"{batch.last_document_id} failed on document {batch.failed_document_id}:"
                f" {batch.error.strip().splitlines()[-1] if batch.error else ''}"
            )
        if run.status != PipelineRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
