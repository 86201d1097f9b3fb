"""The dataset explorer: filtered, sorted, paged documents; signal histograms; search index."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from curation import explorer
from curation.explorer_forms import ExplorerForm
from curation.htmx import HtmxHttpRequest
from curation.models import Dataset, Signal
from curation.services.search import search_index_dispatch
from curation.services.signal_indexes import signal_indexes_request


def _get_dataset_for_user(request: HttpRequest, slug: str) -> Dataset:
    return get_object_or_404(Dataset, slug=slug)


def _form(request: HttpRequest, dataset: Dataset) -> ExplorerForm:
    return ExplorerForm(
        request.GET,
        signals=explorer.explorer_signals(),
        search_problem=explorer.search_problem(dataset=dataset),
    )


@login_required
def dataset_explore(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = _form(request, dataset)
    # An htmx swap on a big dataset shows the estimate and fetches the exact count after.
    fragment = bool(request.htmx) and not request.htmx.history_restore_request
    results = None
    if form.is_valid():
        query = form.query(dataset_id=dataset.pk)
        if query.indexable_signals:
            signal_indexes_request(
                dataset=dataset, signals=Signal.objects.filter(name__in=query.indexable_signals)
            )
        results = explorer.explorer_results(
            query=query,
            after=form.cursor,
            exact_count=not fragment or dataset.document_count <= explorer.COUNT_INLINE_MAX,
        )
    context = {
        "dataset": dataset,
        "form": form,
        "results": results,
        "count": results.count if results else None,
        "next_query": form.next_query(results.page) if results else "",
        "search_index": explorer.search_index_state(dataset_id=dataset.pk),
    }
    response = render(
        request, f"curation/dataset_explore.html{'#explorer' if fragment else ''}", context
    )
    if fragment:  # the canonical URL: only the fields that are set
        response["HX-Push-Url"] = form.url(request.path, results.page if results else None)
    return response


@login_required
def dataset_explore_count(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    form = _form(request, dataset)
    count = (
        explorer.explorer_count(query=form.query(dataset_id=dataset.pk))
        if form.is_valid()
        else None
    )
    return render(
        request, "curation/dataset_explore.html#count", {"dataset": dataset, "count": count}
    )


@login_required
def dataset_explore_histogram(request: HtmxHttpRequest, slug: str, name: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    signal = get_object_or_404(Signal, name=name)
    if signal.dtype not in explorer.NUMERIC:
        raise Http404(f"signal {name!r} is not numeric")
    form = _form(request, dataset)
    lo, hi = form.bounds(name) if form.is_valid() else (None, None)
    histogram = explorer.signal_histogram(
        dataset=dataset, signal=explorer.SignalColumn.of(signal), lo=lo, hi=hi
    )
    context = {"dataset": dataset, "signal": signal, "chart": explorer.histogram_chart(histogram)}
    template = "curation/explore_histogram.html" + ("#histogram" if request.htmx else "")
    return render(request, template, context)


@login_required
@require_POST
def dataset_search_index(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _get_dataset_for_user(request, slug)
    search_index_dispatch(dataset_id=dataset.pk)
    # Re-encoded: only a query string of this page can come back from the POST.
    query = QueryDict(request.POST.get("next_query", "")).urlencode()
    url = reverse("dataset_explore", args=[dataset.slug])
    return redirect(f"{url}?{query}" if query else url)
