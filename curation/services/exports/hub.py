"""Pushing a finished snapshot to the Hugging Face Hub (only where a token is configured).

Not exercised by the tests: they run offline. The push is one ``upload_folder``
of the snapshot's folder into a dataset repository (created private if missing);
the ``.winnow`` bookkeeping folder stays behind.
"""

from __future__ import annotations

import logging

from django.conf import settings

from curation.errors import PermanentError
from curation.models import ExportSnapshot

logger = logging.getLogger(__name__)


def hub_push_enabled() -> bool:
    return bool(settings.WINNOW_HF_TOKEN)


def export_push_to_hub(*, snapshot: ExportSnapshot, repo_id: str) -> str:
    """Upload the snapshot to the dataset repo ``repo_id``; return the commit URL.

    A failed push does not undo the export: the error is recorded on the snapshot.
    """
    if not hub_push_enabled():
        raise PermanentError("set HF_TOKEN (a write token) to push exports to the Hub")
    if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
        raise PermanentError(f"export {snapshot.pk} has not finished: push it once it has")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=settings.WINNOW_HF_TOKEN)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=snapshot.path,
            ignore_patterns=[".winnow/*"],
            commit_message=f"Winnow export {snapshot.pk} of {snapshot.dataset.name}",
        )
    except (HfHubHTTPError, OSError) as exc:
        message = f"the files are exported, but the push to {repo_id} failed: {exc}"
        ExportSnapshot.objects.filter(pk=snapshot.pk).update(error=message)
        logger.warning("export %s: %s", snapshot.pk, message)
        return ""
    url = str(getattr(commit, "commit_url", commit))
    logger.info("export %s: pushed to %s (%s)", snapshot.pk, repo_id, url)
    return url
