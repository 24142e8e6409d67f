"""``/imfpush/v1`` routes. Every path works with and without a trailing slash (§1.2)."""

from __future__ import annotations

from django.urls import re_path

from core.api.routing import api_path
from imfpush.api.apps import ApplicationCollectionView, ApplicationDetailView, ApplicationStatusView
from imfpush.api.errors import unknown_path
from imfpush.api.health import HealthView

APP = "apps/<str:application_id>"

urlpatterns = [
    *api_path("health/status", HealthView.as_view(), "mfp-health"),
    *api_path("apps", ApplicationCollectionView.as_view(), "mfp-apps"),
    *api_path(APP, ApplicationDetailView.as_view(), "mfp-app"),
    *api_path(f"{APP}/status", ApplicationStatusView.as_view(), "mfp-app-status"),
    re_path(r"^.*$", unknown_path),
]
