from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from annotate.models import AnnotationProject, ProjectMember
from annotate.services.items import items_add_from_dataset
from annotate.services.projects import member_set, project_create
from tests.curation.factories import UserFactory, make_dataset
from tests.pipelines.factories import add_documents

ALL_KINDS = [
    {
        "key": "quality",
        "kind": "single_label",
        "prompt": "Overall",
        "config": {"labels": ["good", "bad"]},
    },
    {"key": "topics", "kind": "multi_label", "config": {"labels": ["news", "code", "chat"]}},
    {"key": "entities", "kind": "spans", "config": {"labels": ["PER", "LOC"]}},
    {"key": "helpsteer", "kind": "rating", "config": {}},
    {"key": "preference", "kind": "pairwise", "config": {}},
    {"key": "rewrite", "kind": "rewrite", "config": {"source": "blank"}},
]

LABEL_ONLY = [{"key": "quality", "kind": "single_label", "config": {"labels": ["good", "bad"]}}]


def make_project(
    *,
    texts: list[str] | None = None,
    questions: list[dict[str, Any]] | None = None,
    name: str = "proj",
    add_items: bool = True,
    **kwargs: Any,
) -> AnnotationProject:
    """A project over a new dataset of ``texts`` (every document an item unless told not)."""
    dataset = make_dataset(f"{name}-data")
    add_documents(dataset, texts if texts is not None else [f"text {i}" for i in range(5)])
    project = project_create(
        dataset=dataset, name=name, questions=questions or LABEL_ONLY, **kwargs
    )
    if add_items:
        items_add_from_dataset(project=project)
    return project


def member(
    project: AnnotationProject, username: str, role: str = ProjectMember.Role.ANNOTATOR
) -> User:
    user = UserFactory.create(username=username)
    member_set(project=project, user=user, role=role)
    return user


def all_answers(*, text_length: int) -> dict[str, Any]:
    """Valid answers to ALL_KINDS for a text of ``text_length`` characters (>= 5)."""
    return {
        "quality": {"label": "good"},
        "topics": {"labels": ["news", "chat"]},
        "entities": {"spans": [{"start": 0, "end": 3, "label": "PER"}]},
        "helpsteer": {
            "ratings": {
                "helpfulness": 4,
                "correctness": 3,
                "coherence": 4,
                "complexity": 1,
                "verbosity": 2,
            }
        },
        "preference": {"choice": "b", "strength": 2},
        "rewrite": {"text": "A better text."},
    }
