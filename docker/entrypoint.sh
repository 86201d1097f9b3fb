#!/bin/sh
# Winnow container entry point. The first argument picks the process:
#
#   web         apply migrations, then gunicorn on $WINNOW_BIND (default 0.0.0.0:8000)
#   worker      Celery worker for the cpu queue
#   gpu-worker  Celery worker for the gpu queue: one process (--pool solo), one GPU
#   beat        Celery beat (DatabaseScheduler); run exactly one across all hosts
#   migrate     apply migrations and exit
#   manage ...  python manage.py ...
#   anything else is exec'd as is (e.g. `python manage.py createsuperuser`, `sh`)
#
# Extra arguments after web/worker/gpu-worker/beat are appended to that command,
# e.g. `worker --concurrency 8`. Settings come from the environment: see
# curation/settings.py. With DATABASE_URL/REDIS_URL unset the app starts embedded
# PostgreSQL/Redis under $WINNOW_DATA_DIR (a one-container demo only).
#
# Tuning variables:
#   WINNOW_BIND                 gunicorn address              (0.0.0.0:8000)
#   WINNOW_WEB_WORKERS          gunicorn worker processes     ($WEB_CONCURRENCY or 2)
#   WINNOW_WEB_THREADS          threads per gunicorn worker   (4)
#   WINNOW_WEB_TIMEOUT          gunicorn request timeout, s   (600: large uploads)
#   WINNOW_MIGRATE_ON_START     web applies migrations first  (1)
#   WINNOW_WORKER_QUEUES        queues of `worker`            (cpu)
#   WINNOW_WORKER_CONCURRENCY   processes of `worker`         (Celery's default: CPU count)
#   WINNOW_MIGRATE_WAIT         seconds workers and beat wait for the schema (300; 0: don't)
#   WINNOW_LOG_LEVEL            Celery log level              (INFO)
set -eu

APP_DIR="${WINNOW_APP_DIR:-/app}"
cd "$APP_DIR"
LOG_LEVEL="${WINNOW_LOG_LEVEL:-INFO}"

manage() {
    python "$APP_DIR/manage.py" "$@"
}

# Apply migrations under a PostgreSQL advisory lock, so web replicas that start
# together migrate one at a time instead of racing on the same DDL.
migrate() {
    python - <<'PY'
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curation.settings")
django.setup()

from django.core.management import call_command
from django.db import connection

LOCK_ID = 0x57494E4E4F57  # "WINNOW"
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_ID])
        try:
            call_command("migrate", interactive=False)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])
else:
    call_command("migrate", interactive=False)
PY
}

# Workers and beat need the schema (beat's DatabaseScheduler reads its tables at
# start): wait until `web` or `migrate` has applied every migration.
wait_for_migrations() {
    limit="${WINNOW_MIGRATE_WAIT:-300}"
    [ "$limit" -gt 0 ] || return 0
    start=$(date +%s)
    until manage migrate --check >/dev/null 2>&1; do
        if [ $(($(date +%s) - start)) -ge "$limit" ]; then
            echo "entrypoint: migrations still unapplied after ${limit}s; the plan:" >&2
            manage migrate --plan >&2 || true
            exit 1
        fi
        echo "entrypoint: waiting for migrations (run 'migrate' or start 'web')" >&2
        sleep 3
    done
}

command="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$command" in
web)
    if [ "${WINNOW_MIGRATE_ON_START:-1}" = 1 ]; then
        migrate
    fi
    # The image ships collected static files; a fresh bind mount on the data dir hides them.
    if [ ! -d "${WINNOW_DATA_DIR:-$APP_DIR/var}/static" ]; then
        manage collectstatic --noinput -v 0
    fi
    exec gunicorn curation.wsgi \
        --bind "${WINNOW_BIND:-0.0.0.0:8000}" \
        --workers "${WINNOW_WEB_WORKERS:-${WEB_CONCURRENCY:-2}}" \
        --threads "${WINNOW_WEB_THREADS:-4}" \
        --timeout "${WINNOW_WEB_TIMEOUT:-600}" \
        --worker-tmp-dir /dev/shm \
        --access-logfile - \
        "$@"
    ;;
worker)
    wait_for_migrations
    exec celery -A curation worker \
        -Q "${WINNOW_WORKER_QUEUES:-cpu}" \
        -n "cpu@%h" \
        --loglevel "$LOG_LEVEL" \
        ${WINNOW_WORKER_CONCURRENCY:+--concurrency "$WINNOW_WORKER_CONCURRENCY"} \
        "$@"
    ;;
gpu-worker)
    wait_for_migrations
    exec celery -A curation worker -Q gpu --pool solo --concurrency 1 \
        -n "gpu@%h" \
        --loglevel "$LOG_LEVEL" \
        "$@"
    ;;
beat)
    wait_for_migrations
    exec celery -A curation beat --loglevel "$LOG_LEVEL" "$@"
    ;;
migrate)
    migrate
    ;;
manage)
    exec python "$APP_DIR/manage.py" "$@"
    ;;
*)
    exec "$command" "$@"
    ;;
esac
