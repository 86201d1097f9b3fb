"""Schedules: cron entries in django-celery-beat, or runs triggered by finished imports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from curation.models import Dataset
from pipelines.errors import PipelineDefinitionError
from pipelines.models import Pipeline, PipelineRun, PipelineSchedule
from pipelines.services.runs import run_create, run_dispatch


def cron_validate(expression: str) -> list[str]:
    """The five fields of a cron expression, or PipelineDefinitionError saying what is wrong."""
    from celery.schedules import ParseException, crontab

    fields = expression.split()
    if len(fields) != 5:
        raise PipelineDefinitionError(
            f"cron {expression!r}: give five fields (minute hour day-of-month month "
            'day-of-week), e.g. "0 3 * * *" for 03:00 every day'
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except (ParseException, ValueError) as exc:
        raise PipelineDefinitionError(f"cron {expression!r}: {exc}") from exc
    return fields


def _crontab(expression: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = cron_validate(expression)
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=timezone.get_current_timezone_name(),
    )
    return crontab


@transaction.atomic
def schedule_create(
    *, pipeline: Pipeline, dataset: Dataset, trigger: str, cron: str = ""
) -> PipelineSchedule:
    schedule = PipelineSchedule.objects.create(
        pipeline=pipeline, dataset=dataset, trigger=trigger, cron=cron.strip()
    )
    if trigger == PipelineSchedule.Trigger.CRON:
        schedule.periodic_task = PeriodicTask.objects.create(
            name=f"winnow schedule {schedule.pk}: {pipeline.name} on {dataset.name}",
            task="pipelines.tasks.run_scheduled",
            crontab=_crontab(schedule.cron),
            kwargs=json.dumps({"schedule_id": schedule.pk}),
            queue="cpu",
        )
        schedule.save(update_fields=["periodic_task"])
    elif trigger != PipelineSchedule.Trigger.IMPORT:
        raise PipelineDefinitionError(f"unknown trigger {trigger!r}: use cron or import")
    return schedule


@transaction.atomic
def schedule_set_enabled(*, schedule: PipelineSchedule, enabled: bool) -> PipelineSchedule:
    schedule.enabled = enabled
    schedule.save(update_fields=["enabled"])
    if schedule.periodic_task is not None:
        schedule.periodic_task.enabled = enabled
        schedule.periodic_task.save(update_fields=["enabled"])
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: PipelineSchedule) -> None:
    if schedule.periodic_task is not None:
        schedule.periodic_task.delete()
    schedule.delete()


@transaction.atomic
def schedule_run(*, schedule: PipelineSchedule) -> PipelineRun | None:
    """Start the schedule's run, unless it is disabled or its previous run is still going."""
    locked = PipelineSchedule.objects.select_for_update().get(pk=schedule.pk)
    if not locked.enabled:
        return None
    if locked.last_run is not None and not locked.last_run.is_finished:
        return None
    run = run_create(pipeline=locked.pipeline, dataset=locked.dataset, trigger=str(locked.trigger))
    run_dispatch(run=run)
    locked.last_run = run
    locked.save(update_fields=["last_run"])
    return run


def schedules_after_import(*, dataset_id: int) -> list[PipelineRun]:
    runs = []
    for schedule in PipelineSchedule.objects.filter(
        dataset_id=dataset_id, trigger=PipelineSchedule.Trigger.IMPORT, enabled=True
    ):
        if (run := schedule_run(schedule=schedule)) is not None:
            runs.append(run)
    return runs


def schedule_next_run(schedule: PipelineSchedule) -> datetime | None:
    """When beat will next start the schedule (cron schedules only)."""
    task = schedule.periodic_task
    if task is None or not schedule.enabled or task.crontab is None:
        return None
    now = timezone.now()
    estimate = now + task.crontab.schedule.remaining_estimate(task.last_run_at or now)
    # Celery reads its own clock inside remaining_estimate: round off the difference.
    return (estimate + timedelta(milliseconds=500)).replace(microsecond=0)
