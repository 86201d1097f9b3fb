"""python manage.py winnow_evalset PATH --name NAME [--fields question,answer] [--id-field id]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.errors import CurationError
from curation.services.evalsets import evalset_import


class Command(BaseCommand):
    help = "Upload an evaluation set (JSONL) for the decontamination step to check against."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--fields", default="question,answer", help="Fields joined into the checked text."
        )
        parser.add_argument("--id-field", default="id")

    def handle(self, *args: Any, **options: Any) -> None:
        fields = tuple(f.strip() for f in options["fields"].split(",") if f.strip())
        try:
            eval_set, rejected = evalset_import(
                name=options["name"],
                path=options["path"],
                fields=fields,
                id_field=options["id_field"],
            )
        except CurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"eval set {eval_set.name!r} (slug {eval_set.slug}): {eval_set.item_count} items, "
            f"{len(rejected)} lines rejected"
        )
        for rejection in rejected[:20]:
            self.stdout.write(f"  {rejection.source}:{rejection.number}: {rejection.reason}")
