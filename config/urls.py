from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.health import liveness_view, readiness_view
from core.metrics_views import metrics_view
from core.views import api_not_found
from imfpush.token_views import MfpIntrospectionView, MfpTokenView
from notifications.unsubscribe import email_unsubscribe
from players.downloads import csv_export_download

# The admin is Herald's dashboard, and says so in its header and the browser's title.
admin.site.site_header = "Herald"
admin.site.site_title = "Herald dashboard"
admin.site.index_title = "Dashboard"

urlpatterns = [
    # First: the API is what most requests are for (see config/api_urls.py on the order).
    path("api/v1/", include(("config.api_urls", "api_v1"), namespace="api_v1")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("csv_exports/<str:app_id>/<str:file_name>", csv_export_download, name="csv-export-download"),
    path("email/unsubscribe/<str:token>", email_unsubscribe, name="email-unsubscribe"),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", readiness_view, name="healthz"),
    path("healthz/ready", readiness_view, name="healthz-ready"),
    path("healthz/live", liveness_view, name="healthz-live"),
    path("imfpush/v1/", include(("imfpush.urls", "imfpush"), namespace="imfpush")),
    *[
        path(f"{runtime}/api/az/v1/{name}", view.as_view(), name=f"mfp-{name}-{runtime}")
        for runtime in settings.HERALD_MFP_RUNTIMES
        for name, view in (("token", MfpTokenView), ("introspection", MfpIntrospectionView))
    ],
    path("", include(("config.api_urls", "api"), namespace="api")),
    re_path(r"^.*$", api_not_found),
]

handler400 = "core.views.api_bad_request"
handler403 = "core.views.api_forbidden"
handler404 = "core.views.api_not_found"
handler500 = "core.views.api_server_error"
