"""The tenant-scoped base view of ``/imfpush/v1``.

Every endpoint derives from ``MfpView`` (or ``MfpAppView`` for ``/apps/{applicationId}/…``),
which runs the checks in the documented order (mobilefirst-push-api.md §1.3) before any
handler: method (405) → Accept (406) → token (401) → scope (403) → Content-Type (405) → body
size (413) and JSON (400) → application in the caller's organization (404). Handlers read
``self.organization``, ``self.app``, ``self.application_id`` and ``self.body``; they cannot
override the checks (enforced in ``__init_subclass__``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from django.http import Http404
from django.utils import translation
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError
from core.api.limits import json_too_deep
from core.api.ratelimit import check_rate_limit
from core.logs import bind_app
from imfpush.api.negotiation import MfpJsonRenderer, MfpNegotiation, accepts, content_type_of
from imfpush.errors import (
    APP_NOT_FOUND,
    BODY_TOO_LARGE,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_FILTER,
    INVALID_JSON,
    METHOD_NOT_ALLOWED,
    NUL_CHARACTER,
    PATH_NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNSUPPORTED_ACCEPT,
    UNSUPPORTED_CONTENT_TYPE,
    MfpError,
)
from imfpush.oauth import active_token
from imfpush.scopes import Requirement
from imfpush.selectors import mfp_application_or_404

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
BASE_PATH = "/imfpush/v1"


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _bearer_error(status: int, code: str, message, www_authenticate: str) -> MfpError:
    return MfpError(status, code, message, headers={"WWW-Authenticate": www_authenticate})


class MfpView(APIView):
    """Checks shared by every operation; ``requirements`` maps each method to its scope."""

    http_method_names = ["get", "post", "put", "delete"]
    requirements: ClassVar[dict[str, Requirement]] = {}
    authenticated: ClassVar[bool] = True
    produces: ClassVar[str] = "application/json"
    multipart_methods: ClassVar[tuple[str, ...]] = ()
    renderer_classes = [MfpJsonRenderer]
    content_negotiation_class = MfpNegotiation
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = []
    _final_methods: ClassVar[tuple[str, ...]] = ("initial", "authenticate_token", "check_scope", "dispatch")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_base"):
            return
        for name in cls._final_methods:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} may not override {name}(): the checks live there")

    _base = True

    # --- dispatch: language first, so every error below is already translated ------------------
    def dispatch(self, request, *args, **kwargs):
        language = translation.get_language_from_request(request)
        with translation.override(language):
            response = super().dispatch(request, *args, **kwargs)
        response["Content-Language"] = "en-US" if language.startswith("en") else language
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        method = request.method.upper()
        if method not in self.allowed_methods:
            raise MfpError(405, "FPWSE9005E", METHOD_NOT_ALLOWED, params={"method": method})
        if not accepts(request.META.get("HTTP_ACCEPT"), self.produces):
            raise MfpError(406, "FPWSE9004E", UNSUPPORTED_ACCEPT)
        self.granted: set[str] = set()
        self.client = None
        self._raw_body: Any = None
        if self.authenticated:
            self.authenticate_token()
            self.organization = self.client.organization
            self._check_rate_limit()
        if method in ("POST", "PUT"):
            self._check_content_type(method)
        self._reject_nul()
        self.before_scope_check()
        if self.authenticated:
            self.check_scope(self.requirements[method], self.scope_application_id())
        self.resolve_application()
        bind_app(getattr(self, "app", None))  # the app id on every log line of this request

    # --- authentication and scope -------------------------------------------------------------
    def authenticate_token(self) -> None:
        header = self.request.META.get("HTTP_AUTHORIZATION", "").strip()
        scheme, _, token = header.partition(" ")
        if not header:
            raise _bearer_error(401, "FPWSE9001E", UNAUTHORIZED, "Bearer")
        token = token.strip()
        invalid = _bearer_error(401, "FPWSE9001E", UNAUTHORIZED, 'Bearer error="invalid_token"')
        if scheme.lower() != "bearer" or not token:
            raise invalid
        access = active_token(token)
        if access is None:
            raise invalid
        self.client = access.application
        self.granted = set(access.scope.split())

    def _check_rate_limit(self) -> None:
        try:
            check_rate_limit("mfp", f"client:{self.client.pk}")
        except ApiError as exc:  # the limiter speaks OneSignal's body; answer in MFP's
            raise MfpError(429, "FPWSE9007E", RATE_LIMITED, headers=exc.headers) from exc

    def check_scope(self, requirement: Requirement, application_id: str | None) -> None:
        if not requirement.satisfied_by(self.granted, application_id):
            needed = requirement.canonical(application_id)
            raise _bearer_error(
                403, "FPWSE9002E", FORBIDDEN, f'Bearer error="insufficient_scope", scope="{needed}"'
            )

    def scope_application_id(self) -> str | None:
        return self.kwargs.get("application_id")

    def before_scope_check(self) -> None:
        """Hook for ``POST /apps/``, whose scope names the applicationId in its body."""

    def resolve_application(self) -> None:
        """Overridden by ``MfpAppView``; collection views of the organization need nothing."""

    # --- body ---------------------------------------------------------------------------------
    def _check_content_type(self, method: str) -> None:
        content_type = content_type_of(self.request)
        expected = "multipart/form-data" if method in self.multipart_methods else "application/json"
        if content_type != expected:
            raise MfpError(405, "FPWSE9003E", UNSUPPORTED_CONTENT_TYPE)
        try:
            length = int(self.request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise MfpError(413, "FPWSE9006E", BODY_TOO_LARGE, params={"limit": MAX_BODY_BYTES})
        if expected == "application/json":
            raw = self.request._request.body
            if len(raw) > MAX_BODY_BYTES:
                raise MfpError(413, "FPWSE9006E", BODY_TOO_LARGE, params={"limit": MAX_BODY_BYTES})
            try:
                self._raw_body = orjson.loads(raw) if raw.strip() else None
            except orjson.JSONDecodeError as exc:
                raise MfpError(400, "FPWSE0004E", INVALID_JSON) from exc
            if json_too_deep(self._raw_body):  # core/api/limits.py: deeper bodies break later
                raise MfpError(400, "FPWSE0004E", INVALID_JSON)

    def _reject_nul(self) -> None:
        """PostgreSQL text cannot hold NUL (U+0000): a query value or body string with one is a
        ``400`` naming it, never a database error."""
        for name, values in self.request.query_params.lists():
            for value in values:
                if "\x00" not in value and "\x00" not in name:
                    continue
                if name == "filter":
                    params = {"filter": value, "reason": NUL_CHARACTER}
                    raise MfpError(400, "FPWSE0007E", INVALID_FILTER, params=params)
                raise MfpError.invalid(name, NUL_CHARACTER)
        if isinstance(self._raw_body, dict):
            for name, value in self._raw_body.items():
                if _has_nul(name) or _has_nul(value):
                    raise MfpError.invalid(name, NUL_CHARACTER)

    @property
    def body(self) -> Any:
        """The parsed JSON body (any JSON type; ``None`` when empty). GET/DELETE bodies are ignored."""
        return self._raw_body

    def body_object(self) -> dict:
        if not isinstance(self._raw_body, dict):
            raise MfpError(400, "FPWSE0004E", INVALID_JSON)
        return self._raw_body

    # --- links --------------------------------------------------------------------------------
    def href(self, *parts: str) -> str:
        path = "/".join(quote(str(part), safe="") for part in parts)
        return self.request.build_absolute_uri(f"{BASE_PATH}/{path}")

    # --- errors -------------------------------------------------------------------------------
    def handle_exception(self, exc):
        if isinstance(exc, MfpError):
            return self._error_response(exc)
        if isinstance(exc, Http404 | drf_exceptions.NotFound):
            return self._error_response(MfpError.not_found(PATH_NOT_FOUND))
        if isinstance(exc, drf_exceptions.ParseError):
            return self._error_response(MfpError(400, "FPWSE0004E", INVALID_JSON))
        if isinstance(exc, drf_exceptions.Throttled):
            return super().handle_exception(exc)
        logger.exception("imfpush request failed", extra={"path": self.request.path})
        return self._error_response(MfpError(500, "FPWSE0010E", INTERNAL_ERROR))

    def _error_response(self, error: MfpError) -> Response:
        response = Response(error.body(), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response


class MfpAppView(MfpView):
    """``/apps/{applicationId}/…``: the application is resolved inside the caller's organization."""

    _base = True

    def resolve_application(self) -> None:
        self.application_id = self.kwargs["application_id"]
        if "\x00" in self.application_id:
            raise MfpError.not_found(APP_NOT_FOUND)
        self.mfp_application = mfp_application_or_404(self.organization, self.application_id)
        self.app = self.mfp_application.app
