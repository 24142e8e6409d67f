"""Segments (onesignal-api.md §3.4): ``/apps/{app_id}/segments[/{segment_id}]``, App key."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from core.api.base import AppKeyView, parse_uuid
from core.api.errors import ApiError
from core.api.schema_docs import ERROR_RESPONSES, ErrorsSerializer, SuccessSerializer, SuccessWithIdSerializer
from players.api.views import query_int
from segments.api.serializers import (
    SegmentCreateInputSerializer,
    SegmentDetailSerializer,
    SegmentFailureSerializer,
    SegmentPageSerializer,
    SegmentPayloadSerializer,
    SegmentSummarySerializer,
    SegmentUpdateInputSerializer,
)
from segments.selectors import MAX_PAGE_SIZE, segment_find, segment_page, subscriber_count
from segments.services import UNSET, segment_create, segment_delete, segment_error, segment_update

APP_KEY = [{"app_key": []}]
NOT_FOUND = "segment not found"
FAILURE_RESPONSES = {
    400: OpenApiResponse(SegmentFailureSerializer, description="Bad input (or a bad key under /api/v1)"),
    403: OpenApiResponse(SegmentFailureSerializer, description="Read-only segment, or a bad key"),
    409: OpenApiResponse(SegmentFailureSerializer, description="The id or the name is taken"),
}


def segment_input(serializer_class, body: dict) -> dict:
    """The validated body, or 400 ``{"success": false, "errors": [<first problem>]}``."""
    serializer = serializer_class(data=body)
    if not serializer.is_valid():
        first = next(iter(serializer.errors.values()))
        message = first[0] if isinstance(first, list) else first
        raise segment_error(400, str(message))
    return dict(serializer.validated_data)


class SegmentCollectionView(AppKeyView):
    @property
    def rate_limit_bucket(self):
        return "players_read" if self.request.method == "GET" else "players_write"

    @extend_schema(
        operation_id="get_segments",
        summary="View segments",
        auth=APP_KEY,
        parameters=[
            OpenApiParameter("limit", int, description="At most 300 (default 300)"),
            OpenApiParameter("offset", int),
        ],
        responses={200: SegmentPageSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, app_id: str):
        limit = min(query_int(request, "limit", MAX_PAGE_SIZE) or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = query_int(request, "offset", 0)
        total, segments = segment_page(app=self.app, limit=limit, offset=offset)
        return Response(
            {
                "total_count": total,
                "offset": offset,
                "limit": limit,
                "segments": SegmentSummarySerializer(segments, many=True, context={"app": self.app}).data,
            }
        )

    @extend_schema(
        operation_id="create_segment",
        summary="Create a segment",
        auth=APP_KEY,
        request=SegmentCreateInputSerializer,
        responses={201: SuccessWithIdSerializer, **ERROR_RESPONSES, **FAILURE_RESPONSES},
    )
    def post(self, request, app_id: str):
        data = segment_input(SegmentCreateInputSerializer, self.body)
        segment = segment_create(
            app=self.app,
            name=data["name"],
            filters=data.get("filters"),
            description=data.get("description"),
            segment_id=data.get("id"),
        )
        return Response({"success": True, "id": str(segment.id)}, status=201)


class SegmentDetailView(AppKeyView):
    @property
    def rate_limit_bucket(self):
        return "players_read" if self.request.method == "GET" else "players_write"

    def scoped_segment(self, segment_id: str):
        return segment_find(app=self.app, segment_id=parse_uuid(segment_id))

    @extend_schema(
        operation_id="get_segment",
        summary="View a segment",
        auth=APP_KEY,
        parameters=[
            OpenApiParameter(
                "include-segment-detail", bool, description="Add the segment's definition as payload"
            )
        ],
        responses={
            200: SegmentDetailSerializer,
            404: OpenApiResponse(ErrorsSerializer, description="segment not found"),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request, app_id: str, segment_id: str):
        segment = self.scoped_segment(segment_id)
        if segment is None:
            raise ApiError.not_found(NOT_FOUND)
        data: dict = {"subscriber_count": subscriber_count(app=self.app, segment=segment)}
        if request.query_params.get("include-segment-detail", "").lower() in ("true", "1"):
            data["payload"] = SegmentPayloadSerializer(segment, context={"app": self.app}).data
        return Response(data)

    @extend_schema(
        operation_id="update_segment",
        summary="Update a segment",
        auth=APP_KEY,
        request=SegmentUpdateInputSerializer,
        responses={
            200: SuccessWithIdSerializer,
            404: OpenApiResponse(SegmentFailureSerializer, description="segment not found"),
            **ERROR_RESPONSES,
            **FAILURE_RESPONSES,
        },
    )
    def patch(self, request, app_id: str, segment_id: str):
        segment = self.scoped_segment(segment_id)
        if segment is None:
            raise segment_error(404, NOT_FOUND)
        data = segment_input(SegmentUpdateInputSerializer, self.body)
        updated = segment_update(
            app=self.app,
            segment=segment,
            name=data["name"],
            description=data.get("description", UNSET),
            filters=data.get("filters", UNSET),
        )
        return Response({"success": True, "id": str(updated.id)})

    @extend_schema(
        operation_id="delete_segment",
        summary="Delete a segment",
        auth=APP_KEY,
        responses={
            200: SuccessSerializer,
            404: OpenApiResponse(SuccessSerializer, description='{"success": false}'),
            **ERROR_RESPONSES,
            **FAILURE_RESPONSES,
        },
    )
    def delete(self, request, app_id: str, segment_id: str):
        segment = self.scoped_segment(segment_id)
        if segment is None:
            raise ApiError(404, {"success": False})
        segment_delete(app=self.app, segment=segment)
        return Response({"success": True})
