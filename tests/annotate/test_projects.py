from __future__ import annotations

import pytest

from annotate.errors import ProjectError, QuestionConfigError
from annotate.models import ProjectMember, Question
from annotate.services.projects import project_create
from tests.annotate.factories import ALL_KINDS, make_project
from tests.curation.factories import UserFactory, make_dataset

pytestmark = pytest.mark.django_db


def test_project_create_stores_questions_in_order_and_makes_the_creator_curator() -> None:
    curator = UserFactory.create(username="cur")
    project = project_create(
        dataset=make_dataset(), name="Quality pass", questions=ALL_KINDS, k=3, user=curator
    )
    assert project.slug == "quality-pass"
    assert list(project.questions.values_list("key", "order")) == [
        (q["key"], n) for n, q in enumerate(ALL_KINDS)
    ]
    rating = project.questions.get(kind=Question.Kind.RATING)
    assert rating.config["scale"] == [0, 4] and len(rating.config["attributes"]) == 5
    assert ProjectMember.objects.get(project=project).role == ProjectMember.Role.CURATOR


@pytest.mark.parametrize(
    ("questions", "message"),
    [
        ([], "at least one question"),
        ([{"key": "Bad Key", "kind": "rewrite"}], "must be a slug"),
        ([{"key": "a", "kind": "rewrite"}, {"key": "a", "kind": "rewrite"}], "used twice"),
        ([{"key": "q", "kind": "single_label", "config": {"labels": []}}], "question 'q': labels"),
        ([{"key": "q", "kind": "rewrite", "colour": "red"}], "unknown field(s) colour"),
    ],
)
def test_project_create_refuses_bad_questions_naming_them(
    questions: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(QuestionConfigError) as info:
        project_create(dataset=make_dataset(), name="p", questions=questions)
    assert message in str(info.value)


def test_project_names_are_unique_and_k_is_bounded() -> None:
    make_project(name="same", add_items=False)
    with pytest.raises(ProjectError, match="already exists"):
        project_create(dataset=make_dataset("other"), name="same", questions=ALL_KINDS[:1])
    with pytest.raises(ProjectError, match="k must be"):
        project_create(dataset=make_dataset("o2"), name="k0", questions=ALL_KINDS[:1], k=0)
