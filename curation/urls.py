from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from curation import explorer_views, export_views, views
from curation.api import api

urlpatterns = [
    path("", views.dataset_list, name="dataset_list"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("datasets/<slug:slug>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<slug:slug>/import/", views.import_create, name="import_create"),
    path("datasets/<slug:slug>/documents/<int:pk>/", views.document_detail, name="document_detail"),
    path("datasets/<slug:slug>/explore/", explorer_views.dataset_explore, name="dataset_explore"),
    path(
        "datasets/<slug:slug>/explore/histogram/<slug:name>/",
        explorer_views.dataset_explore_histogram,
        name="dataset_explore_histogram",
    ),
    path(
        "datasets/<slug:slug>/explore/count/",
        explorer_views.dataset_explore_count,
        name="dataset_explore_count",
    ),
    path(
        "datasets/<slug:slug>/explore/search-index/",
        explorer_views.dataset_search_index,
        name="dataset_search_index",
    ),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("evalsets/", views.evalset_list, name="evalset_list"),
    path("datasets/<slug:slug>/exports/", export_views.export_list, name="export_list"),
    path("exports/<int:pk>/", export_views.export_detail, name="export_detail"),
    path("exports/<int:pk>/files/<path:name>", export_views.export_file, name="export_file"),
    path("exports/<int:pk>/diff/", export_views.export_diff_view, name="export_diff"),
    path(
        "imports/<int:pk>/rejections.csv",
        views.import_rejections_download,
        name="import_rejections_download",
    ),
    path("", include("curation.recipe_urls")),
    path("annotate/", include("annotate.urls")),
    path("", include("pipelines.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
