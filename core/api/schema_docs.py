"""Shared OpenAPI descriptions of OneSignal's error envelopes."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorsSerializer = inline_serializer(
    name="Errors",
    fields={
        "errors": serializers.ListField(child=serializers.CharField()),
        "reference": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
RateLimitSerializer = inline_serializer(
    name="RateLimitError",
    fields={"errors": serializers.ListField(child=serializers.CharField()), "limit": serializers.CharField()},
)
SuccessSerializer = inline_serializer(name="Success", fields={"success": serializers.BooleanField()})
SuccessWithIdSerializer = inline_serializer(
    name="SuccessWithId",
    fields={"success": serializers.BooleanField(), "id": serializers.UUIDField(required=False)},
)

ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorsSerializer, description="Bad request, or a bad key under /api/v1"),
    403: OpenApiResponse(ErrorsSerializer, description="Bad or missing key (current root)"),
    413: OpenApiResponse(ErrorsSerializer, description="Body too large"),
    429: OpenApiResponse(RateLimitSerializer, description="Rate limited; see Retry-After"),
}
# The players' CSV import and export run on PostgreSQL's COPY.
NEEDS_POSTGRESQL_RESPONSES = {
    501: OpenApiResponse(ErrorsSerializer, description="This server's database is not PostgreSQL")
}
# Operations on one resource named in the path, which may not exist in the key's app.
NOT_FOUND_RESPONSES = {404: OpenApiResponse(ErrorsSerializer, description="Not found in this app")}
