"""A project's annotations as JSON lines: one line per item, streamed in chunks of items.

Each line holds the project's slug, the item's id and status, the external ids of its
document(s) (the ``id`` column of a dataset export), every annotator's submitted answers
with the time they spent, the final answers with their source and reviewer, and the model
suggestions shown on the item. Items are read by keyset in chunks, so memory stays flat
whatever the size of the project; drafts are left out.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from annotate.models import (
    Annotation,
    AnnotationProject,
    Assignment,
    FinalAnswer,
    Item,
    Question,
    Suggestion,
)
from curation.models import Document

logger = logging.getLogger(__name__)

CHUNK_ITEMS = 1000


def _annotators(item_ids: list[int], keys: dict[int, str]) -> dict[int, list[dict[str, Any]]]:
    """item id -> each annotator's submitted answers, time spent and submission time."""
    answers: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
    names: dict[int, str] = {}
    rows = Annotation.objects.filter(item_id__in=item_ids, draft=False).values_list(
        "item_id", "user_id", "user__username", "question_id", "values"
    )
    for item_id, user_id, username, question_id, values in rows.iterator():
        answers[(item_id, user_id)][keys[question_id]] = values
        names[user_id] = username
    spent = {
        (item_id, user_id): (ms, finished)
        for item_id, user_id, ms, finished in Assignment.objects.filter(
            item_id__in=item_ids, state=Assignment.State.SUBMITTED
        ).values_list("item_id", "user_id", "time_spent_ms", "finished_at")
    }
    by_item: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (item_id, user_id), given in answers.items():
        ms, finished = spent.get((item_id, user_id), (None, None))
        by_item[item_id].append(
            {
                "annotator": names[user_id],
                "answers": {k: given[k] for k in keys.values() if k in given},
                "time_spent_ms": ms,
                "submitted_at": finished,
            }
        )
    for entries in by_item.values():
        entries.sort(
            key=lambda e: (e["submitted_at"] is None, str(e["submitted_at"]), e["annotator"])
        )
    return by_item


def _finals(item_ids: list[int], keys: dict[int, str]) -> dict[int, dict[str, Any]]:
    by_item: dict[int, dict[str, Any]] = defaultdict(dict)
    rows = FinalAnswer.objects.filter(item_id__in=item_ids).values_list(
        "item_id", "question_id", "values", "source", "reviewer__username", "note", "decided_at"
    )
    for item_id, question_id, values, source, reviewer, note, decided_at in rows.iterator():
        by_item[item_id][keys[question_id]] = {
            "values": values,
            "source": source,
            "reviewer": reviewer,
            "note": note,
            "decided_at": decided_at,
        }
    return by_item


def _suggestions(item_ids: list[int], keys: dict[int, str]) -> dict[int, list[dict[str, Any]]]:
    by_item: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Suggestion.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "question_id", "source")
        .values_list("item_id", "question_id", "origin", "source", "values", "score")
    )
    for item_id, question_id, origin, source, values, score in rows.iterator():
        by_item[item_id].append(
            {
                "question": keys[question_id],
                "origin": origin,
                "source": source,
                "values": values,
                "score": score,
            }
        )
    return by_item


def annotation_export_lines(
    *, project: AnnotationProject, chunk_items: int = CHUNK_ITEMS
) -> Iterator[bytes]:
    """Yield one JSON line (bytes, ending in a newline) per item of the project, by item id.

    Five queries per chunk of ``chunk_items`` items: the items, their documents' external
    ids, the submitted annotations (with the assignments' time spent), the final answers
    and the suggestions.
    """
    started = time.perf_counter()
    keys = dict(Question.objects.filter(project=project).values_list("pk", "key"))
    last, count = 0, 0
    while True:
        items = list(
            Item.objects.filter(project=project, pk__gt=last)
            .order_by("pk")
            .values_list("pk", "document_id", "second_document_id", "status")[:chunk_items]
        )
        if not items:
            break
        item_ids = [i[0] for i in items]
        documents = {i[1] for i in items} | {i[2] for i in items if i[2] is not None}
        external = dict(Document.objects.filter(pk__in=documents).values_list("pk", "external_id"))
        annotators = _annotators(item_ids, keys)
        finals = _finals(item_ids, keys)
        suggestions = _suggestions(item_ids, keys)
        for item_id, document_id, second_id, status in items:
            line = {
                "project": project.slug,
                "item_id": item_id,
                "document_id": external.get(document_id),
                "second_document_id": external.get(second_id) if second_id else None,
                "status": status,
                "annotations": annotators.get(item_id, []),
                "final": finals.get(item_id, {}),
                "suggestions": suggestions.get(item_id, []),
            }
            yield orjson.dumps(line) + b"\n"
        count += len(items)
        last = item_ids[-1]
    logger.info(
        "project %s: exported %d items as JSON lines in %.2fs",
        project.slug,
        count,
        time.perf_counter() - started,
    )


def annotation_export_write(*, project: AnnotationProject, path: Path) -> int:
    """Write the lines to ``path`` (through a temporary sibling, renamed at the end)."""
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    with open(partial, "wb") as fh:
        for line in annotation_export_lines(project=project):
            fh.write(line)
            count += 1
    partial.replace(path)
    return count
