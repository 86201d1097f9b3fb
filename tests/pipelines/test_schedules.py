from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django_celery_beat.models import PeriodicTask

from pipelines.errors import PipelineDefinitionError
from pipelines.models import PipelineRun, PipelineSchedule
from pipelines.selectors import schedule_list
from pipelines.services.runs import run_batch_execute
from pipelines.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_run,
    schedule_set_enabled,
    schedules_after_import,
)
from pipelines.tasks import run_scheduled
from tests.curation.factories import UserFactory, make_dataset
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = pytest.mark.django_db


def test_a_nightly_schedule_is_a_beat_entry_with_a_next_run() -> None:
    pipeline = make_pipeline([{"step": "test_text_length"}])
    dataset = make_dataset()
    schedule = schedule_create(pipeline=pipeline, dataset=dataset, trigger="cron", cron="0 3 * * *")
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "pipelines.tasks.run_scheduled"
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    assert (task.crontab.minute, task.crontab.hour) == ("0", "3")
    (row,) = schedule_list(pipeline=pipeline)
    assert row.next_run is not None and row.next_run.hour == 3 and row.next_run.minute == 0

    schedule_set_enabled(schedule=schedule, enabled=False)
    task.refresh_from_db()
    assert not task.enabled and schedule_list()[0].next_run is None
    schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("cron", ["", "0 3 * *", "99 3 * * *", "a b c d e"])
def test_bad_cron_expressions_are_refused(cron: str) -> None:
    with pytest.raises(PipelineDefinitionError, match="cron"):
        schedule_create(
            pipeline=make_pipeline([{"step": "test_text_length"}]),
            dataset=make_dataset(),
            trigger="cron",
            cron=cron,
        )


def test_the_scheduled_task_starts_one_run_at_a_time(
    django_capture_on_commit_callbacks: Any,
) -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a", "b"])
    schedule = schedule_create(
        pipeline=make_pipeline([{"step": "test_text_length"}]),
        dataset=dataset,
        trigger="cron",
        cron="*/5 * * * *",
    )
    with django_capture_on_commit_callbacks(execute=False):
        run_scheduled(schedule.pk)
        assert schedule_run(schedule=schedule) is None  # the first is still going
    run = PipelineRun.objects.get()
    assert run.trigger == "cron"
    run_batch_execute(batch_id=run.batches.get().pk)
    with django_capture_on_commit_callbacks(execute=False):
        assert schedule_run(schedule=schedule) is not None
    assert PipelineRun.objects.count() == 2


def test_import_schedules_run_after_an_import(django_capture_on_commit_callbacks: Any) -> None:
    dataset, other = make_dataset("one"), make_dataset("two")
    add_documents(dataset, ["a"])
    pipeline = make_pipeline([{"step": "test_text_length"}])
    schedule_create(pipeline=pipeline, dataset=dataset, trigger="import")
    disabled = schedule_create(pipeline=pipeline, dataset=other, trigger="import")
    schedule_set_enabled(schedule=disabled, enabled=False)
    with django_capture_on_commit_callbacks(execute=False):
        runs = schedules_after_import(dataset_id=dataset.pk)
        assert schedules_after_import(dataset_id=other.pk) == []
    assert [r.dataset_id for r in runs] == [dataset.pk]
    assert runs[0].trigger == "import"


def test_schedules_are_added_and_listed_on_the_pipeline_page(client: Client) -> None:
    client.force_login(UserFactory.create())
    pipeline = make_pipeline([{"step": "test_text_length"}])
    dataset = make_dataset("nightly data")
    client.post(
        f"/pipelines/{pipeline.slug}/schedules/",
        {"dataset": dataset.pk, "trigger": "cron", "cron": "30 2 * * *"},
    )
    schedule = PipelineSchedule.objects.get()
    page = client.get(f"/pipelines/{pipeline.slug}/").content.decode()
    assert f'id="schedule-{schedule.pk}"' in page and "30 2 * * *" in page
    assert page.count('id="schedules"') == 1
    assert "<title>p · Winnow</title>" in page
    bad = client.post(
        f"/pipelines/{pipeline.slug}/schedules/",
        {"dataset": dataset.pk, "trigger": "cron", "cron": "nonsense"},
        follow=True,
    )
    assert "five fields" in bad.content.decode()
    assert PipelineSchedule.objects.count() == 1
