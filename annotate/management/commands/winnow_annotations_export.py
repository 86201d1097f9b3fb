"""python manage.py winnow_annotations_export --project SLUG --out FILE"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import AnnotationProject
from annotate.services.annotation_export import annotation_export_lines, annotation_export_write


class Command(BaseCommand):
    help = (
        "Export an annotation project's annotations as JSON lines, one per item: its "
        "document ids, each annotator's submitted answers and time spent, the final answers "
        "with source and reviewer, and the suggestions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--out", required=True, help="The file to write; - for stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = AnnotationProject.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(
                f"no annotation project {options['project']!r}: give its slug (see /annotate/)"
            )
        if options["out"] == "-":
            for line in annotation_export_lines(project=project):
                sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            return
        path = Path(options["out"]).resolve()
        if not path.parent.is_dir():
            raise CommandError(f"{path.parent} is not a folder: create it first")
        try:
            count = annotation_export_write(project=project, path=path)
        except OSError as exc:
            raise CommandError(f"could not write {path} ({exc}): check the path and disk") from exc
        self.stdout.write(f"{count} item(s) of {project.slug} written to {path}")
