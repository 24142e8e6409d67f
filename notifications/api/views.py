from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.base import AppKeyView, DeviceView, parse_uuid
from core.api.errors import ApiError
from core.api.schema_docs import ERROR_RESPONSES, NOT_FOUND_RESPONSES, SuccessSerializer
from notifications.api.serializers import (
    CreateNotificationOutputSerializer,
    DeviceEventInputSerializer,
    HistoryInputSerializer,
    HistoryOutputSerializer,
    NotificationInputSerializer,
    NotificationOutputSerializer,
    NotificationPageSerializer,
)
from notifications.history import notification_events_export_start, notification_history_start
from notifications.selectors import MAX_PAGE_SIZE, notification_get, notification_output, notification_page
from notifications.services import (
    NOT_FOUND,
    notification_cancel,
    notification_create,
    notification_report_received,
    notification_track_open,
)
from players.api.serializers import CsvExportOutputSerializer
from players.api.views import APP_ID_QUERY, export_url_base, query_int

APP_KEY = [{"app_key": []}]
DEVICE = [{"app_key": []}, {}]


class NotificationCollectionView(AppKeyView):
    @property
    def rate_limit_bucket(self):
        return "notifications_read" if self.request.method == "GET" else "notifications_create"

    @extend_schema(
        operation_id="create_notification",
        summary="Create a notification",
        auth=APP_KEY,
        request=NotificationInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={200: CreateNotificationOutputSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        response, replayed = notification_create(
            app=self.app, body=self.body, header_key=request.META.get("HTTP_IDEMPOTENCY_KEY")
        )
        return Response(response, headers={"Idempotent-Replayed": "true"} if replayed else None)

    @extend_schema(
        operation_id="get_notifications",
        summary="View notifications",
        auth=APP_KEY,
        parameters=[
            APP_ID_QUERY,
            OpenApiParameter("limit", int, description="At most 50"),
            OpenApiParameter("offset", int),
            OpenApiParameter("kind", int),
        ],
        responses={200: NotificationPageSerializer, **ERROR_RESPONSES},
    )
    def get(self, request):
        limit = min(query_int(request, "limit", MAX_PAGE_SIZE) or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = query_int(request, "offset", 0)
        kind = query_int(request, "kind", -1)
        total, notifications = notification_page(
            app=self.app, limit=limit, offset=offset, kind=None if kind < 0 else kind
        )
        return Response(
            {
                "total_count": total,
                "offset": offset,
                "limit": limit,
                "notifications": [notification_output(n) for n in notifications],
            }
        )


class NotificationDetailView(DeviceView):
    """GET and DELETE need the App key; PUT is the SDK's "opened" report, keyless."""

    @property
    def rate_limit_bucket(self):
        return {"GET": "notifications_read", "DELETE": "notifications_create"}.get(
            self.request.method, "players_write"
        )

    def key_required(self) -> bool:
        return self.request.method in ("GET", "DELETE")

    @extend_schema(
        operation_id="get_notification",
        summary="View a notification",
        auth=APP_KEY,
        parameters=[APP_ID_QUERY],
        responses={200: NotificationOutputSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def get(self, request, notification_id: str):
        notification = notification_get(app=self.app, notification_id=parse_uuid(notification_id))
        if notification is None:
            raise ApiError.not_found(NOT_FOUND)
        return Response(notification_output(notification))

    @extend_schema(
        operation_id="cancel_notification",
        summary="Cancel a notification",
        auth=APP_KEY,
        parameters=[APP_ID_QUERY],
        responses={200: SuccessSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def delete(self, request, notification_id: str):
        notification_cancel(app=self.app, notification_id=notification_id)
        return Response({"success": True})

    @extend_schema(
        operation_id="track_open",
        summary="Track an open (SDK)",
        auth=DEVICE,
        request=DeviceEventInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def put(self, request, notification_id: str):
        if self.body.get("opened") is True:
            notification_track_open(
                app=self.app, notification_id=notification_id, player_id=self.body.get("player_id")
            )
        return Response({"success": True})


class NotificationReceivedView(DeviceView):
    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="report_received",
        summary="Report a received notification (SDK)",
        auth=DEVICE,
        request=DeviceEventInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def put(self, request, notification_id: str):
        notification_report_received(
            app=self.app, notification_id=notification_id, player_id=self.body.get("player_id")
        )
        return Response({"success": True})


class NotificationHistoryView(AppKeyView):
    rate_limit_bucket = "exports"

    @extend_schema(
        operation_id="get_notification_history",
        summary="Notification history CSV",
        auth=APP_KEY,
        request=HistoryInputSerializer,
        responses={200: HistoryOutputSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def post(self, request, notification_id: str):
        export = notification_history_start(
            app=self.app,
            notification_id=notification_id,
            events=self.body.get("events"),
            email=self.body.get("email"),
            url_base=export_url_base(request),
        )
        return Response({"success": True, "destination_url": export.url})


class NotificationExportEventsView(AppKeyView):
    rate_limit_bucket = "exports"

    @extend_schema(
        operation_id="export_events",
        request=None,
        summary="Export a notification's events",
        auth=APP_KEY,
        parameters=[APP_ID_QUERY],
        responses={200: CsvExportOutputSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def post(self, request, notification_id: str):
        export = notification_events_export_start(
            app=self.app, notification_id=notification_id, url_base=export_url_base(request)
        )
        return Response({"csv_file_url": export.url})
