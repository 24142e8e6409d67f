"""The Amazon Device Messaging simulator (platform ``adm``): Login with Amazon's token endpoint and
ADM's send API, on one HTTPS port.

- ``POST /auth/o2/token``: the client-credentials grant (form: ``grant_type=client_credentials``,
  ``scope=messaging:push``, ``client_id``, ``client_secret``) answered ``{"access_token",
  "scope": "messaging:push", "token_type": "bearer", "expires_in": 3600}``. Errors: 400
  ``{"error": "invalid_request" | "unsupported_grant_type" | "invalid_scope"}``, and 401
  ``invalid_client`` when a client id registered with ``POST /_sim/adm/clients`` sends another
  secret (other client ids are accepted).
- ``POST /messaging/registrations/{registration id}/messages``. Answered in this order, every
  request recorded whatever the answer:

  1. no valid ``Authorization: Bearer`` token from ``/auth/o2/token`` (unknown, or expired after an
     hour or ``POST /_sim/adm/oauth/expire``) -> 401 ``AccessTokenExpired``;
  2. ``X-Amzn-Type-Version`` not ``com.amazon.device.messaging.ADMMessage@1.0``, or
     ``X-Amzn-Accept-Type`` not ``com.amazon.device.messaging.ADMSendResult@1.0`` -> 400
     ``InvalidType``;
  3. a registration id that is not one (``amzn1.adm-registration.v<n>.<id>``) -> 400
     ``InvalidRegistrationId``;
  4. a body ADM would refuse -> 400: not a JSON object, unknown fields, ``data`` not an object of
     string values (``InvalidData``), ``consolidationKey`` not a string of at most 64 characters
     (``InvalidConsolidationKey``), ``expiresAfter`` not an integer from 60 to 2,678,400
     (``InvalidExpiration``), ``md5`` not a base64 MD5 digest (``InvalidChecksum``; its value is not
     recomputed); ``data`` over 6 KB -> 413 ``MessageTooLarge``;
  5. a registration id unregistered with ``POST /_sim/adm/registrations/unregister`` -> 410
     ``Unregistered``;
  6. the platform's fault plan (``token_errors`` keyed by registration id);
  7. otherwise 200 ``{"registrationID": <the id>}`` with ``X-Amzn-RequestId``; for a registration
     id replaced with ``POST /_sim/adm/registrations/rotate``, 200 with the new id instead (the
     app instance's canonical id, which the sender should store): the message is delivered.

Errors are ``{"reason": "<name>"}``, with ``Retry-After`` on 429 and 503 when the plan sets it. The
token recorded is the registration id; the payload is the request body. A message is a duplicate
when that registration id already accepted one with the same identity: ``custom.i`` of ``data``
(Herald's notification id), otherwise the body's sha256.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

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
from gatewaysim.client_tokens import ClientTokens, TokenState, bearer
from gatewaysim.faults import FaultPlan
from gatewaysim.gateway import ControlHandler, Gateway

TOKEN_PATH = "/auth/o2/token"  # noqa: S105 - a path, not a secret
SEND_PREFIX = "/messaging/registrations/"
SEND_SUFFIX = "/messages"
SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
REGISTRATION_PREFIX = "amzn1.adm-registration.v"
MAX_DATA_BYTES = 6144
MAX_CONSOLIDATION_KEY = 64
MIN_EXPIRES_AFTER, MAX_EXPIRES_AFTER = 60, 2_678_400
MAX_REGISTRATIONS_PER_CALL = 100_000
BODY_KEYS = {"data", "notification", "consolidationKey", "expiresAfter", "md5", "priority"}
ADM_ERRORS: dict[str, int] = {
    "InvalidRegistrationId": 400,
    "InvalidData": 400,
    "InvalidConsolidationKey": 400,
    "InvalidExpiration": 400,
    "InvalidChecksum": 400,
    "InvalidType": 400,
    "AccessTokenExpired": 401,
    "Unregistered": 410,
    "MessageTooLarge": 413,
    "MaxRateExceeded": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}
RETRY_AFTER_STATUSES = (429, 503)


class AdmGateway(Gateway):
    platform = "adm"
    errors = ADM_ERRORS
    default_port = 9108

    def __init__(self, state) -> None:
        super().__init__(state)
        self.tokens = ClientTokens("Atc|MQEBI")  # LWA access tokens start with "Atc|"
        self.unregistered: set[str] = set()
        # old registration id -> the canonical one ADM answers in registrationID (rotate).
        self.canonical: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.lower() == TOKEN_PATH.lower() or (
            path.startswith(SEND_PREFIX) and path.endswith(SEND_SUFFIX)
        ):
            if scope["method"] != "POST":
                await respond(send, 405, b"", [(b"allow", b"POST")])
            elif path.lower() == TOKEN_PATH.lower():  # Amazon documents both /auth/o2 and /auth/O2
                await self._token(receive, send)
            else:
                registration_id = unquote(path[len(SEND_PREFIX) : -len(SEND_SUFFIX)])
                await self._send(scope, receive, send, registration_id)
            return
        await respond_json(send, 404, {"reason": "NotFound"})

    # --- Login with Amazon -----------------------------------------------------------------------

    async def _token(self, receive: Receive, send: Send) -> None:
        try:
            form = dict(parse_qsl((await read_body(receive)).decode("utf-8", "replace")))
        except BodyTooLarge:
            form = {}
        status, error = 400, None
        if form.get("grant_type") != "client_credentials":
            error = "unsupported_grant_type" if form.get("grant_type") else "invalid_request"
        elif not form.get("client_id") or not form.get("client_secret"):
            error = "invalid_request"
        elif form.get("scope") != SCOPE:
            error = "invalid_scope"
        elif not self.tokens.secret_matches(form["client_id"], form["client_secret"]):
            status, error = 401, "invalid_client"
        if error is not None:
            await respond_json(send, status, {"error": error, "error_description": f"{error} (gatewaysim)"})
            return
        token = self.tokens.issue(form["client_id"])
        answer = {
            "access_token": token,
            "scope": SCOPE,
            "token_type": "bearer",
            "expires_in": self.tokens.lifetime,
        }
        await respond_json(send, 200, answer, [(b"cache-control", b"no-cache, no-store")])

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, scope: Scope, receive: Receive, send: Send, registration_id: str) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = b""
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        status, reason, headers, duplicate = self._answer(scope, body, registration_id, plan)
        self.state.record(
            self.platform,
            token=registration_id,
            status=status,
            headers=scope["headers"],
            body=body,
            duplicate=duplicate,
            received_at=received_at,
        )
        headers = [(b"x-amzn-requestid", str(uuid.uuid4()).encode()), *headers]
        if status == 200:
            headers.append((b"x-amzn-type-version", ACCEPT_TYPE.encode()))
            answer: dict[str, str] = {"registrationID": self.canonical.get(registration_id, registration_id)}
        else:
            answer = {"reason": reason}
        await respond(send, status, orjson.dumps(answer), headers)

    def _answer(
        self, scope: Scope, body: bytes, registration_id: str, plan: FaultPlan | None
    ) -> tuple[int, str, list[Header], bool]:
        if self.tokens.check(bearer(_header(scope, b"authorization"))) is not TokenState.VALID:
            return 401, "AccessTokenExpired", [], False
        if _header(scope, b"x-amzn-type-version") != TYPE_VERSION or (
            _header(scope, b"x-amzn-accept-type") != ACCEPT_TYPE
        ):
            return 400, "InvalidType", [], False
        if not _registration_shaped(registration_id):
            return 400, "InvalidRegistrationId", [], False
        problem = check_body(body)
        if problem is not None:
            return ADM_ERRORS[problem], problem, [], False
        if registration_id in self.unregistered:
            return 410, "Unregistered", [], False
        if plan is not None:
            error = plan.pick(registration_id)
            if error is not None:
                status = ADM_ERRORS[error]
                headers: list[Header] = []
                if plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers.append((b"retry-after", b"%d" % plan.retry_after))
                return status, error, headers, False
        duplicate = self.state.seen_before(self.platform, registration_id, _identity(body))
        return 200, "", [], duplicate

    def decode_payload(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")

    # --- control -------------------------------------------------------------------------------

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("POST", "/_sim/adm/registrations"): self._issue_registrations,
            ("POST", "/_sim/adm/registrations/unregister"): self._unregister,
            ("POST", "/_sim/adm/registrations/rotate"): self._rotate,
            ("POST", "/_sim/adm/clients"): self._register_client,
            ("POST", "/_sim/adm/oauth/expire"): self._expire_access_tokens,
            ("GET", "/_sim/adm/oauth"): self._oauth_counts,
        }

    async def _issue_registrations(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        count = body.get("count", 1)
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 0 < count <= MAX_REGISTRATIONS_PER_CALL
        ):
            return 400, {"error": f"count: an integer from 1 to {MAX_REGISTRATIONS_PER_CALL}"}
        unregistered = body.get("unregistered", False)
        if not isinstance(unregistered, bool):
            return 400, {"error": "unregistered: a boolean"}
        # Real ids are a long base64 blob after the prefix; these are shorter but as unguessable.
        ids = [f"{REGISTRATION_PREFIX}3.{secrets.token_urlsafe(32)}" for _ in range(count)]
        if unregistered:
            self.unregistered.update(ids)
        return 201, {"registration_ids": ids}

    async def _unregister(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        ids = body.get("registration_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return 400, {"error": "registration_ids: an array of registration ids"}
        self.unregistered.update(ids)
        return 200, {"unregistered": len(ids)}

    async def _rotate(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Give each registration id a new canonical one (as when Amazon re-registers an app
        instance); sends to the old id are still delivered and answer the new id."""
        ids = body.get("registration_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            return 400, {"error": "registration_ids: an array of registration ids"}
        for old in ids:
            self.canonical[old] = f"{REGISTRATION_PREFIX}3.{secrets.token_urlsafe(32)}"
        return 200, {"canonical": {old: self.canonical[old] for old in ids}}

    async def _register_client(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body[k] for k in ("client_id", "client_secret")
        ):
            return 400, {"error": "client_id and client_secret (strings) are required"}
        self.tokens.clients[body["client_id"]] = body["client_secret"]
        return 201, {"client_id": body["client_id"]}

    async def _expire_access_tokens(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"expired": self.tokens.expire_all()}

    async def _oauth_counts(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, self.tokens.counts()

    def reset(self, keep_tokens: bool) -> None:
        """Forget unregistered and rotated ids and (unless ``keep_tokens``) access tokens; clients
        are kept."""
        self.tokens.reset(keep_tokens)
        self.unregistered.clear()
        self.canonical.clear()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _registration_shaped(registration_id: str) -> bool:
    if not registration_id.startswith(REGISTRATION_PREFIX) or len(registration_id) > 2048:
        return False
    version, dot, rest = registration_id[len(REGISTRATION_PREFIX) :].partition(".")
    return version.isdigit() and bool(dot) and bool(rest) and rest.isprintable() and " " not in rest


def check_body(body: bytes) -> str | None:
    """The reason ADM would refuse this message body, or None."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "InvalidData"
    if not isinstance(message, dict) or set(message) - BODY_KEYS:
        return "InvalidData"
    data = message.get("data")
    if data is None and message.get("notification") is None:
        return "InvalidData"
    if data is not None and (
        not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values())
    ):
        return "InvalidData"
    notification = message.get("notification")
    if notification is not None and not isinstance(notification, dict):
        return "InvalidData"
    key = message.get("consolidationKey")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_CONSOLIDATION_KEY):
        return "InvalidConsolidationKey"
    expires = message.get("expiresAfter")
    if expires is not None and (
        not isinstance(expires, int)
        or isinstance(expires, bool)
        or not MIN_EXPIRES_AFTER <= expires <= MAX_EXPIRES_AFTER
    ):
        return "InvalidExpiration"
    md5 = message.get("md5")
    if md5 is not None:
        try:
            valid = isinstance(md5, str) and len(base64.b64decode(md5, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            return "InvalidChecksum"
    if data is not None and len(orjson.dumps(data)) > MAX_DATA_BYTES:
        return "MessageTooLarge"
    return None


def _identity(body: bytes) -> str:
    try:
        data = orjson.loads(body).get("data") or {}
        custom = orjson.loads(data["custom"]) if isinstance(data.get("custom"), str) else data.get("custom")
        notification_id = custom.get("i") if isinstance(custom, dict) else None
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        notification_id = None
    return str(notification_id) if notification_id else hashlib.sha256(body).hexdigest()
