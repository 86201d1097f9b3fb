"""The generator preview page: curators only, results escaped, errors named, in a browser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from curation.models import Dataset
from pipelines.models import GenerationPreview
from pipelines.services.previews import preview_execute
from tests.curation.factories import UserFactory, make_dataset
from tests.pipelines.factories import add_documents
from tests.pipelines.scripted_backend import ScriptedBackend  # noqa: F401  (registers it)

SCRIPTED = '{"backend": "scripted", "model": "scripted-1"}'
XSS = "<script>alert('pwned')</script> Owls hunt at night"


def curator() -> Any:
    user = UserFactory.create(username="curator")
    user.user_permissions.add(Permission.objects.get(codename="change_pipeline"))
    return user


def seeds() -> Dataset:
    dataset = make_dataset(name="seeds")
    add_documents(dataset, [XSS, "MALFORMED text", "Lyon trains leave at nine", "unused"])
    return dataset


def form(dataset: Dataset, **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset.slug, "step": "synth_qa", "backend": SCRIPTED, "n": 3, **extra}


@pytest.mark.django_db
def test_the_preview_is_for_curators_and_staff_only(client: Client) -> None:
    url = reverse("generation_preview")
    dataset = seeds()
    assert client.get(url).status_code == 302
    client.force_login(UserFactory.create(username="annotator"))
    assert client.get(url).status_code == 403
    assert client.post(url, form(dataset)).status_code == 403
    client.force_login(UserFactory.create(username="staff", is_staff=True))
    assert client.get(url).status_code == 200
    client.force_login(curator())
    assert client.get(url).status_code == 200
    assert b'id="preview-link"' in client.get(reverse("pipeline_list")).content


def previewed(client: Client, data: dict[str, Any], queue: str = "gpu") -> str:
    """Post the form as htmx does, run the queued preview as a worker would, poll once."""
    page = client.post(reverse("generation_preview"), data, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    preview = GenerationPreview.objects.get()
    # The GPU queue for a model in the worker (the scripted one counts), else the CPU's.
    assert preview.status == "queued" and preview.queue == queue
    polling = reverse("generation_preview_result", args=[preview.token])
    assert f'hx-get="{polling}"' in page.content.decode()
    assert preview_execute(preview_id=preview.pk) is not None
    assert preview_execute(preview_id=preview.pk) is None  # done: nothing to claim
    result = client.get(polling, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-get" not in result  # finished: the polling stops
    return result


@pytest.mark.django_db
def test_a_preview_shows_prompts_records_and_failures_escaped(client: Client) -> None:
    dataset = seeds()
    client.force_login(curator())
    page = previewed(client, form(dataset, params='{"per_document": 2}'))
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)" in page
    assert "What about &lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;?" in page
    assert "2 record(s), 0 failed" in page and "0 record(s), 1 failed" in page
    assert "What about Lyon?" in page and "unused" not in page
    spec = page[page.index('id="preview-spec"') :]  # the step spec to paste into a pipeline
    assert "&quot;per_document&quot;: 2" in spec[: spec.index("</pre>")]
    assert 'id="add-step-form"' in page
    assert Dataset.objects.count() == 1  # nothing written


@pytest.mark.django_db
def test_a_preview_belongs_to_its_user_and_a_plain_post_lands_on_its_page(client: Client) -> None:
    dataset = seeds()
    client.force_login(curator())
    response = client.post(reverse("generation_preview"), form(dataset))
    preview = GenerationPreview.objects.get()
    assert response["Location"] == f"{reverse('generation_preview')}?preview={preview.token}"
    page = client.get(response["Location"]).content.decode()
    assert 'id="preview-status"' in page and "Queued on the <code>gpu</code> workers" in page
    preview_execute(preview_id=preview.pk)
    assert "What about Lyon?" in client.get(response["Location"]).content.decode()
    client.force_login(UserFactory.create(username="other", is_staff=True))
    assert client.get(response["Location"]).status_code == 404
    url = reverse("generation_preview_result", args=[preview.token])
    assert client.get(url).status_code == 404
    assert client.get(reverse("generation_preview_result", args=["not-a-uuid"])).status_code == 404


@pytest.mark.django_db
def test_a_preview_whose_message_was_lost_is_sent_again_once_when_polled(
    client: Client,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from pipelines import tasks

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        tasks.generation_preview, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    dataset = seeds()
    client.force_login(curator())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("generation_preview"), form(dataset), HTTP_HX_REQUEST="true")
    preview = GenerationPreview.objects.get()
    assert sent == [((preview.pk,), "gpu")]
    url = reverse("generation_preview_result", args=[preview.token])
    client.get(url, HTTP_HX_REQUEST="true")
    assert len(sent) == 1  # not stale yet
    old = timezone.now() - timedelta(seconds=settings.WINNOW_REQUEUE_AFTER_SECONDS + 1)
    GenerationPreview.objects.filter(pk=preview.pk).update(queued_at=old)
    client.get(url, HTTP_HX_REQUEST="true")
    client.get(url, HTTP_HX_REQUEST="true")
    assert sent == [((preview.pk,), "gpu")] * 2  # once more, not once per poll
    preview_execute(preview_id=preview.pk)
    GenerationPreview.objects.filter(pk=preview.pk).update(queued_at=old)
    client.get(url, HTTP_HX_REQUEST="true")
    assert len(sent) == 2  # finished previews are never sent again


@pytest.mark.django_db
def test_a_backend_that_fails_on_the_worker_is_reported_on_the_page(client: Client) -> None:
    dataset = seeds()
    client.force_login(curator())
    http = '{"backend": "http", "model": "m", "base_url": "http://127.0.0.1:9", "max_retries": 0}'
    page = previewed(client, form(dataset, backend=http), queue="cpu")
    assert 'role="alert"' in page and "127.0.0.1:9" in page
    assert GenerationPreview.objects.get().status == "failed"


@pytest.mark.django_db
def test_a_bad_template_or_backend_is_reported_by_name(client: Client) -> None:
    dataset = seeds()
    client.force_login(curator())
    url = reverse("generation_preview")
    page = client.post(url, form(dataset, template="Hi\n{{ text }\n")).content.decode()
    assert not GenerationPreview.objects.exists()  # checked before anything is queued
    assert "parameter &#x27;template&#x27;: template &#x27;qa&#x27;, line 2" in page
    page = client.post(url, form(dataset, template="{{ nothing }}")).content.decode()
    assert "&#x27;nothing&#x27; is undefined" in page
    page = client.post(url, form(dataset, backend='{"backend": "nope"}')).content.decode()
    assert "parameter &#x27;backend&#x27;" in page and "one of transformers" in page


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_curator_previews_a_template_in_a_browser(
    page: Any, live_server: Any, start_worker: Any, settings: Any
) -> None:
    modules = [*settings.WINNOW_STEP_MODULES, "tests.pipelines.scripted_backend"]
    start_worker({"WINNOW_STEP_MODULES": ",".join(modules)})
    curator()
    dataset = seeds()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}{reverse('generation_preview')}")
    page.select_option("select[name=dataset]", dataset.slug)
    page.select_option("select[name=step]", "synth_paraphrase")
    page.fill("textarea[name=backend]", SCRIPTED)
    page.fill("textarea[name=template]", "Rewrite the document\nDocument:\n{{ text | upper }}")
    page.fill("input[name=n]", "2")
    page.click("#preview-form button[type=submit]")
    first = page.wait_for_selector("#preview article.preview-row pre.record-text")
    assert first.inner_text() == "Cleaned: " + XSS.upper()
    assert page.locator("#preview article.preview-row").count() == 2
    assert "synth_paraphrase" in page.inner_text("#preview-spec")
    page.fill("#add-step-form input[name=name]", "Rewrites")
    page.click("#add-step-form button[type=submit]")
    page.wait_for_url("**/pipelines/rewrites/")
    assert "synth_paraphrase added: Rewrites v1" in page.inner_text("body")


@pytest.mark.django_db
def test_a_previewed_step_is_added_to_a_pipeline_or_a_new_one(client: Client) -> None:
    from pipelines.models import Pipeline
    from tests.pipelines.factories import make_pipeline

    existing = make_pipeline([{"step": "doc_stats"}], name="clean")
    http = {"backend": "http", "model": "m", "base_url": "http://127.0.0.1:9"}
    spec = json.dumps({"step": "synth_qa", "params": {"backend": http}})
    url = reverse("generation_add")
    client.force_login(UserFactory.create(username="annotator"))
    assert client.post(url, {"spec": spec, "name": "x"}).status_code == 403
    client.force_login(curator())
    response = client.post(url, {"spec": spec, "pipeline": existing.pk})
    existing.refresh_from_db()
    assert response["Location"] == existing.get_absolute_url()
    assert [s["step"] for s in existing.definition] == ["doc_stats", "synth_qa"]
    assert existing.version == 2
    assert existing.definition[1]["params"]["template"].startswith("Write {{ n }} question")
    response = client.post(url, {"spec": spec, "name": "qa only"})
    assert Pipeline.objects.get(name="qa only").definition[0]["step"] == "synth_qa"
    bad = json.dumps({"step": "synth_qa", "params": {"backend": http, "n": 1}})
    response = client.post(url, {"spec": bad, "name": "bad"}, follow=True)
    assert "unknown parameter(s) [&#x27;n&#x27;]" in response.content.decode()
    assert not Pipeline.objects.filter(name="bad").exists()
