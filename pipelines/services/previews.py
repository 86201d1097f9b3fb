"""Generator previews on a worker: checked in the request, run on the step's device queue.

The request does what needs no model (the step's parameters, its template on the
documents, the backend's configuration) so a mistake is reported at once; the
model runs in a worker, like a pipeline run's, and the page polls for the rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from curation.errors import CurationError
from curation.models import Dataset
from curation.services.leases import requeue_cutoff
from pipelines.generation.base import GenerationError
from pipelines.models import GenerationPreview
from pipelines.services.derived import derive_preview, preview_inputs
from pipelines.synthetic.prompts import PromptTemplateError

logger = logging.getLogger(__name__)

# A user's finished previews are kept this long (the page's address stays valid).
KEEP_FOR = timedelta(days=1)


def preview_start(
    *,
    user: User,
    dataset: Dataset,
    step_name: str,
    params: dict[str, Any],
    n: int,
) -> GenerationPreview:
    """Check the step on the first ``n`` documents and queue its preview.

    Raises PipelineDefinitionError (bad step or parameters) or PromptTemplateError
    (the template fails on one of the documents), naming what to fix.
    """
    step, documents = preview_inputs(dataset=dataset, step_name=step_name, params=params, n=n)
    step.prompts(documents)
    GenerationPreview.objects.filter(
        created_by=user, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    preview = GenerationPreview.objects.create(
        created_by=user,
        dataset=dataset,
        spec={"step": step_name, "params": params},
        n=n,
        queue=step.device,
        queued_at=timezone.now(),
    )
    transaction.on_commit(lambda: _queue(preview))
    return preview


def _queue(preview: GenerationPreview) -> None:
    from pipelines.tasks import generation_preview

    generation_preview.apply_async((preview.pk,), queue=preview.queue)


def preview_requeue_stale(*, preview: GenerationPreview) -> bool:
    """Send a preview's task again when it has waited WINNOW_REQUEUE_AFTER_SECONDS.

    A broker restart loses queued messages; the polling page calls this, so a
    preview is never stuck. At most one caller re-sends it (a conditional update);
    a duplicate message is harmless, since only one worker can claim the preview.
    """
    now = timezone.now()
    stale = requeue_cutoff(now)
    if preview.status != GenerationPreview.Status.QUEUED or preview.queued_at is None:
        return False
    if preview.queued_at >= stale:
        return False
    sent = GenerationPreview.objects.filter(
        pk=preview.pk, status=GenerationPreview.Status.QUEUED, queued_at=preview.queued_at
    ).update(queued_at=now)
    if sent:
        preview.queued_at = now
        _queue(preview)
        logger.info("preview %s: queued again after %s", preview.token, now - stale)
    return bool(sent)


def preview_execute(*, preview_id: int) -> GenerationPreview | None:
    """The task's body: claim the queued preview, run the step, store rows or the problem.

    None when the preview is gone or another worker has it.
    """
    claimed = GenerationPreview.objects.filter(
        pk=preview_id, status=GenerationPreview.Status.QUEUED
    ).update(status=GenerationPreview.Status.RUNNING)
    if not claimed:
        return None
    preview = GenerationPreview.objects.select_related("dataset").get(pk=preview_id)
    spec = preview.spec
    try:
        rows = derive_preview(
            dataset=preview.dataset, step_name=spec["step"], params=spec["params"], n=preview.n
        )
    except (CurationError, PromptTemplateError, GenerationError) as exc:
        preview.status, preview.problem = GenerationPreview.Status.FAILED, str(exc)
    except Exception as exc:
        logger.exception("preview %s failed", preview.token)
        preview.status = GenerationPreview.Status.FAILED
        preview.problem = f"the worker failed: {exc!r} (its log has the traceback)"
    else:
        preview.status = GenerationPreview.Status.DONE
        preview.rows = [
            {
                "document": {"id": row.document.id},
                "prompt": row.prompt,
                "records": [{"external_id": r.external_id, "text": r.text} for r in row.records],
                "counts": row.counts,
            }
            for row in rows
        ]
    preview.finished_at = timezone.now()
    preview.save(update_fields=["status", "problem", "rows", "finished_at"])
    return preview
