from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api.serializers import iso_millis
from apps.models import App
from players.api.serializers import unix
from segments.models import BuiltinSegment, Segment
from segments.services import NAME_REQUIRED

# --- input --------------------------------------------------------------------------------------


class FilterSerializer(serializers.Serializer):
    """One entry of the filter language (onesignal-api.md §6): a filter, or an operator."""

    field = serializers.CharField(required=False, help_text="tag, last_session, session_count, …")
    relation = serializers.CharField(required=False, help_text=">, <, =, !=, exists, not_exists, …")
    key = serializers.CharField(required=False, help_text="Tag key (tag) or SKU (bought_sku)")
    value = serializers.CharField(required=False)
    hours_ago = serializers.CharField(required=False, help_text="last_session / first_session")
    radius = serializers.FloatField(required=False, help_text="location: metres")
    lat = serializers.FloatField(required=False)
    long = serializers.FloatField(required=False)
    operator = serializers.ChoiceField(choices=["AND", "OR"], required=False)


@extend_schema_field(FilterSerializer(many=True))
class FiltersField(serializers.JSONField):
    """Taken as sent: segments.filters.validate_filters checks it (in the service) with the
    messages of onesignal-api.md §2.3, which DRF's own field errors would not produce."""


def name_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=128,
        error_messages={
            "required": NAME_REQUIRED,
            "blank": NAME_REQUIRED,
            "null": NAME_REQUIRED,
            "invalid": "name must be a string",
            "max_length": "name must be at most 128 characters",
        },
    )


def description_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=255,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text='At most 255 characters; "" clears it',
        error_messages={
            "invalid": "description must be a string",
            "max_length": "description must be at most 255 characters",
        },
    )


class SegmentCreateInputSerializer(serializers.Serializer):
    name = name_field()
    id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Optional; any UUID version",
        error_messages={"invalid": "id must be a valid UUID"},
    )
    description = description_field()
    filters = FiltersField(required=False, help_text="1 to 200 entries")


class SegmentUpdateInputSerializer(serializers.Serializer):
    name = name_field()
    description = description_field()
    filters = FiltersField(required=False, help_text="Replaces every filter; 1 to 200 entries")


# --- output -------------------------------------------------------------------------------------


class SegmentFailureSerializer(serializers.Serializer):
    """``{"success": false, "errors": [...]}`` (the segment endpoints' error shape).

    ``success`` is absent when the key itself is refused: that 400/403 is the shared
    ``{"errors": [...]}`` of every endpoint, answered before the segment code runs.
    """

    success = serializers.BooleanField(required=False)
    errors = serializers.ListField(child=serializers.CharField())


def _times(segment: Segment | BuiltinSegment, app: App):
    # Built-ins exist since their app does.
    if isinstance(segment, BuiltinSegment):
        return app.created_at, app.created_at
    return segment.created_at, segment.updated_at


def _segment_id(segment: Segment | BuiltinSegment, app: App) -> str:
    return str(segment.segment_id(app.id) if isinstance(segment, BuiltinSegment) else segment.id)


class SegmentSummarySerializer(serializers.Serializer):
    """A list entry. Needs ``context={"app": app}``."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    created_at = serializers.CharField(help_text="ISO 8601 with milliseconds")
    updated_at = serializers.CharField(help_text="ISO 8601 with milliseconds")
    app_id = serializers.UUIDField()
    read_only = serializers.BooleanField()
    is_active = serializers.BooleanField()

    def to_representation(self, segment: Segment | BuiltinSegment) -> dict:
        app = self.context["app"]
        created_at, updated_at = _times(segment, app)
        builtin = isinstance(segment, BuiltinSegment)
        return {
            "id": _segment_id(segment, app),
            "name": segment.name,
            "created_at": iso_millis(created_at),
            "updated_at": iso_millis(updated_at),
            "app_id": str(app.id),
            "read_only": True if builtin else segment.read_only,
            "is_active": True if builtin else segment.is_active,
        }


class SegmentPageSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    segments = SegmentSummarySerializer(many=True)


class SegmentPayloadSerializer(serializers.Serializer):
    """``payload`` of GET /segments/{id}?include-segment-detail=true. Needs ``context={"app"}``."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    created_at = serializers.IntegerField(help_text="Unix seconds")
    source = serializers.ChoiceField(choices=Segment.Source.choices)
    filters = FilterSerializer(many=True)

    def to_representation(self, segment: Segment | BuiltinSegment) -> dict:
        app = self.context["app"]
        builtin = isinstance(segment, BuiltinSegment)
        return {
            "id": _segment_id(segment, app),
            "name": segment.name,
            "description": segment.description,
            "created_at": unix(_times(segment, app)[0]),
            "source": Segment.Source.DEFAULT.value if builtin else segment.source,
            "filters": segment.filters,
        }


class SegmentDetailSerializer(serializers.Serializer):
    subscriber_count = serializers.IntegerField()
    payload = SegmentPayloadSerializer(required=False)
