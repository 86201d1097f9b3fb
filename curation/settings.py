"""Django settings for Winnow, read from the environment.

``DATABASE_URL`` and ``REDIS_URL`` name the servers; when either is unset the
entry points (manage.py, wsgi, the Celery app) start embedded ones first (see
``curation.embedded``), so settings only ever read the variables.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

from curation.embedded import configure_environment

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("WINNOW_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    if key := os.environ.get("WINNOW_SECRET_KEY"):
        return key
    # A key per data dir: sessions survive restarts without the user choosing one.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# With DATABASE_URL / REDIS_URL unset, start (or find) the embedded servers.
if not os.environ.get("WINNOW_SKIP_EMBEDDED"):
    configure_environment()

SECRET_KEY = _secret_key()
DEBUG = _env_bool("WINNOW_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("WINNOW_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("WINNOW_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "curation",
    "pipelines",
    "annotate",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "curation.urls"
WSGI_APPLICATION = "curation.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/winnow"),
        conn_max_age=60,
        conn_health_checks=True,
    )
}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("WINNOW_TEST_DATABASE", "test_winnow")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dataset_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("WINNOW_STATIC_ROOT", DATA_DIR / "static"))
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads stream to disk in the data dir, so a multi-GB file never sits in memory
# and moving it into place is a rename.
UPLOAD_DIR = DATA_DIR / "uploads"
FILE_UPLOAD_TEMP_DIR = UPLOAD_DIR / "tmp"
FILE_UPLOAD_TEMP_DIR.mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]

# Import tuning: records per COPY batch, the longest record accepted, and how long
# a worker's claim on an import lasts without a heartbeat before another may resume it.
WINNOW_IMPORT_BATCH_ROWS = int(os.environ.get("WINNOW_IMPORT_BATCH_ROWS", "5000"))
WINNOW_MAX_RECORD_BYTES = int(os.environ.get("WINNOW_MAX_RECORD_BYTES", str(16 * 1024 * 1024)))
WINNOW_IMPORT_LEASE_SECONDS = float(os.environ.get("WINNOW_IMPORT_LEASE_SECONDS", "60"))
WINNOW_REJECTIONS_KEPT = int(os.environ.get("WINNOW_REJECTIONS_KEPT", "1000"))
# A queued job or batch not started this long after its last message is queued again
# (the message may be lost: a killed worker's, or one Redis dropped in a restart).
WINNOW_REQUEUE_AFTER_SECONDS = float(os.environ.get("WINNOW_REQUEUE_AFTER_SECONDS", "600"))

# Export tuning: rows and characters of text read per chunk (memory is one chunk), and
# the lease of a worker on an export. HF_TOKEN, when set, lets exports push to the Hub.
# Per web process: the most memory of signal columns the explorer keeps for exact counts
# (curation/explorer/columns.py; 9 MB per signal per million documents).
WINNOW_EXPLORER_COLUMNS_MB = int(os.environ.get("WINNOW_EXPLORER_COLUMNS_MB", "512"))
WINNOW_EXPORT_CHUNK_ROWS = int(os.environ.get("WINNOW_EXPORT_CHUNK_ROWS", "5000"))
WINNOW_EXPORT_CHUNK_CHARS = int(os.environ.get("WINNOW_EXPORT_CHUNK_CHARS", str(32 * 1024 * 1024)))
WINNOW_EXPORT_LEASE_SECONDS = float(os.environ.get("WINNOW_EXPORT_LEASE_SECONDS", "60"))
WINNOW_HF_TOKEN = os.environ.get("HF_TOKEN", "")

# Celery: job state lives in PostgreSQL rows, so results are not stored.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Model steps route themselves to "gpu"; everything else runs on "cpu" workers.
CELERY_TASK_ROUTES = {"curation.tasks.*": {"queue": "cpu"}, "pipelines.tasks.*": {"queue": "cpu"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


def celery_transport_options(keyprefix: str) -> dict[str, Any]:
    """The Redis transport's options; ``keyprefix`` (WINNOW_CELERY_KEYPREFIX) puts every
    queue key under a prefix of its own, so that apps (or test sessions) sharing one
    Redis DB never take each other's tasks. Broadcasts (control commands, addressed by
    worker name) still reach every app."""
    options: dict[str, Any] = {"visibility_timeout": 6 * 3600}
    if keyprefix:
        options["global_keyprefix"] = keyprefix
    return options


CELERY_BROKER_TRANSPORT_OPTIONS = celery_transport_options(
    os.environ.get("WINNOW_CELERY_KEYPREFIX", "")
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

LOG_LEVEL = os.environ.get("WINNOW_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "curation": {"level": LOG_LEVEL},
        "pipelines": {"level": LOG_LEVEL},
        "annotate": {"level": LOG_LEVEL},
        "django.request": {"level": "ERROR"},
    },
}

CELERY_BEAT_SCHEDULE = {
    "imports-resume-stale": {"task": "curation.tasks.imports_resume_stale", "schedule": 60.0},
    "runs-resume-stale": {"task": "pipelines.tasks.runs_resume_stale", "schedule": 60.0},
    "exports-resume-stale": {"task": "curation.tasks.exports_resume_stale", "schedule": 60.0},
}

# Modules whose import registers pipeline steps; add your own to plug in custom steps.
WINNOW_STEP_MODULES = [
    m for m in os.environ.get("WINNOW_STEP_MODULES", "pipelines.steps.registry").split(",") if m
]
WINNOW_BATCH_LEASE_SECONDS = float(os.environ.get("WINNOW_BATCH_LEASE_SECONDS", "600"))
