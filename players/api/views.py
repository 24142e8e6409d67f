from __future__ import annotations

import hashlib

import orjson
from django.conf import settings
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.base import AppKeyView, DeviceView, parse_uuid
from core.api.errors import NO_USER_WITH_ID, ApiError
from core.api.plain_input import plain_validated
from core.api.schema_docs import (
    ERROR_RESPONSES,
    NEEDS_POSTGRESQL_RESPONSES,
    NOT_FOUND_RESPONSES,
    SuccessSerializer,
    SuccessWithIdSerializer,
)
from players.api.serializers import (
    CsvExportInputSerializer,
    CsvExportOutputSerializer,
    CsvImportOutputSerializer,
    FocusInputSerializer,
    PlayerInputSerializer,
    PlayerOutputSerializer,
    PlayerPageSerializer,
    PurchaseInputSerializer,
    SessionInputSerializer,
    TagsInputSerializer,
)
from players.export_services import csv_export_start
from players.import_services import csv_import_start
from players.models import CsvImport
from players.selectors import MAX_PAGE_SIZE, player_get, player_page
from players.services import (
    player_delete,
    player_on_focus,
    player_on_purchase,
    player_on_session,
    player_register,
    player_update,
    players_update_tags_by_external_id,
)

APP_KEY = [{"app_key": []}]
DEVICE = [{"app_key": []}, {}]
APP_ID_QUERY = OpenApiParameter("app_id", str, OpenApiParameter.QUERY, required=True)


def validated(serializer_class, body: dict) -> dict:
    # The SDK's bodies are plain fields, checked without building the serializer; anything the
    # fast path is not sure of (and so every error) goes through DRF.
    data = plain_validated(serializer_class, body)
    if data is not None:
        return data
    serializer = serializer_class(data=body)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def export_url_base(request) -> str:
    return settings.HERALD_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


# The largest offset or limit taken: PostgreSQL's bigint, and the largest integer orjson writes
# (offset=1.8e29 was a 500 when echoed back; found by tests/fuzz).
MAX_QUERY_INT = 2**63 - 1


def query_int(request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError.bad_request(f"{name} must be a non-negative integer") from exc
    if value < 0:
        raise ApiError.bad_request(f"{name} must be a non-negative integer")
    if value > MAX_QUERY_INT:
        raise ApiError.bad_request(f"{name} must be at most {MAX_QUERY_INT}")
    return value


class PlayerDeviceView(DeviceView):
    """The SDK's player endpoints. Their services read nothing of the App but its id, so keyless
    calls take it from the per-process cache (core/api/appcache.py)."""

    app_from_cache = True


class PlayerCollectionView(PlayerDeviceView):
    """GET lists (App key); POST registers a device (no key, as the SDKs send it)."""

    @property
    def rate_limit_bucket(self):
        return "players_read" if self.request.method == "GET" else "players_write"

    def key_required(self) -> bool:
        return self.request.method == "GET"

    @extend_schema(
        operation_id="get_players",
        summary="View devices",
        auth=APP_KEY,
        parameters=[
            APP_ID_QUERY,
            OpenApiParameter("limit", int, description="At most 300"),
            OpenApiParameter("offset", int),
        ],
        responses={200: PlayerPageSerializer, **ERROR_RESPONSES},
    )
    def get(self, request):
        limit = min(query_int(request, "limit", MAX_PAGE_SIZE) or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = query_int(request, "offset", 0)
        total, players = player_page(app=self.app, limit=limit, offset=offset)
        return Response(
            {
                "total_count": total,
                "offset": offset,
                "limit": limit,
                "players": PlayerOutputSerializer(players, many=True).data,
            }
        )

    @extend_schema(
        operation_id="create_player",
        summary="Add a device (upsert by identifier)",
        auth=DEVICE,
        request=PlayerInputSerializer,
        responses={200: SuccessWithIdSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        player, _created = player_register(app=self.app, data=validated(PlayerInputSerializer, self.body))
        return Response({"success": True, "id": str(player.id)})


class PlayerDetailView(PlayerDeviceView):
    @property
    def rate_limit_bucket(self):
        return "players_read" if self.request.method == "GET" else "players_write"

    def key_required(self) -> bool:
        return self.request.method == "DELETE"

    @extend_schema(
        operation_id="get_player",
        summary="View a device",
        auth=DEVICE,
        parameters=[APP_ID_QUERY, OpenApiParameter("email_auth_hash", str)],
        responses={200: PlayerOutputSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, player_id: str):
        player = player_get(app=self.app, player_id=parse_uuid(player_id))
        if player is None:
            raise ApiError.bad_request(NO_USER_WITH_ID)
        data = PlayerOutputSerializer(player).data
        etag = '"' + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32] + '"'
        if etag in request.META.get("HTTP_IF_NONE_MATCH", ""):
            return Response(status=304, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})

    @extend_schema(
        operation_id="update_player",
        summary="Edit a device",
        auth=DEVICE,
        request=PlayerInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def put(self, request, player_id: str):
        player_update(
            app=self.app, player_id=parse_uuid(player_id), data=validated(PlayerInputSerializer, self.body)
        )
        return Response({"success": True})

    @extend_schema(
        operation_id="delete_player",
        summary="Delete a device (GDPR)",
        auth=APP_KEY,
        parameters=[APP_ID_QUERY],
        responses={200: SuccessSerializer, 404: SuccessSerializer, **ERROR_RESPONSES},
    )
    def delete(self, request, player_id: str):
        if not player_delete(app=self.app, player_id=parse_uuid(player_id)):
            return Response({"success": False}, status=404)
        return Response({"success": True})


class PlayerSessionView(PlayerDeviceView):
    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="new_session",
        summary="New session (SDK)",
        auth=DEVICE,
        request=SessionInputSerializer,
        responses={200: SuccessWithIdSerializer, **ERROR_RESPONSES},
    )
    def post(self, request, player_id: str):
        data = validated(SessionInputSerializer, self.body)
        session_player_id, created = player_on_session(
            app=self.app, player_id=parse_uuid(player_id), data=data
        )
        return Response({"success": True, "id": str(session_player_id)} if created else {"success": True})

    @extend_schema(exclude=True)  # older community clients use PUT; documented once, as POST
    def put(self, request, player_id: str):
        return self.post(request, player_id)


class PlayerPurchaseView(PlayerDeviceView):
    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="new_purchase",
        summary="Record purchases (SDK)",
        auth=DEVICE,
        request=PurchaseInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def post(self, request, player_id: str):
        data = validated(PurchaseInputSerializer, self.body)
        player_on_purchase(
            app=self.app,
            player_id=parse_uuid(player_id),
            purchases=data["purchases"],
            existing=data["existing"],
        )
        return Response({"success": True})

    @extend_schema(exclude=True)  # older community clients use PUT; documented once, as POST
    def put(self, request, player_id: str):
        return self.post(request, player_id)


class PlayerFocusView(PlayerDeviceView):
    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="increment_session_length",
        summary="Add active time (SDK)",
        auth=DEVICE,
        request=FocusInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def post(self, request, player_id: str):
        data = validated(FocusInputSerializer, self.body)
        player_on_focus(
            app=self.app,
            player_id=parse_uuid(player_id),
            active_time=data["active_time"],
            direct=data.get("direct"),
            notification_ids=data.get("notification_ids"),
        )
        return Response({"success": True})

    @extend_schema(exclude=True)  # older community clients use PUT; documented once, as POST
    def put(self, request, player_id: str):
        return self.post(request, player_id)


class ExternalUserTagsView(AppKeyView):
    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="update_player_tags",
        summary="Edit tags by external user id",
        auth=APP_KEY,
        request=TagsInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def put(self, request, app_id: str, external_user_id: str):
        data = validated(TagsInputSerializer, self.body)
        players_update_tags_by_external_id(app=self.app, external_user_id=external_user_id, tags=data["tags"])
        return Response({"success": True})


class CsvExportView(AppKeyView):
    rate_limit_bucket = "exports"

    @extend_schema(
        operation_id="export_players",
        summary="CSV export",
        auth=APP_KEY,
        parameters=[APP_ID_QUERY],
        request=CsvExportInputSerializer,
        responses={200: CsvExportOutputSerializer, **ERROR_RESPONSES, **NEEDS_POSTGRESQL_RESPONSES},
    )
    def post(self, request):
        data = validated(CsvExportInputSerializer, self.body)
        export = csv_export_start(
            app=self.app,
            url_base=export_url_base(request),
            extra_fields=data.get("extra_fields", []),
            last_active_since=data.get("last_active_since"),
            segment_name=data.get("segment_name"),
        )
        return Response({"csv_file_url": export.url})


UPLOAD_CHUNK_BYTES = 1024 * 1024
RAW_UPLOAD_TYPES = {
    "text/csv",
    "application/csv",
    "text/plain",
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
}
UPLOAD_HELP = (
    "Send the CSV file (or a gzip of it) as a multipart/form-data field named file, "
    "or as the request body with Content-Type: text/csv or application/gzip"
)


class CsvImportView(AppKeyView):
    """Herald's extension (OneSignal has no import endpoint): upsert players from a CSV with the
    columns csv_export writes, so an export can be imported again."""

    rate_limit_bucket = "exports"

    @extend_schema(
        operation_id="import_players",
        summary="CSV import (Herald extension)",
        description=(
            "Upload a CSV (plain or gzip) whose header names columns of csv_export; identifier and "
            "device_type are required. Players are upserted on (app, identifier) by a worker; poll "
            "GET /apps/{app_id}/players/csv_import/{id} for progress and the first 100 rows refused. "
            + UPLOAD_HELP
            + "."
        ),
        auth=APP_KEY,
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
            "text/csv": OpenApiTypes.BINARY,
            "application/gzip": OpenApiTypes.BINARY,
        },
        responses={202: CsvImportOutputSerializer, **ERROR_RESPONSES, **NEEDS_POSTGRESQL_RESPONSES},
    )
    def post(self, request, app_id: str):
        raw = request._request
        content_type = raw.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        try:
            length = int(raw.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.HERALD_CSV_IMPORT_MAX_BYTES
        if length > limit + UPLOAD_CHUNK_BYTES:  # room for the multipart envelope
            raise ApiError(413, {"errors": [f"The CSV file is larger than {limit} bytes"]})
        if content_type == "multipart/form-data":
            try:
                upload = raw.FILES.get("file")
            except MultiPartParserError as exc:
                raise ApiError.bad_request(f"The multipart body could not be read: {exc}"[:300]) from exc
            if upload is None:
                raise ApiError.bad_request(UPLOAD_HELP)
            chunks, file_name = upload.chunks(UPLOAD_CHUNK_BYTES), upload.name or ""
        elif content_type in RAW_UPLOAD_TYPES:
            chunks, file_name = iter(lambda: raw.read(UPLOAD_CHUNK_BYTES), b""), ""
        else:
            raise ApiError.bad_request(UPLOAD_HELP)
        job = csv_import_start(app=self.app, chunks=chunks, file_name=file_name)
        return Response(CsvImportOutputSerializer(job).data, status=202)


class CsvImportDetailView(AppKeyView):
    rate_limit_bucket = "players_read"

    @extend_schema(
        operation_id="get_player_import",
        summary="CSV import progress (Herald extension)",
        auth=APP_KEY,
        responses={200: CsvImportOutputSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSES},
    )
    def get(self, request, app_id: str, import_id: str):
        import_uuid = parse_uuid(import_id)
        job = CsvImport.objects.filter(app=self.app, pk=import_uuid).first() if import_uuid else None
        if job is None:
            raise ApiError.not_found("CSV import not found")
        return Response(CsvImportOutputSerializer(job).data)
