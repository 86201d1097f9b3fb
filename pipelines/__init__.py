"""Pipelines: steps (pure computation), pipeline definitions, runs and their Celery tasks."""
