from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from pipelines.models import PipelineRun
from pipelines.services.runs import run_batch_execute, run_create
from tests.curation.factories import UserFactory, make_dataset
from tests.pipelines.factories import add_documents, make_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def test_pipeline_pages_list_and_start_a_run(
    user_client: Client, django_capture_on_commit_callbacks: object
) -> None:
    pipeline = make_pipeline([{"step": "test_text_length"}], name="Quality")
    dataset = make_dataset("docs")
    add_documents(dataset, ["one", "two"])
    assert "Quality" in user_client.get("/pipelines/").content.decode()
    page = user_client.get(f"/pipelines/{pipeline.slug}/?dataset={dataset.pk}").content.decode()
    assert "test_text_length" in page and "Start run" in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # type: ignore[operator]
        response = user_client.post(f"/pipelines/{pipeline.slug}/", {"dataset": dataset.pk})
    run = PipelineRun.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert len(callbacks) == 1


def test_run_page_polls_until_the_run_finishes(user_client: Client) -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a", "BOOM"])
    run = run_create(pipeline=make_pipeline([{"step": "test_explode"}]), dataset=dataset)
    polling = user_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert polling.status_code == 200 and 'hx-trigger="every 1s"' in polling.content.decode()
    run_batch_execute(batch_id=run.batches.get().pk)
    final = user_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert final.status_code == 286
    body = final.content.decode()
    assert "Failed" in body and "cannot handle document" in body and "fails on" in body


def test_run_actions_cancel_and_unknown(user_client: Client) -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a"])
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    assert user_client.post(f"/runs/{run.pk}/explode/").status_code == 404
    assert user_client.get(f"/runs/{run.pk}/cancel/").status_code == 405
    user_client.post(f"/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.CANCELLED


def test_dataset_runs_fragment_lists_runs(user_client: Client) -> None:
    dataset = make_dataset()
    add_documents(dataset, ["a"])
    run = run_create(pipeline=make_pipeline([{"step": "test_text_length"}]), dataset=dataset)
    fragment = user_client.get(f"/datasets/{dataset.pk}/runs/", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert f'id="run-{run.pk}"' in body and "<html" not in body


@pytest.mark.django_db(transaction=True)
def test_cli_runs_a_pipeline_inline_and_reports_failures() -> None:
    dataset = make_dataset("cli-data")
    add_documents(dataset, ["fine", "BOOM here"])
    make_pipeline([{"step": "test_explode"}], name="exploding")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="failed"):
        call_command(
            "winnow_run",
            "exploding",
            "--dataset",
            "cli-data",
            "--inline",
            "--no-progress",
            stdout=out,
            stderr=err,
        )
    assert "failed on document" in out.getvalue()
    with pytest.raises(CommandError, match="no pipeline 'nope'"):
        call_command("winnow_run", "nope", "--dataset", "cli-data")


def test_the_pipeline_is_edited_in_the_browser_with_validation(user_client: Client) -> None:
    pipeline = make_pipeline([{"step": "test_text_length"}], name="Editable")
    page = user_client.get(f"/pipelines/{pipeline.slug}/edit/").content.decode()
    assert 'id="step-test_text_length"' in page and "multiplies the length" in page

    bad = user_client.post(
        f"/pipelines/{pipeline.slug}/edit/",
        {"description": "", "batch_size": 10, "definition": '[{"step": "nope"}]'},
    )
    assert "no step named" in bad.content.decode()
    saved = user_client.post(
        f"/pipelines/{pipeline.slug}/edit/",
        {
            "description": "now scaled",
            "batch_size": 500,
            "definition": '[{"step": "test_text_length", "params": {"scale": 3}}]',
        },
    )
    assert saved.status_code == 302
    pipeline.refresh_from_db()
    assert (pipeline.version, pipeline.batch_size, pipeline.description) == (2, 500, "now scaled")
    assert pipeline.definition == [{"step": "test_text_length", "params": {"scale": 3.0}}]
