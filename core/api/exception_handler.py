from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from core.api.errors import ApiError

logger = logging.getLogger(__name__)


def flatten_validation_errors(detail, field: str | None = None) -> list[str]:
    """DRF's nested error dicts as OneSignal-style flat strings: "<field> <message>"."""
    if isinstance(detail, dict):
        messages: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else None
            messages += flatten_validation_errors(
                value, f"{field}.{name}" if field and name else name or field
            )
        return messages
    if isinstance(detail, list):
        messages = []
        for item in detail:
            messages += flatten_validation_errors(item, field)
        return messages
    return [f"{field}: {detail}" if field else str(detail)]


def onesignal_exception_handler(exc, context):
    if isinstance(exc, ApiError):
        return Response(exc.body, status=exc.status, headers=exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": flatten_validation_errors(exc.detail)[:1]}, status=400)
    if isinstance(exc, Http404):
        return Response({"errors": ["Not Found"]}, status=404)
    if isinstance(exc, RequestDataTooBig):
        return Response({"errors": ["Request body is too large"]}, status=413)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response({"errors": ["Method Not Allowed"]}, status=405)
    if isinstance(exc, exceptions.NotAcceptable):
        return Response({"errors": ["Not Acceptable"]}, status=406)
    if isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        return Response({"errors": ["Forbidden"]}, status=403)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else flatten_validation_errors(exc.detail)[0]
        return Response({"errors": [str(detail)]}, status=exc.status_code)
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response({"errors": ["Internal Server Error"]}, status=500)
