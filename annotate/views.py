"""Annotation pages: thin views that check the user's role, call one service, render.

Roles: curators (and staff, as ``admin``) manage a project; annotators (and curators)
annotate. Every other logged-in user gets 403 on the project's pages, and an annotator
only ever sees their own assignments (404 for anyone else's).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from annotate import answer_selectors, model_selectors, review_selectors, selectors
from annotate.errors import AnnotateError, AnnotationInvalidError
from annotate.forms import (
    AcceptForm,
    AnswerForm,
    AnswerSignalsForm,
    ItemsAddForm,
    MemberForm,
    ProjectForm,
)
from annotate.models import AnnotationProject, Assignment, ProjectMember
from annotate.services.annotations import annotation_save_draft, annotation_submit
from annotate.services.assignments import (
    assignment_next,
    assignment_reopen_last,
    assignment_skip,
)
from annotate.services.item_sources import items_add
from annotate.services.projects import member_set, project_create
from annotate.source_forms import PairsAddForm, SuggestionsForm
from curation.htmx import HtmxHttpRequest
from curation.views import logged_in_user as _user

MANAGE: set[str] = {ProjectMember.Role.CURATOR, selectors.ADMIN}
ANNOTATE: set[str] = {ProjectMember.Role.ANNOTATOR, ProjectMember.Role.CURATOR}


def _get_project_for_user(request: HttpRequest, slug: str, roles: set[str]) -> AnnotationProject:
    project = get_object_or_404(AnnotationProject, slug=slug)
    if selectors.user_role(project=project, user=request.user) not in roles:
        raise PermissionDenied("Your role in this project does not open this page.")
    return project


def _get_assignment_for_user(request: HttpRequest, slug: str, pk: int) -> Assignment:
    project = _get_project_for_user(request, slug, ANNOTATE)
    assignment = selectors.assignment_for_user(project=project, user=_user(request), pk=pk)
    if assignment is None:
        raise Http404("No such assignment of yours.")
    return assignment


def _answer_form(request: HttpRequest, assignment: Assignment) -> AnswerForm:
    questions = list(assignment.project.questions.order_by("order", "id"))
    return AnswerForm(request.POST or None, questions=questions)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.projects_for_user(user=_user(request))
    can_create = request.user.has_perm("annotate.add_annotationproject")
    return render(request, "annotate/project_list.html", {"rows": rows, "can_create": can_create})


@login_required
@require_http_methods(["GET", "POST"])
def project_create_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("annotate.add_annotationproject"):
        raise PermissionDenied("Only administrators (or users given the right) create projects.")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(user=_user(request), **form.cleaned_data)
        except AnnotateError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(project)
    return render(request, "annotate/project_create.html", {"form": form})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    context = {
        "project": project,
        "progress": selectors.project_progress(project=project),
        "review": review_selectors.review_counts(project=project),
        "members": selectors.project_members(project=project),
        "questions": project.questions.order_by("order", "id"),
        "items_form": ItemsAddForm(project=project),
        "pairs_form": PairsAddForm(),
        "suggestions_form": SuggestionsForm(project=project),
        "suggestion_sources": model_selectors.suggestion_sources(project=project),
        "member_form": MemberForm(),
        "guidelines": selectors.guidelines_html(project=project),
        "outputs": answer_selectors.answer_outputs(project=project),
        "signals_form": AnswerSignalsForm(),
        "accept_form": AcceptForm(),
    }
    return render(request, "annotate/project_detail.html", context)


@login_required
def project_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    context = {
        "project": project,
        "dashboard": selectors.project_agreement(project=project),
        "model_rows": model_selectors.model_agreement(project=project),
    }
    return render(request, "annotate/project_dashboard.html", context)


@login_required
@require_POST
def project_items_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    form = ItemsAddForm(request.POST, project=project)
    if not form.is_valid():
        messages.error(request, f"Items not added: {form.errors.as_text()}")
        return redirect(project)
    try:
        added = items_add(project=project, **form.options())
    except AnnotateError as exc:
        messages.error(request, f"Items not added: {exc}")
    else:
        messages.info(request, f"{added.added} items added.")
    return redirect(project)


@login_required
@require_POST
def project_member_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, MANAGE)
    form = MemberForm(request.POST)
    if form.is_valid():
        member = member_set(
            project=project, user=form.cleaned_data["username"], role=form.cleaned_data["role"]
        )
        messages.info(request, f"{member.user} is now {member.get_role_display().lower()}.")
    else:
        messages.error(request, f"Member not added: {form.errors.as_text()}")
    return redirect(project)


@login_required
def next_item(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, ANNOTATE)
    assignment = assignment_next(project=project, user=_user(request))
    if assignment is not None:
        return redirect("annotate:assignment_detail", slug=project.slug, pk=assignment.pk)
    progress = selectors.annotator_progress(project=project, user=_user(request))
    return render(request, "annotate/done.html", {"project": project, "progress": progress})


@login_required
@require_http_methods(["GET", "POST"])
def assignment_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_user(request, slug, pk)
    if assignment.state != Assignment.State.LEASED:
        messages.info(request, "That item is closed; here is your next one.")
        return redirect("annotate:next_item", slug=slug)
    form = _answer_form(request, assignment)
    if request.method == "GET":
        return _render_assignment(request, assignment, None, {})
    if not form.is_valid():
        return _render_assignment(request, assignment, None, {"form": form.errors.as_text()})
    try:
        annotation_submit(
            assignment=assignment,
            values=form.answers(),
            time_spent_ms=form.cleaned_data["time_spent_ms"] or 0,
        )
    except AnnotationInvalidError as exc:
        return _render_assignment(request, assignment, form.answers(), exc.errors)
    except AnnotateError as exc:
        messages.error(request, str(exc))
    return redirect("annotate:next_item", slug=slug)


def _render_assignment(
    request: HttpRequest,
    assignment: Assignment,
    answers: dict[str, object] | None,
    errors: dict[str, str],
) -> HttpResponse:
    page = selectors.assignment_page(assignment=assignment, answers=answers, errors=errors)
    context = {
        "page": page,
        "project": page.project,
        "assignment": assignment,
        "errors": errors,
        "progress": selectors.annotator_progress(project=page.project, user=_user(request)),
        "guidelines": selectors.guidelines_html(project=page.project),
        "has_spans": any(q.kind == "spans" for q in page.questions),
        "suggestions": model_selectors.item_suggestions(
            item_id=assignment.item_id, questions=[qv.question for qv in page.questions]
        ),
    }
    return render(request, "annotate/assignment.html", context, status=400 if errors else 200)


@login_required
@require_POST
def assignment_draft(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_user(request, slug, pk)
    form = _answer_form(request, assignment)
    context: dict[str, object] = {}
    try:
        if not form.is_valid():
            raise AnnotateError(form.errors.as_text())
        annotation_save_draft(
            assignment=assignment,
            values=form.answers(),
            time_spent_ms=form.cleaned_data["time_spent_ms"] or 0,
        )
        context["saved_at"] = timezone.now()
    except AnnotateError as exc:
        context["draft_error"] = str(exc)
    return render(request, "annotate/assignment.html#draft-status", context)


@login_required
@require_POST
def assignment_skip_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_user(request, slug, pk)
    form = _answer_form(request, assignment)
    spent = (form.cleaned_data["time_spent_ms"] or 0) if form.is_valid() else 0
    try:
        assignment_skip(assignment=assignment, time_spent_ms=spent)
    except AnnotateError as exc:
        messages.error(request, str(exc))
    return redirect("annotate:next_item", slug=slug)


@login_required
@require_POST
def go_back(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, ANNOTATE)
    assignment = assignment_reopen_last(project=project, user=_user(request))
    if assignment is None:
        messages.info(request, "Nothing to go back to.")
        return redirect("annotate:next_item", slug=slug)
    return redirect("annotate:assignment_detail", slug=slug, pk=assignment.pk)
