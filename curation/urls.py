from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from curation import views
from curation.api import api

urlpatterns = [
    path("", views.dataset_list, name="dataset_list"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("datasets/<slug:slug>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<slug:slug>/import/", views.import_create, name="import_create"),
    path("datasets/<slug:slug>/documents/<int:pk>/", views.document_detail, name="document_detail"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("evalsets/", views.evalset_list, name="evalset_list"),
    path(
        "imports/<int:pk>/rejections.csv",
        views.import_rejections_download,
        name="import_rejections_download",
    ),
    path("", include("pipelines.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
