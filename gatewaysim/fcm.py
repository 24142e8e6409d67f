"""The FCM HTTP v1 simulator: ``POST /v1/projects/{id}/messages:send`` and its OAuth ``POST /token``.

A send is answered in this order, and every send is recorded whatever the answer:

1. no valid ``Authorization: Bearer`` token from ``/token`` -> 401 UNAUTHENTICATED;
2. a body that FCM would reject (``fcm_schema``) -> 400 INVALID_ARGUMENT;
3. an error chosen by the platform's fault plan (``faults``);
4. otherwise 200 ``{"name": "projects/{id}/messages/<id>"}``; an accepted message whose
   (token, identity) was accepted before counts as a duplicate.

Error bodies use Google's envelope with an ``FcmError`` detail, as the real service sends.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any

import orjson
from cryptography.exceptions import UnsupportedAlgorithm

from gatewaysim import fcm_schema
from gatewaysim.asgi import (
    BodyTooLarge,
    Header,
    Receive,
    Scope,
    Send,
    lifespan,
    read_body,
    respond,
    respond_json,
)
from gatewaysim.faults import FaultPlan
from gatewaysim.fcm_oauth import OAuthError, TokenIssuer
from gatewaysim.gateway import ControlHandler, Gateway
from gatewaysim.state import SimState

SEND_PREFIX = "/v1/projects/"
SEND_SUFFIX = "/messages:send"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# FCM error code -> (HTTP status, google.rpc status, message), as the real service answers.
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for the project's messages per minute."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}
UNAUTHENTICATED_BODY = orjson.dumps(
    {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. "
            "See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "status": "UNAUTHENTICATED",
        }
    }
)
UNAUTHENTICATED_HEADERS: list[Header] = [
    (b"www-authenticate", b'Bearer realm="https://accounts.google.com/"')
]
RETRY_AFTER_STATUSES = (429, 503)


def error_envelope(code: str, message: str | None = None, field: str | None = None) -> dict[str, Any]:
    http_status, status, default_message = FCM_ERRORS[code]
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
    if field is not None:
        details.append(
            {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": message}]}
        )
    return {
        "error": {
            "code": http_status,
            "message": message or default_message,
            "status": status,
            "details": details,
        }
    }


# Fault answers are the hot path under error injection: encode each body once.
FAULT_BODIES = {code: orjson.dumps(error_envelope(code)) for code in FCM_ERRORS}


class FcmGateway(Gateway):
    platform = "fcm"
    errors = {code: status for code, (status, _, _) in FCM_ERRORS.items()}
    default_port = 9101

    def __init__(self, state: SimState) -> None:
        super().__init__(state)
        self.issuer = TokenIssuer()
        self._instance = secrets.token_hex(8)
        self._message_ids = itertools.count(int(time.time() * 1000))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] == "POST":
            if path.startswith(SEND_PREFIX) and path.endswith(SEND_SUFFIX):
                project_id = path[len(SEND_PREFIX) : -len(SEND_SUFFIX)]
                if project_id and "/" not in project_id:
                    await self._send(scope, receive, send, project_id)
                    return
            elif path == "/token":
                await self._token(scope, receive, send)
                return
        await respond_json(
            send, 404, {"error": {"code": 404, "message": f"Not found: {path}", "status": "NOT_FOUND"}}
        )

    def decode_payload(self, body: bytes) -> Any:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")
        return request.get("message", request) if isinstance(request, dict) else request

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {("POST", "/_sim/fcm/accounts"): self._register_account}

    def reset(self, keep_tokens: bool) -> None:
        self.issuer.reset(keep_tokens)

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            form = await read_body(receive)
        except BodyTooLarge:
            await respond_json(
                send, 413, {"error": "invalid_request", "error_description": "Body too large."}
            )
            return
        host = _header(scope, b"host") or "{}:{}".format(*scope["server"])
        try:
            answer = self.issuer.issue(form, f"{scope['scheme']}://{host}/token")
        except OAuthError as error:
            await respond_json(send, 400, error.as_dict())
            return
        await respond_json(send, 200, answer, [(b"cache-control", b"no-cache, no-store, max-age=0")])

    async def _send(self, scope: Scope, receive: Receive, send: Send, project_id: str) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = b""
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        status, answer, headers, token, duplicate = self._answer(scope, body, project_id, plan)
        self.state.record(
            self.platform,
            token=token,
            status=status,
            headers=scope["headers"],
            body=body,
            duplicate=duplicate,
            received_at=received_at,
        )
        await respond(send, status, answer, headers)

    def _answer(
        self, scope: Scope, body: bytes, project_id: str, plan: FaultPlan | None
    ) -> tuple[int, bytes, list[Header], str | None, bool]:
        """(status, body, extra headers, device token, duplicate) for one send request."""
        try:
            request = fcm_schema.parse_request(body)
        except fcm_schema.MessageError as error:
            request, invalid = None, error
        else:
            invalid = None
        message = (request or {}).get("message") or {}
        token = message.get("token") if request is not None else _token_of(body)

        authorization = _header(scope, b"authorization") or ""
        scheme, _, access_token = authorization.partition(" ")
        if scheme.lower() != "bearer" or self.issuer.check(access_token.strip()) is None:
            return 401, UNAUTHENTICATED_BODY, UNAUTHENTICATED_HEADERS, token, False
        if invalid is not None:
            envelope = error_envelope("INVALID_ARGUMENT", invalid.description, invalid.field)
            return 400, orjson.dumps(envelope), [], token, False

        if plan is not None:
            error = plan.pick(token)
            if error is not None:
                status = self.errors[error]
                headers: list[Header] = []
                if plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers.append((b"retry-after", b"%d" % plan.retry_after))
                return status, FAULT_BODIES[error], headers, token, False

        if request is not None and request.get("validate_only"):
            return (
                200,
                orjson.dumps({"name": f"projects/{project_id}/messages/fake_message_id"}),
                [],
                token,
                False,
            )
        target = (
            token
            if token is not None
            else f"topic:{message.get('topic')}|condition:{message.get('condition')}"
        )
        duplicate = self.state.seen_before(self.platform, target, fcm_schema.identity(message))
        name = f"projects/{project_id}/messages/0:{next(self._message_ids)}%{self._instance}"
        return 200, orjson.dumps({"name": name}), [], token, duplicate

    async def _register_account(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("client_email"), str):
            return 400, {"error": "client_email (string) and public_key_pem (PEM string) are required"}
        try:
            self.issuer.register(body["client_email"], str(body.get("public_key_pem", "")))
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            return 400, {"error": f"public_key_pem: {error}"}
        return 201, {"client_email": body["client_email"]}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _token_of(body: bytes) -> str | None:
    """The device token of a request that failed validation, if it can still be read."""
    try:
        token = orjson.loads(body)["message"]["token"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return token if isinstance(token, str) else None
