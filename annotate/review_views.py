"""Review pages: the queue of items awaiting final answers and the page for one item.

Reviewers, curators and staff (as ``admin``) review; annotators and everyone else get
403 on every review page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotate import review_selectors, selectors
from annotate.errors import AnnotateError, AnnotationInvalidError
from annotate.models import Item, ProjectMember
from annotate.review_forms import ReviewForm, ReviewQueueForm
from annotate.services.review import ReviewMode, review_item_open, review_next, review_submit
from annotate.views import _get_project_for_user, _user

REVIEW: set[str] = {ProjectMember.Role.REVIEWER, ProjectMember.Role.CURATOR, selectors.ADMIN}


def _get_item_for_user(request: HttpRequest, slug: str, item_id: int) -> Item:
    project = _get_project_for_user(request, slug, REVIEW)
    return get_object_or_404(Item.objects.select_related("project"), project=project, pk=item_id)


def _next_url(slug: str, mode: str) -> str:
    return f"{reverse('annotate:review_next', args=[slug])}?{urlencode({'mode': mode})}"


@login_required
def review_queue_view(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, REVIEW)
    form = ReviewQueueForm(request.GET)
    mode = form.mode_value()
    after = form.cleaned_data.get("after", "") if form.is_valid() else ""
    context = {
        "project": project,
        "form": form,
        "mode": mode,
        "modes": ReviewMode.choices,
        "counts": review_selectors.review_counts(project=project),
        "queue": review_selectors.review_queue(project=project, mode=mode, after=after),
        "next_url": _next_url(slug, mode),
    }
    return render(
        request, "annotate/review_queue.html", context, status=200 if form.is_valid() else 400
    )


@login_required
def review_next_view(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_user(request, slug, REVIEW)
    mode = ReviewQueueForm(request.GET).mode_value()
    item = review_next(project=project, user=_user(request), mode=mode)
    if item is None:
        messages.info(request, "Nothing is left to review in this order; well done.")
        return redirect(f"{reverse('annotate:review_queue', args=[slug])}?mode={mode}")
    url = reverse("annotate:review_item", args=[slug, item.pk])
    return redirect(f"{url}?{urlencode({'mode': mode})}")


@login_required
@require_http_methods(["GET", "POST"])
def review_item_view(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    item = _get_item_for_user(request, slug, item_id)
    questions = list(item.project.questions.order_by("order", "id"))
    if request.method == "GET":
        item = review_item_open(item=item, user=_user(request))
        return _render_review(request, item, ReviewQueueForm(request.GET).mode_value(), None)
    form = ReviewForm(request.POST, questions=questions)
    if not form.is_valid():
        default = ReviewMode.DISAGREEMENTS_FIRST
        return _render_review(request, item, default, form, form_error=form.errors_text())
    mode = form.cleaned_data["mode"] or ReviewMode.DISAGREEMENTS_FIRST
    try:
        review_submit(item=item, reviewer=_user(request), decisions=form.decisions())
    except AnnotationInvalidError as exc:
        return _render_review(request, item, mode, form, errors=exc.errors)
    except AnnotateError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Item {item.pk} reviewed.")
    return redirect(_next_url(slug, mode))


def _render_review(
    request: HttpRequest,
    item: Item,
    mode: str,
    form: ReviewForm | None,
    form_error: str = "",
    errors: dict[str, str] | None = None,
) -> HttpResponse:
    posted = {}
    if form is not None:
        posted = {
            "picks": form.picks(),
            "own": form.own.answers(),
            "notes": form.notes(),
            "errors": errors or {},
        }
    page = review_selectors.review_page(item=item, posted=posted)
    context = {
        "page": page,
        "project": page.project,
        "item": item,
        "mode": mode,
        "held_by": review_selectors.review_holder(item=item, user=_user(request)),
        "errors": errors or {},
        "form_error": form_error,
    }
    status = 400 if errors or form_error else 200
    return render(request, "annotate/review_item.html", context, status=status)
