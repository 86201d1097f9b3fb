from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from curation.models import Dataset
from curation.services.datasets import dataset_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("pw-for-tests-123")


def make_dataset(name: str = "ds", **kwargs: object) -> Dataset:
    return dataset_create(name=name, **kwargs)  # type: ignore[arg-type]


def signal_values(dataset_id: int, name: str) -> dict[int, Any]:
    """document id -> stored value of the signal ``name`` (None where unset); raw from SQL."""
    from django.db import connection

    from curation.models import Signal

    column = Signal.objects.get(name=name).column_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT document_id, {column} FROM curation_signal_row WHERE dataset_id = %s",
            [dataset_id],
        )
        return dict(cursor.fetchall())
