"""python manage.py winnow_answer_signals --project SLUG [--include-agreed]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import AnnotationProject
from annotate.services.answer_signals import answer_signals_write
from curation.errors import PermanentError


class Command(BaseCommand):
    help = (
        "Write an annotation project's final answers as ann_<project>_<question> signals on "
        "its dataset's documents (idempotent: a rerun replaces changed answers and clears "
        "removed ones)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument(
            "--include-agreed",
            action="store_true",
            help="Also items with no final answer whose annotators (at least max(k, 2)) "
            "all gave the same answer.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = AnnotationProject.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(
                f"no annotation project {options['project']!r}: give its slug (see /annotate/)"
            )
        try:
            report = answer_signals_write(project=project, include_agreed=options["include_agreed"])
        except PermanentError as exc:
            raise CommandError(str(exc)) from exc
        for key, count in report.final_answers.items():
            agreed = report.agreed_answers.get(key)
            extra = f", {agreed} unanimous" if agreed is not None else ""
            self.stdout.write(f"{key}: {count} final answer(s){extra}")
        self.stdout.write(
            f"signals {', '.join(report.signals)}: {report.rows_changed} document(s) changed, "
            f"{report.rows_cleared} cleared in {report.seconds:.2f}s"
        )
