"""The Celery app: ``celery -A curation worker -Q cpu`` (and ``-Q gpu`` on GPU hosts).

Tasks route to the ``cpu`` queue unless they say otherwise; GPU steps route to
``gpu`` where a worker runs one process per GPU (``--pool solo``).
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")

app = Celery("winnow")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue with its own exchange and key: sharing the default exchange and key
# would deliver a "gpu" message to the cpu queue's workers too.
app.conf.task_queues = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("cpu", "gpu")
]
app.autodiscover_tasks()
