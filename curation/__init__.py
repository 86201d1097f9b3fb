"""Winnow's Django project and core curation domain."""

from curation.celery import app as celery_app

__all__ = ("celery_app",)
