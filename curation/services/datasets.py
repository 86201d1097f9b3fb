"""Dataset lifecycle."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.utils.text import slugify

from curation.errors import PermanentError
from curation.models import Dataset
from curation.services.search import search_index_drop
from curation.services.signals import signal_partition_drop, signal_partition_ensure
from curation.services.vectors import vectors_drop


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "dataset"
    slug, n = base, 1
    while Dataset.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def dataset_create(
    *,
    name: str,
    description: str = "",
    source: str = "",
    user: User | AnonymousUser | None = None,
    parent: Dataset | None = None,
) -> Dataset:
    name = name.strip()
    if not name:
        raise PermanentError("a dataset needs a name")
    if Dataset.objects.filter(name=name).exists():
        raise PermanentError(f"a dataset named {name!r} already exists: pick another name")
    dataset = Dataset.objects.create(
        name=name,
        slug=_unique_slug(name),
        description=description,
        source=source,
        created_by=user if user is not None and user.is_authenticated else None,
        parent=parent,
    )
    signal_partition_ensure(dataset_id=dataset.pk)
    return dataset


def dataset_get_or_create(
    *, name: str, user: User | AnonymousUser | None = None
) -> tuple[Dataset, bool]:
    existing = Dataset.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    return dataset_create(name=name, user=user), True


@transaction.atomic
def dataset_recount(*, dataset: Dataset) -> Dataset:
    """Recompute the dataset's counts from its documents (facts, not increments)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(char_count), 0) FROM curation_document "
            "WHERE dataset_id = %s",
            [dataset.pk],
        )
        documents, chars = cursor.fetchone()
    Dataset.objects.filter(pk=dataset.pk).update(document_count=documents, char_count=chars)
    dataset.document_count, dataset.char_count = documents, chars
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset with set-based statements (no per-row ORM cascade)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM curation_duplicatemember m USING curation_duplicategroup g "
            "WHERE m.group_id = g.id AND g.dataset_id = %s",
            [dataset.pk],
        )
        cursor.execute("DELETE FROM curation_duplicategroup WHERE dataset_id = %s", [dataset.pk])
        cursor.execute("DELETE FROM curation_document WHERE dataset_id = %s", [dataset.pk])
    signal_partition_drop(dataset_id=dataset.pk)
    vectors_drop(dataset_id=dataset.pk)
    dataset_id = dataset.pk
    # After the commit, so that the drop does not lock every dataset's documents meanwhile.
    transaction.on_commit(lambda: search_index_drop(dataset_id=dataset_id))
    dataset.delete()
