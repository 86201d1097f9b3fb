from __future__ import annotations

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
