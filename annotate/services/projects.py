"""Projects, their questions and their members."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils.text import slugify

from annotate import questions
from annotate.errors import ProjectError, QuestionConfigError
from annotate.models import AnnotationProject, ProjectMember, Question
from curation.models import Dataset

# Slugs that name pages under /annotate/ rather than a project.
RESERVED_SLUGS = {"new"}


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "project"
    slug, n = base, 1
    while slug in RESERVED_SLUGS or AnnotationProject.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def questions_clean(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check question specs ``{"key", "kind", "prompt"?, "config"?}``; returns them normalized.

    Errors name the question (by key, or by position when the key is the problem).
    """
    if not isinstance(specs, list) or not specs:
        raise QuestionConfigError("a project needs at least one question")
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, spec in enumerate(specs, start=1):
        if not isinstance(spec, dict):
            raise QuestionConfigError(f"question {n} must be an object with key and kind")
        unknown = set(spec) - {"key", "kind", "prompt", "config"}
        if unknown:
            raise QuestionConfigError(
                f"question {n}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        key = spec.get("key")
        if not isinstance(key, str) or not key or slugify(key) != key or len(key) > 50:
            raise QuestionConfigError(
                f"question {n}: key {key!r} must be a slug (lowercase letters, digits, - and _)"
            )
        if key in seen:
            raise QuestionConfigError(f"question {key!r}: the key is used twice")
        seen.add(key)
        prompt = spec.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > 500:
            raise QuestionConfigError(f"question {key!r}: prompt must be text of <= 500 characters")
        config = spec.get("config") or {}
        if not isinstance(config, dict):
            raise QuestionConfigError(f"question {key!r}: config must be an object")
        try:
            config = questions.config_clean(spec.get("kind", ""), config)
        except ValueError as exc:
            raise QuestionConfigError(f"question {key!r}: {exc}") from exc
        cleaned.append({"key": key, "kind": spec["kind"], "prompt": prompt, "config": config})
    return cleaned


@transaction.atomic
def project_create(
    *,
    dataset: Dataset,
    name: str,
    questions: list[dict[str, Any]],
    guidelines: str = "",
    k: int = 1,
    lease_seconds: int = 900,
    user: User | AnonymousUser | None = None,
) -> AnnotationProject:
    """Create a project with its questions; its creator (if any) becomes its curator."""
    name = name.strip()
    if not name:
        raise ProjectError("a project needs a name")
    if AnnotationProject.objects.filter(name=name).exists():
        raise ProjectError(f"a project named {name!r} already exists: pick another name")
    if not 1 <= k <= 50:
        raise ProjectError(f"k must be from 1 to 50 annotations per item, not {k}")
    if not 30 <= lease_seconds <= 7 * 86400:
        raise ProjectError("lease_seconds must be from 30 seconds to 7 days")
    specs = questions_clean(questions)
    creator = user if user is not None and user.is_authenticated else None
    project = AnnotationProject.objects.create(
        dataset=dataset,
        name=name,
        slug=_unique_slug(name),
        guidelines=guidelines,
        k=k,
        lease_seconds=lease_seconds,
        created_by=creator,
    )
    Question.objects.bulk_create(
        Question(project=project, order=n, **spec) for n, spec in enumerate(specs)
    )
    if creator is not None:
        member_set(project=project, user=creator, role=ProjectMember.Role.CURATOR)
    return project


def member_set(*, project: AnnotationProject, user: User, role: str) -> ProjectMember:
    """Make ``user`` a member of ``project`` with ``role`` (one role per member; replaces)."""
    if role not in ProjectMember.Role.values:
        raise ProjectError(f"role {role!r} is not one of {', '.join(ProjectMember.Role)}")
    member, _ = ProjectMember.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return member


def member_remove(*, project: AnnotationProject, user: User) -> None:
    """Take ``user`` out of the project; their assignments and annotations stay as facts."""
    ProjectMember.objects.filter(project=project, user=user).delete()
