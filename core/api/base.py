"""Tenant-scoped base views for the OneSignal surface.

Every API view derives from one of three bases, which resolve the tenant once, before the
handler runs, from the key in ``Authorization`` and the ``app_id`` of the request:

- ``UserKeyView``: an organization, from a User key (``/apps``);
- ``AppKeyView``: one app, from an App key valid for that app;
- ``DeviceView``: one app, keyless as OneSignal's SDKs call it (unless the app requires a key).

Subclasses read ``self.organization`` / ``self.app`` and may not override the resolution
(enforced in ``__init_subclass__``), so no handler can forget the tenant check.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import orjson
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from apps.models import App, AppKey, UserKey
from core.api import appcache
from core.api.errors import APP_ID_NOT_FOUND, INVALID_JSON, ApiError, auth_error
from core.api.limits import MAX_JSON_DEPTH, json_too_deep
from core.api.negotiation import AlwaysJson
from core.api.ratelimit import count_requests
from core.clientip import client_ip
from core.logs import bind_app

AUTH_SCHEMES = {"basic", "key", "bearer"}
_INVALID = object()
# Touch last_used_at at most this often per key, so reads do not become writes.
LAST_USED_RESOLUTION_SECONDS = 60


def parse_uuid(value: Any) -> uuid.UUID | None:
    """Any UUID version, in any case; None when it is not one (older OneSignal ids are v1)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def read_authorization_token(request) -> Any:
    """The raw key from ``Authorization: <Basic|Key|Bearer> <key>``; None when absent.

    A Basic token is the key itself, never base64 of user:password (onesignal-api.md §1.4).
    """
    header = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() not in AUTH_SCHEMES or not token:
        return _INVALID
    return token


def touch_key(key) -> None:
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        type(key).objects.filter(pk=key.pk).update(last_used_at=now)


class OneSignalView(APIView):
    """Common request handling: JSON body rules, root-dependent auth errors, rate limits."""

    rate_limit_bucket: ClassVar[str | None] = None
    # Set by resolve_tenant when it has already counted the request against its bucket.
    rate_limit_counted = False
    content_negotiation_class = AlwaysJson
    # Declared so the API docs show JSON request bodies; bodies are read by ``body``, never by
    # DRF's ``request.data``, so this parser never runs.
    parser_classes = [JSONParser]
    _final_methods: ClassVar[tuple[str, ...]] = ("initial", "resolve_tenant", "get_authenticators")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_tenant_base"):
            return
        if any(base.__dict__.get("_tenant_base") for base in cls.__mro__[1:]):
            for name in cls._final_methods:
                if name in cls.__dict__:
                    raise TypeError(f"{cls.__name__} may not override {name}(): tenant scoping lives there")

    @property
    def legacy_root(self) -> bool:
        return self.request.path.startswith("/api/v1/")

    @property
    def body(self) -> dict[str, Any]:
        """The JSON object sent, ``{}`` when empty or not declared as JSON (OneSignal does not
        parse such bodies, which is why the usual symptom is "app_id not found")."""
        if not hasattr(self, "_body"):
            self._body = self._parse_body()
        return self._body

    def _parse_body(self) -> dict[str, Any]:
        content_type = self.request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if not (content_type == "application/json" or content_type.endswith("+json")):
            return {}
        raw = self.request._request.body
        if not raw.strip():
            return {}
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError.bad_request(INVALID_JSON) from exc
        if not isinstance(parsed, dict):
            raise ApiError.bad_request("The request body must be a JSON object")
        if json_too_deep(parsed):
            raise ApiError.bad_request(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep")
        return parsed

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.key = None
        # A method the route does not have is a 405 whatever the key or app_id (onesignal-api.md
        # §2.2 rule 4); DRF would resolve the tenant first and answer its 400/403 instead.
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        self.resolve_tenant()
        bind_app(getattr(self, "app", None))  # the app id on every log line of this request
        if self.rate_limit_bucket and not self.rate_limit_counted:
            identity = f"key:{self.key.pk}" if self.key else f"app:{self.rate_limit_identity()}"
            refusal = count_requests([(self.rate_limit_bucket, identity)]).refusals[0]
            if refusal is not None:
                raise refusal

    def rate_limit_identity(self) -> str:
        return "anonymous"

    def resolve_tenant(self) -> None:
        raise NotImplementedError


class UserKeyView(OneSignalView):
    """Organization-level endpoints: ``/apps``. Sets ``self.organization``."""

    _tenant_base = True
    rate_limit_bucket = "apps"

    def resolve_tenant(self) -> None:
        token = read_authorization_token(self.request)
        key = None
        if isinstance(token, str):
            key = UserKey.objects.select_related("organization").matching(token)
        if key is None:
            raise auth_error(legacy_root=self.legacy_root, user_key=True)
        touch_key(key)
        self.key = key
        self.organization = key.organization

    def scoped_apps(self):
        return App.objects.filter(organization=self.organization)


class AppScopedView(OneSignalView):
    """Resolves ``app_id`` from the path, then the query string, then the JSON body."""

    def requested_app_id(self) -> str:
        from_path = self.kwargs.get("app_id")
        if from_path:
            return from_path
        from_query = self.request.query_params.get("app_id")
        from_body = self.body.get("app_id") if self.request.method not in ("GET", "HEAD", "DELETE") else None
        if from_query and from_body and str(from_body).lower() != from_query.lower():
            raise ApiError.bad_request("app_id in the query string and in the body differ")
        app_id = from_query or from_body
        if not app_id:
            raise ApiError.bad_request(APP_ID_NOT_FOUND)
        if not isinstance(app_id, str):
            raise ApiError.bad_request(f"app_id must be a string, got {app_id!r}"[:200])
        return app_id

    def rate_limit_identity(self) -> str:
        return str(self.app.pk)

    def app_for_key(self, token: Any, app_id: str) -> App:
        key = AppKey.objects.select_related("app").matching(token) if isinstance(token, str) else None
        # Another app's key is refused exactly like a wrong key, so app ids cannot be probed.
        if key is None or parse_uuid(app_id) != key.app_id:
            raise auth_error(legacy_root=self.legacy_root, user_key=False)
        touch_key(key)
        self.key = key
        return key.app


class AppKeyView(AppScopedView):
    """App-level endpoints that need the App key. Sets ``self.app``."""

    _tenant_base = True

    def resolve_tenant(self) -> None:
        app_id = self.requested_app_id()
        self.app = self.app_for_key(read_authorization_token(self.request), app_id)


class DeviceView(AppScopedView):
    """Endpoints the device SDKs call with no key. A key, when sent, must be valid."""

    _tenant_base = True
    # Keyless calls may take the App from the per-process cache (core/api/appcache.py): views
    # that read nothing from the App but its id and its keyless switch (the SDK's writes).
    app_from_cache: ClassVar[bool] = False

    def resolve_tenant(self) -> None:
        app_id = self.requested_app_id()
        token = read_authorization_token(self.request)
        if token is not None or self.key_required():
            self.app = self.app_for_key(token, app_id)
            return
        app_uuid = parse_uuid(app_id)
        # Keyless calls are also limited per client address, before any lookup: one source
        # cannot flood an app with players or events, nor probe app ids, faster than this. The
        # app's own bucket (keyed by the app id sent) is counted in the same Redis round trip,
        # which also reads the apps' generation for the App cache; an address over its limit is
        # not counted against the app. The app's 429 comes after the lookup, as for a keyed call.
        checks = [("device_ip", f"ip:{client_ip(self.request)}")]
        if self.rate_limit_bucket and app_uuid is not None:
            checks.append((self.rate_limit_bucket, f"app:{app_uuid}"))
        counted = count_requests(checks, read=appcache.GENERATION_KEY)
        if counted.refusals[0] is not None:
            raise counted.refusals[0]
        app = None
        if app_uuid is not None:
            app = appcache.device_app(app_uuid, counted.value if self.app_from_cache else None)
        if app is None:
            raise ApiError.bad_request(f"Couldn't find app with id = {app_id}"[:300])
        if not app.allow_unauthenticated_device_calls:
            raise auth_error(legacy_root=self.legacy_root, user_key=False)
        self.app = app
        if len(checks) > 1:
            self.rate_limit_counted = True
            if counted.refusals[1] is not None:
                raise counted.refusals[1]

    def key_required(self) -> bool:
        """Methods of a device route that still need the App key (listing, deleting)."""
        return False
