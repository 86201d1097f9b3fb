#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "winnow_services":
        # Managing the embedded servers must not start them first.
        os.environ["WINNOW_SKIP_EMBEDDED"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
