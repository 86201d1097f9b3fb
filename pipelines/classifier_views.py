"""Quality-classifier pages: a dataset's classifiers with a train form, one classifier's
cross-validation metrics and its application to the dataset (htmx progress)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from curation.htmx import HTMX_STOP_POLLING, HtmxHttpRequest
from curation.models import Dataset
from pipelines import classifier_selectors as selectors
from pipelines.classifier_forms import ClassifierTrainForm
from pipelines.models import QualityClassifier
from pipelines.services.classifiers import (
    ClassifierError,
    classifier_apply_queue,
    classifier_train,
)


def _get_dataset_for_user(request: HttpRequest, dataset_id: int) -> Dataset:
    return get_object_or_404(Dataset, pk=dataset_id)


def _get_classifier_for_user(request: HttpRequest, pk: int) -> QualityClassifier:
    return get_object_or_404(
        QualityClassifier.objects.select_related("dataset", "applied_to", "created_by"), pk=pk
    )


@login_required
@require_http_methods(["GET", "POST"])
def classifier_list(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _get_dataset_for_user(request, dataset_id)
    models = selectors.classifier_embedding_models(dataset_id=dataset.pk)
    # A GET may prefill the form (an annotation project links here with its labels).
    form = ClassifierTrainForm(
        request.POST or None,
        initial=request.GET.dict(),
        embedding_models=models,
        signals=selectors.label_signals(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            classifier = classifier_train(
                dataset=dataset, user=request.user, **form.training_args()
            )
        except ClassifierError as exc:
            form.add_error(None, str(exc))
        else:
            messages.info(request, f"Trained {classifier}: cross-validated metrics below.")
            return redirect(classifier)
    classifiers = selectors.classifier_list(dataset_id=dataset.pk)
    context = {"dataset": dataset, "form": form, "classifiers": classifiers, "models": models}
    return render(request, "pipelines/classifier_list.html", context)


@login_required
def classifier_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    classifier = _get_classifier_for_user(request, pk)
    context = {
        "classifier": classifier,
        "positive": selectors.rule_text(classifier.labels.get("positive")),
        "negative": selectors.rule_text(classifier.labels.get("negative")),
        "versions": selectors.classifier_versions(classifier=classifier),
    }
    if request.htmx:
        response = render(request, "pipelines/classifier_detail.html#apply", context)
        if not classifier.is_applying:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "pipelines/classifier_detail.html", context)


@login_required
@require_POST
def classifier_apply(request: HttpRequest, pk: int) -> HttpResponse:
    classifier = _get_classifier_for_user(request, pk)
    if classifier_apply_queue(classifier=classifier):
        messages.info(request, f"Applying {classifier} to {classifier.dataset.name}: queued.")
    else:
        messages.info(request, f"{classifier} is already being applied.")
    return redirect(classifier)
