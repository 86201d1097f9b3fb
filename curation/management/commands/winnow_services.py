from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from curation import embedded


class Command(BaseCommand):
    help = (
        "Start, stop or show the embedded PostgreSQL and Redis "
        "(used when DATABASE_URL/REDIS_URL are unset)."
    )

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: Any, **options: Any) -> None:
        root = embedded.data_dir()
        if options["action"] == "stop":
            stopped = embedded.stop_services(root)
            self.stdout.write("stopped: " + (", ".join(stopped) or "nothing was running"))
        elif options["action"] == "start":
            services = embedded.start_services(root)
            self.stdout.write(f"DATABASE_URL={services.database_url}")
            self.stdout.write(f"REDIS_URL={services.redis_url}")
        else:
            pg = embedded._postgres_pid(root / "postgres")
            redis = embedded._redis_state(root)
            pg_state = f"running pid {pg}" if pg else "stopped"
            redis_state = "running pid {}".format(redis["pid"]) if redis else "stopped"
            self.stdout.write(f"postgres: {pg_state}")
            self.stdout.write(f"redis: {redis_state}")
