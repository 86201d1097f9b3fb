"""python manage.py winnow_export --dataset NAME [--recipe NAME [--version N]] --out DIR"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from curation.errors import CurationError
from curation.export_selectors import dataset_signal_names
from curation.models import Dataset, ExportSnapshot, RecipeVersion
from curation.services.exports import ExportOptions, export_create, export_run
from curation.services.exports.hub import hub_push_enabled
from curation.services.exports.options import (
    BASE_COLUMNS,
    JSONL_COMPRESSIONS,
    MB,
    PARQUET_COMPRESSIONS,
)
from curation.services.signals import ANNOTATION_SIGNAL_PREFIX


class Command(BaseCommand):
    help = (
        "Export a dataset (every document, or what a recipe version keeps) to a new folder of "
        "Parquet or JSON-lines shards with a dataset card that `datasets.load_dataset` reads."
    )

    def add_base_argument(self, parser: CommandParser, *args: Any, **kwargs: Any) -> None:
        if "--version" in args:  # here --version N picks the recipe version
            return
        super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="Dataset name.")
        parser.add_argument("--recipe", default="", help="Recipe name: export what it keeps.")
        parser.add_argument("--version", type=int, default=None, help="Default: the latest.")
        parser.add_argument("--out", type=Path, required=True, help="A new (or empty) folder.")
        parser.add_argument("--format", default="parquet", choices=["parquet", "jsonl"])
        parser.add_argument(
            "--compression",
            default="",
            choices=["", *dict.fromkeys(PARQUET_COMPRESSIONS + JSONL_COMPRESSIONS)],
            help="Parquet: zstd (default), snappy, none; JSONL: gzip (default), none.",
        )
        parser.add_argument(
            "--columns", default=",".join(BASE_COLUMNS), help="Of id,text,meta (comma-separated)."
        )
        parser.add_argument("--signals", default="", help="Signal names to add as columns.")
        parser.add_argument(
            "--with-signals",
            action="store_true",
            help="Every signal with values in the dataset, and a duplicate group id per method.",
        )
        parser.add_argument(
            "--with-annotations",
            action="store_true",
            help="The final answers of annotation projects on the dataset (its ann_* signals).",
        )
        parser.add_argument("--redact-pii", action="store_true")
        parser.add_argument("--shard-rows", type=int, default=100_000)
        parser.add_argument("--shard-mb", type=int, default=256, help="Byte cap per shard, MiB.")
        parser.add_argument("--license", default="", help='License in the card (default "other").')
        parser.add_argument("--push-to-hub", default="", metavar="REPO", help="Needs HF_TOKEN.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset named {options['dataset']!r}")
        if options["push_to_hub"] and not hub_push_enabled():
            raise CommandError("--push-to-hub needs HF_TOKEN (a write token) in the environment")
        signals = [s for s in options["signals"].split(",") if s]
        wanted = options["with_signals"] or options["with_annotations"]
        present = dataset_signal_names(dataset=dataset) if wanted else []
        if options["with_signals"]:
            signals += present
        if options["with_annotations"]:
            answers = [s for s in present if s.startswith(ANNOTATION_SIGNAL_PREFIX)]
            if not answers:
                raise CommandError(
                    f"{dataset.name} has no annotation answers as signals yet: run "
                    "`python manage.py winnow_answer_signals --project SLUG` first"
                )
            signals += answers
        export_options = ExportOptions(
            columns=tuple(c for c in options["columns"].split(",") if c),
            signals=tuple(dict.fromkeys(signals)),
            dedup_groups=options["with_signals"],
            redact_pii=options["redact_pii"],
            shard_rows=options["shard_rows"],
            shard_bytes=options["shard_mb"] * MB,
            compression=options["compression"],
            license=options["license"],
            hub_repo=options["push_to_hub"],
        )
        try:
            snapshot = export_create(
                dataset=dataset,
                fmt=options["format"],
                options=export_options,
                recipe_version=self._version(dataset, options["recipe"], options["version"]),
                path=options["out"],
            )
        except CurationError as exc:
            raise CommandError(str(exc)) from exc
        runner = threading.Thread(target=self._run, args=(snapshot.pk,))
        runner.start()
        snapshot = self._follow(snapshot, runner, quiet=options["no_progress"])
        runner.join()
        snapshot.refresh_from_db()
        if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
            why = snapshot.error or "it stopped with an unexpected error (printed above)"
            raise CommandError(f"export {snapshot.pk} failed: {why}")
        self.stdout.write(
            f"export {snapshot.pk}: {snapshot.rows_done} rows in {len(snapshot.files) - 1} "
            f"file(s), {snapshot.bytes_written:,} bytes, at {snapshot.path}"
        )
        if snapshot.error:
            self.stderr.write(snapshot.error)

    @staticmethod
    def _run(snapshot_id: int) -> None:
        try:
            export_run(snapshot_id=snapshot_id)
        finally:
            connection.close()

    def _version(self, dataset: Dataset, recipe: str, number: int | None) -> RecipeVersion | None:
        if not recipe:
            if number is not None:
                raise CommandError("--version needs --recipe")
            return None
        versions = RecipeVersion.objects.filter(recipe__dataset=dataset).filter(
            recipe__name=recipe
        ) | RecipeVersion.objects.filter(recipe__dataset=dataset, recipe__slug=recipe)
        if number is not None:
            versions = versions.filter(version=number)
        version = versions.select_related("recipe").order_by("-version").first()
        if version is None:
            which = f"version {number} of " if number is not None else "a saved version of "
            raise CommandError(f"{dataset.name} has no {which}recipe {recipe!r}")
        return version

    def _follow(
        self, snapshot: ExportSnapshot, runner: threading.Thread, *, quiet: bool
    ) -> ExportSnapshot:
        bar: tqdm[Any] = tqdm(unit=" rows", disable=quiet, file=self.stderr, smoothing=0.1)
        seen = 0
        while True:
            snapshot.refresh_from_db()
            bar.total = snapshot.rows_total or None
            bar.update(snapshot.rows_done - seen)
            seen = snapshot.rows_done
            if not runner.is_alive() or snapshot.status in (
                ExportSnapshot.Status.SUCCEEDED,
                ExportSnapshot.Status.FAILED,
            ):
                bar.close()
                return snapshot
            time.sleep(0.3)
