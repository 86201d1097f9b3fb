from __future__ import annotations

from typing import Any

from curation.models import Dataset, Document
from pipelines.models import Pipeline, PipelineRun
from pipelines.services.definitions import pipeline_create


def add_documents(dataset: Dataset, texts: list[str], prefix: str = "d") -> list[int]:
    docs = Document.objects.bulk_create(
        Document(
            dataset=dataset,
            external_id=f"{prefix}{i}",
            text=text,
            content_hash=i,
            char_count=len(text),
            word_count=len(text.split()),
            line_count=text.count("\n") + 1,
        )
        for i, text in enumerate(texts)
    )
    return [d.pk for d in docs]


def make_pipeline(steps: list[dict[str, Any]], name: str = "p", batch_size: int = 10) -> Pipeline:
    return pipeline_create(name=name, definition=steps, batch_size=batch_size)


def run_all(run: PipelineRun) -> PipelineRun:
    """Execute every batch of the run in this process, in creation order (corpus phases last)."""
    from pipelines.services.runs import run_batch_execute

    for batch_id in run.batches.order_by("id").values_list("pk", flat=True):
        run_batch_execute(batch_id=batch_id)
    run.refresh_from_db()
    return run
