"""Who may see a project, its list, guidelines, members and progress counts."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, QuerySet
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotate.models import AnnotationProject, Assignment, Item, ProjectMember

# The site-wide administrator: staff users see every project's management pages.
ADMIN = "admin"

# Raw HTML in guidelines is escaped (html=False), javascript:/data: links are refused by
# markdown-it's link validation, and images are off so that guidelines load nothing.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image").enable("table")


def user_role(*, project: AnnotationProject, user: User | AnonymousUser) -> str | None:
    """The user's role in the project: their membership's, else ``admin`` for staff, else None."""
    if not user.is_authenticated:
        return None
    role = (
        ProjectMember.objects.filter(project=project, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if role is None and user.is_staff:
        return ADMIN
    return role


@dataclass(frozen=True)
class ProjectRow:
    project: AnnotationProject
    role: str


def projects_for_user(*, user: User) -> list[ProjectRow]:
    """The projects the user belongs to (staff: all of them), with their role in each."""
    roles = dict(ProjectMember.objects.filter(user=user).values_list("project_id", "role"))
    projects: QuerySet[AnnotationProject] = AnnotationProject.objects.select_related("dataset")
    if not user.is_staff:
        projects = projects.filter(pk__in=list(roles))
    return [ProjectRow(p, roles.get(p.pk, ADMIN)) for p in projects.order_by("name")]


def guidelines_html(*, project: AnnotationProject) -> SafeString:
    """The guidelines rendered from Markdown with raw HTML escaped (safe to show)."""
    return mark_safe(_MARKDOWN.render(project.guidelines))  # noqa: S308 - escaped by markdown-it


@dataclass(frozen=True)
class ProjectProgress:
    total: int
    pending: int
    partial: int
    complete: int

    @property
    def fraction(self) -> float:
        return self.complete / self.total if self.total else 0.0


def project_progress(*, project: AnnotationProject) -> ProjectProgress:
    counts = dict(
        Item.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return ProjectProgress(
        total=sum(counts.values()),
        pending=counts.get(Item.Status.PENDING, 0),
        partial=counts.get(Item.Status.PARTIAL, 0),
        complete=counts.get(Item.Status.COMPLETE, 0),
    )


@dataclass(frozen=True)
class AnnotatorProgress:
    submitted: int
    skipped: int
    total: int


def annotator_progress(*, project: AnnotationProject, user: User) -> AnnotatorProgress:
    """The annotator's own counts and the project's item count.

    Only the annotator's own rows are counted (assignment_user_idx), so the page stays
    cheap on a project of millions; the curator page has the counts by status.
    """
    mine = dict(
        Assignment.objects.filter(project=project, user=user)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return AnnotatorProgress(
        submitted=mine.get(Assignment.State.SUBMITTED, 0),
        skipped=mine.get(Assignment.State.SKIPPED, 0),
        total=project.item_count,
    )


def project_members(*, project: AnnotationProject) -> QuerySet[ProjectMember]:
    return (
        ProjectMember.objects.filter(project=project)
        .select_related("user")
        .order_by("role", "user__username")
    )
