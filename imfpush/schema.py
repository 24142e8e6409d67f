"""The OpenAPI description of ``/imfpush/v1``, served at ``GET /imfpush/v1/swagger.json`` (§1.2).

drf-spectacular generates it from the routes, as it does the OneSignal schema, but as a document
of its own: the OneSignal schema leaves ``/imfpush`` out (``core.api.schema``), and this one
holds only the ``MfpView`` routes. Everything an operation needs to be described is already on
its view, so nothing is written by hand per operation:

- ``MfpAutoSchema`` (attached to every ``MfpView`` subclass by ``MfpViewSchemaExtension``) reads
  the view's ``requirements`` for the OAuth 2 security requirement: the canonical scope plus
  ``push.application.{applicationId}``, then each accepted alias and ``push.mobileclient``,
  as alternatives (§2.4-2.7). ``authenticated = False`` views (health) have none.
- ``produces`` and ``multipart_methods`` give the media types, and the view docstrings the text.
- Success codes follow the contract's tables; errors use the ``{code, message}`` body (§1.7).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiJsonRenderer2
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from imfpush.api.base import BASE_PATH, MfpAppView, MfpView
from imfpush.scopes import ANY_APPLICATION, APPLICATION_SCOPE_PREFIX, MOBILE_CLIENT

SECURITY_SCHEME = "mfpOAuth2"
TOKEN_PATH = "/mfp/api/az/v1/token"  # noqa: S105 (a URL path, not a secret)
APPLICATION_SCOPE = APPLICATION_SCOPE_PREFIX + "{applicationId}"

# §2.5: what a client may request (push.application.<applicationId> is one scope per App).
SCOPES = {
    ANY_APPLICATION: "GET /apps/, and any App of the client's organization",
    "apps.read": "Read applications",
    "apps.write": "Create, enable or disable, and delete applications",
    "settings.read": "GET …/settings",
    "apnsConf.read": "Read the APNs configuration",
    "apnsConf.write": "Set or delete the APNs configuration",
    "apnsCert.read": "GET …/settings/apnsCert",
    "gcmConf.read": "Read the GCM/FCM configuration",
    "gcmConf.write": "Set or delete the GCM/FCM configuration",
    "gcmConfPublic.read": "GET …/settings/gcmConfPublic",
    "wnsConf.read": "Read the WNS configuration",
    "wnsConf.write": "Set or delete the WNS configuration",
    "smsConf.read": "Read the SMS gateway configuration",
    "smsConf.write": "Set or delete the SMS gateway configuration",
    "devices.read": "Read device registrations",
    "devices.write": "Register, update and delete devices",
    "subscriptions.read": "Read subscriptions",
    "subscriptions.write": "Subscribe and unsubscribe devices",
    "tags.read": "Read tags",
    "tags.write": "Create, update and delete tags",
    "messages.read": "Read messages",
    "messages.write": "Send and delete messages",
    "webhooks.read": "Read webhooks",
    "webhooks.write": "Create, update and delete webhooks",
    MOBILE_CLIENT: "Device-side operations (registration, subscriptions, tags, gcmConfPublic)",
}

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable, never localized (e.g. FPWSE0001E)."},
        "message": {"type": "string", "description": "Localized through Accept-Language."},
    },
    "required": ["code", "message"],
}
ERROR_TEXT = {
    "400": "Invalid JSON, an invalid property or query parameter (FPWSE0004E, FPWSE0005E, …)",
    "401": "No token, or an invalid, expired or revoked one (FPWSE9001E)",
    "403": "The token lacks a required scope (FPWSE9002E)",
    "404": "Unknown application or resource (FPWSE0001E, FPWSE0003E, FPWSE0012E)",
    "405": "Method not allowed (FPWSE9005E) or Content-Type not accepted (FPWSE9003E)",
    "406": "Accept does not allow the response type (FPWSE9004E)",
    "409": "Already exists (FPWSE0002E)",
    "413": "Body larger than 1 MiB (FPWSE9006E)",
    "500": "Internal error (FPWSE0010E)",
}

# Success codes of the contract's tables (§3), by method and the path's last literal segment.
SUCCESS = {
    ("POST", "messages"): ("202",),
    ("POST", "bulk"): ("202",),
    ("POST", "devices"): ("201", "200"),
    ("POST", "subscriptions"): ("201", "200", "207"),
}
CREATES = {"apps", "tags", "webhooks"}  # POST here may answer 409
COLLECTION_QUERY = {
    "apps": (),
    "devices": ("userId",),
    "subscriptions": ("deviceId", "tagName", "userId"),
    "tags": ("subscriptionCount",),
    "webhooks": (),
}
PATH_PARAMETERS = {
    "application_id": "The MobileFirst applicationId (an App without one: its OneSignal app id)",
    "device_id": "The device's deviceId",
    "tag_name": "The tag name",
    "subscription_id": "The subscriptionId",
    "message_id": "The messageId",
    "webhook_name": "The webhook name",
}
TAGS = {
    "settings": "Settings",
    "devices": "Devices",
    "subscriptions": "Subscriptions",
    "tags": "Tags",
    "messages": "Messages",
    "webhooks": "Webhooks",
    "health": "Health",
}


def _object(required: tuple[str, ...] = (), **properties: dict) -> dict:
    """A request body object; unknown properties are ignored by the API (§1.5), so allowed."""
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_STRING = {"type": "string"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_DEVICE = {
    "deviceId": {**_NAME, "pattern": "^[^/]+$"},
    "token": _STRING,
    "platform": {"type": "string", "enum": ["A", "G", "W"]},
    "userId": {"type": "string", "maxLength": 254},
    "phoneNumber": _STRING,
    "variables": {"type": "object"},
}
_TAG = {"name": _NAME, "description": _STRING}
_WEBHOOK = {
    "name": _NAME,
    "url": {"type": "string", "format": "uri"},
    "eventTypes": {
        "type": "string",
        "description": "Comma-separated: onDeviceRegister, onDeviceUpdate, onDeviceUnregister, "
        "onSubscribe, onUnsubscribe, onNotificationStatusChange, onNotificationFailure",
    },
}
_MESSAGE = _object(
    ("message",),
    message=_object(("alert",), alert={"type": "string", "minLength": 1}, url=_STRING),
    notificationType={"type": "integer", "enum": [1, 2, 3]},
    target=_object(
        deviceIds={"type": "array", "items": _STRING, "minItems": 1},
        userIds={"type": "array", "items": _STRING, "minItems": 1},
        platforms={"type": "array", "items": {"type": "string", "enum": ["A", "G", "W"]}, "minItems": 1},
        tagNames={"type": "array", "items": _STRING, "minItems": 1},
    ),
    settings=_object(apns={"type": "object"}, gcm={"type": "object"}, wns={"type": "object"}),
)
# JSON request bodies by method and path below /imfpush/v1 (path parameters as {}), from the
# contract's tables and examples (§3, §4). Bodies not listed are described as any object.
REQUEST_BODIES = {
    ("POST", "apps"): _object(
        ("applicationId",),
        applicationId={"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"},
        enabled={"type": "boolean"},
    ),
    ("PUT", "apps/{}/status"): _object(("enabled",), enabled={"type": "boolean"}),
    ("POST", "apps/{}/devices"): _object(("deviceId", "token", "platform"), **_DEVICE),
    ("PUT", "apps/{}/devices/{}"): _object(**_DEVICE),
    ("POST", "apps/{}/tags"): _object(("name",), **_TAG),
    ("PUT", "apps/{}/tags/{}"): _object(**_TAG),
    ("POST", "apps/{}/subscriptions"): _object(
        ("deviceId",), deviceId=_NAME, tagName=_NAME, tagNames={"type": "array", "items": _NAME}
    ),
    ("POST", "apps/{}/webhooks"): _object(("name", "url", "eventTypes"), **_WEBHOOK),
    ("PUT", "apps/{}/webhooks"): _object(("name",), **_WEBHOOK),
    ("PUT", "apps/{}/webhooks/{}"): _object(**_WEBHOOK),
    ("PUT", "apps/{}/settings/gcmConf"): _object(
        ("senderId",), apiKey=_STRING, senderId=_STRING, serviceAccount={"type": "object"}
    ),
    ("PUT", "apps/{}/settings/wnsConf"): _object(
        ("clientSecret", "packageSID"), clientSecret=_STRING, packageSID=_STRING
    ),
    ("PUT", "apps/{}/settings/smsConf"): _object(
        ("host", "port", "programName"),
        name=_STRING,
        host=_STRING,
        port={"type": "integer", "minimum": 1, "maximum": 65535},
        programName=_STRING,
        parameters={
            "type": "array",
            "items": _object(("name", "value"), name=_STRING, value=_STRING, encode={"type": "boolean"}),
        },
    ),
    ("POST", "apps/{}/messages"): _MESSAGE,
    ("POST", "apps/{}/messages/bulk"): {"type": "array", "items": _MESSAGE, "minItems": 1},
}


def _entity(required: tuple[str, ...], **properties: dict) -> dict:
    """A response object: the properties the contract guarantees are required; optional ones are
    left out when unset, never null (§1.5)."""
    return {"type": "object", "required": list(required), "properties": properties}


def _page(key: str, item: dict) -> dict:
    return _entity(
        (key, "pageInfo"),
        **{
            key: {"type": "array", "items": item},
            "pageInfo": _entity(
                ("count", "totalCount", "next", "previous"),
                count={"type": "integer", "minimum": 0},
                totalCount={"type": "integer", "minimum": 0},
                next=_STRING,
                previous=_STRING,
            ),
        },
    )


_TIME = {"type": "string", "pattern": "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$"}
_MODE = {"type": "string", "enum": ["API", "ADMIN", "DASHBOARD", "SDK"]}
_APPLICATION = _entity(
    ("applicationId", "href"), applicationId=_STRING, href=_STRING, enabled={"type": "boolean"}
)
_DEVICE_OUT = _entity(
    ("deviceId", "href", "userId"),
    deviceId=_STRING,
    href=_STRING,
    userId=_STRING,
    createdMode=_STRING,
    createdTime=_TIME,
    lastUpdatedTime=_TIME,
    platform={"type": "string", "enum": ["A", "G", "W"]},
    token=_STRING,
    phoneNumber=_STRING,
    userAgent=_STRING,
)
_TAG_OUT = _entity(
    ("href", "name"),
    href=_STRING,
    name=_STRING,
    createdMode=_STRING,
    createdTime=_TIME,
    description=_STRING,
    lastUpdatedTime=_TIME,
    subscriptionCount={"type": "integer", "minimum": 0},
)
_SUBSCRIPTION_OUT = _entity(
    ("deviceId", "href", "subscriptionId", "tagName", "userId"),
    deviceId=_STRING,
    href=_STRING,
    subscriptionId=_STRING,
    tagName=_STRING,
    userId=_STRING,
    createdMode=_STRING,
    createdTime=_TIME,
    platform={"type": "string", "enum": ["A", "G", "W"]},
    token=_STRING,
)
_WEBHOOK_OUT = _entity(
    ("eventTypes", "href", "name", "url"), eventTypes=_STRING, href=_STRING, name=_STRING, url=_STRING
)
# Success bodies by method, path below /imfpush/v1 (path parameters as {}) and status (§3). Any
# other success body is described as an object.
RESPONSE_BODIES = {
    ("GET", "apps", "200"): _page("applications", _APPLICATION),
    ("POST", "apps", "201"): _APPLICATION,
    ("GET", "apps/{}", "200"): _APPLICATION,
    ("GET", "apps/{}/status", "200"): _entity(("enabled",), enabled={"type": "boolean"}),
    ("PUT", "apps/{}/status", "200"): _entity(
        ("applicationId", "enabled"), applicationId=_STRING, enabled={"type": "boolean"}
    ),
    ("GET", "apps/{}/devices", "200"): _page("devices", _DEVICE_OUT),
    ("POST", "apps/{}/devices", "201"): _DEVICE_OUT,
    ("POST", "apps/{}/devices", "200"): _DEVICE_OUT,
    ("GET", "apps/{}/devices/{}", "200"): _DEVICE_OUT,
    ("PUT", "apps/{}/devices/{}", "200"): _DEVICE_OUT,
    ("GET", "apps/{}/tags", "200"): _page("tags", _TAG_OUT),
    ("POST", "apps/{}/tags", "201"): _TAG_OUT,
    ("GET", "apps/{}/tags/{}", "200"): _TAG_OUT,
    ("PUT", "apps/{}/tags/{}", "200"): _TAG_OUT,
    ("GET", "apps/{}/subscriptions", "200"): _page("subscriptions", _SUBSCRIPTION_OUT),
    ("POST", "apps/{}/subscriptions", "201"): _SUBSCRIPTION_OUT,
    ("POST", "apps/{}/subscriptions", "200"): _SUBSCRIPTION_OUT,
    ("GET", "apps/{}/subscriptions/{}", "200"): _SUBSCRIPTION_OUT,
    ("GET", "apps/{}/webhooks", "200"): _page("webhooks", _WEBHOOK_OUT),
    ("POST", "apps/{}/webhooks", "201"): _WEBHOOK_OUT,
    ("PUT", "apps/{}/webhooks", "200"): _WEBHOOK_OUT,
    ("GET", "apps/{}/webhooks/{}", "200"): _WEBHOOK_OUT,
    ("PUT", "apps/{}/webhooks/{}", "200"): _WEBHOOK_OUT,
    ("POST", "apps/{}/messages", "202"): _entity(
        ("message", "messageId"), message={"type": "object"}, messageId=_STRING
    ),
    ("POST", "apps/{}/messages/bulk", "202"): _entity(
        ("messages",),
        messages={"type": "array", "items": _entity(("messageId", "href"), messageId=_STRING, href=_STRING)},
    ),
    ("GET", "apps/{}/messages/{}", "200"): _entity(
        ("messageId", "href"), messageId=_STRING, href=_STRING, createdTime=_TIME, alert=_STRING
    ),
    ("GET", "health/status", "200"): _entity(("status",), status=_STRING),
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


class MfpAutoSchema(AutoSchema):
    """Describes an ``MfpView`` operation from what the view declares."""

    def _segments(self) -> list[str]:
        return self._tokenize_path()

    def _last(self) -> str:
        segments = self._segments()
        return segments[-1] if segments else ""

    def _route(self) -> str:
        """The path below /imfpush/v1 with each parameter as ``{}`` (the key of the body tables)."""
        return re.sub(r"\{\w+\}", "{}", self.path.removeprefix(BASE_PATH).strip("/"))

    def _collection(self) -> bool:
        return not self.path.rstrip("/").endswith("}") and self._last() in COLLECTION_QUERY

    # --- identity ---------------------------------------------------------------------------------
    def get_operation_id(self) -> str:
        parts = [re.sub(r"[{}]", "", part) for part in self.path.split("/") if part]
        prefix = [part for part in BASE_PATH.split("/") if part]
        parts = parts[len(prefix) :] if parts[: len(prefix)] == prefix else parts
        words = [re.sub(r"_(\w)", lambda m: m[1].upper(), part) for part in parts]
        return self.method.lower() + "".join(word[:1].upper() + word[1:] for word in words)

    def get_tags(self) -> list[str]:
        segments = self._segments()
        if segments and segments[0] == "apps" and len(segments) > 1:
            return [TAGS.get(segments[1], "Applications")]
        return [TAGS.get(segments[0], "Applications") if segments else "Applications"]

    # --- parameters -------------------------------------------------------------------------------
    def get_override_parameters(self) -> list:
        parameters = [
            OpenApiParameter(name, str, OpenApiParameter.PATH, description=text)
            for name, text in PATH_PARAMETERS.items()
            if f"{{{name}}}" in self.path
        ]
        if self.method == "GET" and self._collection():
            parameters += [
                OpenApiParameter("offset", int, description="Items to skip (default 0)"),
                OpenApiParameter("size", int, description="Page size (default 100, at most 500)"),
                OpenApiParameter("expand", bool, description="Full items instead of abbreviated ones"),
                OpenApiParameter(
                    "filter",
                    str,
                    many=True,
                    description="name==value (exact) or name=@value (contains); commas OR, "
                    "repeated parameters AND; \\, and \\\\ escape",
                ),
                *(OpenApiParameter(name, str) for name in COLLECTION_QUERY[self._last()]),
            ]
        if self.view.authenticated:
            parameters.append(
                OpenApiParameter(
                    "Accept-Language",
                    str,
                    OpenApiParameter.HEADER,
                    description="Language of error messages (default en-US)",
                )
            )
        return parameters

    # --- security ---------------------------------------------------------------------------------
    def _application_scope(self) -> str:
        if "{application_id}" in self.path:
            return APPLICATION_SCOPE
        body_names_it = type(self.view).scope_application_id is not MfpView.scope_application_id
        if body_names_it and self.method in ("POST", "PUT"):
            return APPLICATION_SCOPE  # POST /apps/: the applicationId of the body
        return ANY_APPLICATION

    def get_auth(self) -> list[dict]:
        if not self.view.authenticated:
            return []
        requirement = self.view.requirements.get(self.method)
        if requirement is None:
            return []
        app_scope = self._application_scope()
        operation_scopes = [requirement.scope, *requirement.aliases]
        if requirement.mobile_client:
            operation_scopes.append(MOBILE_CLIENT)
        return [{SECURITY_SCHEME: [scope, app_scope]} for scope in dict.fromkeys(operation_scopes)]

    def _view_doc(self) -> str:
        """The handler's or the view class's own docstring, not the base views' ones."""
        handler = getattr(type(self.view), self.method.lower(), None)
        if handler is not None and handler.__doc__:
            return inspect.cleandoc(handler.__doc__)
        for cls in type(self.view).__mro__:
            if cls in (MfpView, MfpAppView) or not issubclass(cls, MfpView):
                break
            if cls.__dict__.get("__doc__"):
                return inspect.cleandoc(cls.__doc__)
        return ""

    def get_description(self) -> str:
        text = self._view_doc()
        requirement = self.view.requirements.get(self.method) if self.view.authenticated else None
        if requirement is None:
            return text or "No authentication."
        needed = f"`{requirement.scope}` and `{self._application_scope()}`"
        alternatives = [*requirement.aliases, *([MOBILE_CLIENT] if requirement.mobile_client else [])]
        if alternatives:
            needed += (
                " (also accepted instead of the first: " + ", ".join(f"`{a}`" for a in alternatives) + ")"
            )
        return f"{text}\n\nScopes: {needed}.".strip()

    # --- bodies -----------------------------------------------------------------------------------
    def get_request_serializer(self) -> Any:
        return None

    def get_response_serializers(self) -> Any:
        return None

    def _get_request_body(self, direction="request"):
        if self.method not in ("POST", "PUT"):
            return None
        if self.method in self.view.multipart_methods:
            schema = {
                "type": "object",
                "properties": {
                    "certificate": {"type": "string", "format": "binary"},
                    "password": {"type": "string", "format": "password"},
                    "isSandBox": {"type": "boolean"},
                },
                "required": ["certificate"],
            }
            return {"content": {"multipart/form-data": {"schema": schema}}, "required": True}
        body = REQUEST_BODIES.get((self.method, self._route()), {"type": "object"})
        return {"content": _json(body), "required": self.method == "POST"}

    def _get_response_bodies(self, direction="response"):
        if self.method == "DELETE":
            success = ("204",)
        elif self.method == "POST":
            success = SUCCESS.get(("POST", self._last()), ("201",))
        else:
            success = ("200",)
        responses: dict[str, dict] = {}
        for code in success:
            if code == "204":
                responses[code] = {"description": "No content"}
            elif self.view.produces != "application/json":
                content = {self.view.produces: {"schema": {"type": "string", "format": "binary"}}}
                responses[code] = {"description": "OK", "content": content}
            else:
                body = RESPONSE_BODIES.get((self.method, self._route(), code), {"type": "object"})
                responses[code] = {"description": "OK", "content": _json(body)}
        errors = ["406", "500"]
        if self.view.authenticated:
            # 400 on any method: a malformed query parameter (offset, size, expand, filter), a
            # missing one (DELETE …/subscriptions), or a NUL in the path, besides bad bodies.
            errors += ["400", "401", "403", "404"]
        if self.method in ("POST", "PUT"):
            errors += ["405", "413"]
        if self.method == "POST" and self._last() in CREATES:
            errors.append("409")
        error_ref = {"$ref": "#/components/schemas/MfpError"}
        for code in sorted(errors):
            responses[code] = {"description": ERROR_TEXT[code], "content": _json(error_ref)}
        return responses


class MfpViewSchemaExtension(OpenApiViewExtension):
    """Gives every ``MfpView`` (and subclass) the ``MfpAutoSchema``, without touching the views."""

    target_class = "imfpush.api.base.MfpView"
    match_subclasses = True

    def view_replacement(self):
        namespace = {
            "schema": MfpAutoSchema(),
            "__doc__": self.target.__doc__,
            "__module__": self.target.__module__,
        }
        return type(self.target.__name__, (self.target,), namespace)


# --- The document ---------------------------------------------------------------------------------


def only_mfp_paths(endpoints):
    """Preprocessing hook: the operations of ``/imfpush/v1``, each route once (no slash twins)."""
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path.startswith(f"{BASE_PATH}/")
        and not path.endswith("/")
        and isinstance(getattr(callback, "cls", None), type)
        and issubclass(callback.cls, MfpView)
    ]


def absolute_urls(result, generator, request, public):
    """Postprocessing hook: the server and token URLs as the caller reached this host."""
    if request is not None:
        result["servers"] = [{"url": request.build_absolute_uri(BASE_PATH)}]
        flow = result["components"]["securitySchemes"][SECURITY_SCHEME]["flows"]["clientCredentials"]
        flow["tokenUrl"] = request.build_absolute_uri(TOKEN_PATH)
    return result


SCHEMA_SETTINGS = {
    "TITLE": "Herald MobileFirst Push Service API",
    "DESCRIPTION": (
        "The IBM MobileFirst Foundation 8.0 Push Service REST API (`/imfpush/v1`), over the same "
        "apps, devices and delivery pipeline as Herald's OneSignal-compatible API.\n\n"
        "Authenticate with an OAuth 2 access token from `POST /mfp/api/az/v1/token` "
        "(`grant_type=client_credentials`, HTTP Basic with a confidential client's id and secret; "
        "clients are registered in the dashboard). Every operation needs its operation scope and "
        "`push.application.<applicationId>`; `push.application.*` stands for every application "
        'of the client\'s organization. Errors are `{"code", "message"}` with the message '
        "localized by `Accept-Language`."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": BASE_PATH,
    "SCHEMA_PATH_PREFIX_TRIM": True,
    "SERVERS": [{"url": BASE_PATH}],
    "CAMELIZE_NAMES": True,
    "PREPROCESSING_HOOKS": ["imfpush.schema.only_mfp_paths"],
    "POSTPROCESSING_HOOKS": ["imfpush.schema.absolute_urls"],
    "ENUM_NAME_OVERRIDES": {},
    "APPEND_COMPONENTS": {
        "schemas": {"MfpError": ERROR_SCHEMA},
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "oauth2",
                "description": "Confidential client credentials. Besides the scopes listed, "
                "request `push.application.<applicationId>` for each application.",
                "flows": {"clientCredentials": {"tokenUrl": TOKEN_PATH, "scopes": SCOPES}},
            }
        },
    },
}


class MfpSchemaView(SpectacularJSONAPIView):
    """``GET /imfpush/v1/swagger.json``: the OpenAPI 3 document, without authentication."""

    custom_settings = SCHEMA_SETTINGS
    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer]  # application/json by default
    authentication_classes: list = []
    permission_classes = [AllowAny]


class MfpSwaggerView(SpectacularSwaggerView):
    """``GET /imfpush/v1/docs/``: Swagger UI for the document above."""

    url_name = "imfpush:mfp-swagger"
    authentication_classes: list = []
    permission_classes = [AllowAny]
