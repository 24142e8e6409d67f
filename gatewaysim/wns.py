"""The Windows Push Notification Services simulator (platform ``wns``): the OAuth token endpoint and
the channel URIs, on one HTTPS port.

- ``POST /accesstoken.srf``: the client-credentials grant (form: ``grant_type=client_credentials``,
  ``client_id`` = the Package SID, ``client_secret``, ``scope=notify.windows.com``) answered
  ``{"access_token", "token_type": "bearer", "expires_in": 86400}``. Errors are 400
  ``{"error": "invalid_request" | "unsupported_grant_type" | "invalid_scope" | "invalid_client"}``.
  A secret is checked only for a Package SID registered with ``POST /_sim/wns/apps``.
- ``POST /w/<channel id>``: a notification to a channel issued by ``POST /_sim/wns/channels``.
  Answered in this order, every request recorded whatever the answer:

  1. no valid ``Authorization: Bearer`` token from ``/accesstoken.srf`` -> 401;
  2. bad headers or payload -> 400: ``X-WNS-Type`` one of ``wns/toast``, ``wns/tile``,
     ``wns/badge``, ``wns/raw``; ``Content-Type: text/xml`` for the XML types and
     ``application/octet-stream`` for raw; ``X-WNS-Cache-Policy`` ``cache`` or ``no-cache``;
     ``X-WNS-TTL`` a non-negative integer; the XML well formed with the right root (``toast`` or
     ``tile`` with ``visual/binding[@template]``, ``badge`` with ``value``); more than 5000
     bytes -> 413;
  3. an unknown channel -> 404, an expired one -> 410;
  4. the platform's fault plan (``token_errors`` keyed by the channel URI);
  5. otherwise 200 with ``X-WNS-Status: received`` and ``X-WNS-Msg-ID``.

The token recorded is the channel URI; the payload is what the device gets: for XML, ``{"xml",
"root", "texts", "launch", "value"}``; for raw, the text. A notification is a duplicate when the
channel already accepted one with the same identity: ``i`` (or ``custom.i``) in the JSON ``launch``
argument when there is one (Herald's notification id), otherwise the payload's sha256.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
import xml.etree.ElementTree as ET  # a local simulator: parses what test clients send
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from gatewaysim.gateway import ControlHandler, Gateway

TOKEN_PATH = "/accesstoken.srf"  # noqa: S105 - a path, not a secret
CHANNEL_PREFIX = "/w/"
TOKEN_LIFETIME = 86400
MAX_PAYLOAD = 5000
MAX_CHANNELS_PER_CALL = 100_000
TYPES = {"wns/toast": "toast", "wns/tile": "tile", "wns/badge": "badge", "wns/raw": None}
WNS_ERRORS: dict[str, int] = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "Throttled": 406,
    "ChannelExpired": 410,
    "PayloadTooLarge": 413,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}
RETRY_AFTER_STATUSES = (429, 503)


class WnsGateway(Gateway):
    platform = "wns"
    errors = WNS_ERRORS
    default_port = 9106
    url = ""  # set by server.py once the port is bound: channel URIs are built on it

    def __init__(self, state) -> None:
        super().__init__(state)
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (package SID, expiry)
        self.apps: dict[str, str] = {}  # registered package SID -> client secret
        self.channels: dict[str, bool] = {}  # channel id -> active (False: expired)
        self._ids = itertools.count(int(time.time()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == TOKEN_PATH or path.startswith(CHANNEL_PREFIX):
            if scope["method"] != "POST":
                await respond(send, 405, b"", [(b"allow", b"POST")])
                return
            if path == TOKEN_PATH:
                await self._token(receive, send)
            else:
                await self._notify(scope, receive, send, path[len(CHANNEL_PREFIX) :])
            return
        await respond(send, 404, b"")

    # --- OAuth ---------------------------------------------------------------------------------

    async def _token(self, receive: Receive, send: Send) -> None:
        try:
            form = dict(parse_qsl((await read_body(receive)).decode("utf-8", "replace")))
        except BodyTooLarge:
            form = {}
        error = None
        if form.get("grant_type") != "client_credentials":
            error = "unsupported_grant_type" if form.get("grant_type") else "invalid_request"
        elif not form.get("client_id") or not form.get("client_secret"):
            error = "invalid_request"
        elif form.get("scope") != "notify.windows.com":
            error = "invalid_scope"
        elif form["client_id"] in self.apps and not secrets.compare_digest(
            self.apps[form["client_id"]], form["client_secret"]
        ):
            error = "invalid_client"
        if error is not None:
            await respond_json(send, 400, {"error": error, "error_description": f"{error} (gatewaysim)"})
            return
        token = "EgAcAQMAAAAALYAAY" + secrets.token_urlsafe(48)
        self.tokens[token] = (form["client_id"], time.time() + TOKEN_LIFETIME)
        await respond_json(
            send, 200, {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME}
        )

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        issued = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return issued is not None and issued[1] > time.time()

    # --- notifications -------------------------------------------------------------------------

    async def _notify(self, scope: Scope, receive: Receive, send: Send, channel_id: str) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = b""
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        token = self.channel_uri(channel_id)
        status, headers, duplicate = self._answer(scope, body, channel_id, token, plan)
        self.state.record(
            self.platform,
            token=token,
            status=status,
            headers=scope["headers"],
            body=body,
            duplicate=duplicate,
            received_at=received_at,
        )
        await respond(send, status, b"", headers)

    def _answer(
        self, scope: Scope, body: bytes, channel_id: str, token: str, plan: FaultPlan | None
    ) -> tuple[int, list[Header], bool]:
        trace: Header = (b"x-wns-debug-trace", b"gatewaysim")
        if not self._authorized(scope):
            return 401, [trace, (b"www-authenticate", b'Bearer error="invalid_token"')], False
        kind = _header(scope, b"x-wns-type")
        problem = _check(scope, kind, body)
        if problem is not None:
            status = 413 if problem == "too large" else 400
            return status, [trace, (b"x-wns-error-description", problem.encode())], False
        active = self.channels.get(channel_id)
        if active is None:
            return 404, [trace], False
        if not active:
            return 410, [trace], False
        if plan is not None:
            error = plan.pick(token)
            if error is not None:
                status = WNS_ERRORS[error]
                headers = [trace]
                if plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers.append((b"retry-after", b"%d" % plan.retry_after))
                return status, headers, False
        duplicate = self.state.seen_before(self.platform, token, _identity(body))
        headers = [
            trace,
            (b"x-wns-status", b"received"),
            (b"x-wns-msg-id", secrets.token_hex(8).upper().encode()),
        ]
        if (_header(scope, b"x-wns-requestforstatus") or "").lower() == "true":
            headers.append((b"x-wns-deviceconnectionstatus", b"connected"))
        return 200, headers, duplicate

    def decode_payload(self, body: bytes) -> Any:
        try:
            root = ET.fromstring(body)  # noqa: S314
        except ET.ParseError:
            return body.decode("utf-8", "replace")
        return {
            "xml": body.decode("utf-8", "replace"),
            "root": root.tag,
            "texts": [element.text or "" for element in root.iter("text")],
            "launch": root.get("launch"),
            "value": root.get("value"),
        }

    # --- control -------------------------------------------------------------------------------

    def channel_uri(self, channel_id: str) -> str:
        return f"{self.url}{CHANNEL_PREFIX}{channel_id}"

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("POST", "/_sim/wns/channels"): self._issue_channels,
            ("POST", "/_sim/wns/channels/expire"): self._expire_channels,
            ("POST", "/_sim/wns/apps"): self._register_app,
        }

    async def _issue_channels(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_CHANNELS_PER_CALL:
            return 400, {"error": f"count: an integer from 1 to {MAX_CHANNELS_PER_CALL}"}
        expired = body.get("expired", False)
        if not isinstance(expired, bool):
            return 400, {"error": "expired: a boolean"}
        channels = []
        for _ in range(count):
            # Real channel ids are long opaque base64; these are shorter but as unguessable.
            channel_id = f"{next(self._ids):x}.{secrets.token_urlsafe(24)}"
            self.channels[channel_id] = not expired
            channels.append(self.channel_uri(channel_id))
        return 201, {"channels": channels}

    async def _expire_channels(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        channels = body.get("channels") if isinstance(body, dict) else None
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            return 400, {"error": "channels: an array of channel URIs"}
        expired = 0
        for channel in channels:
            channel_id = urlsplit(channel).path.rpartition("/")[2] if "/" in channel else channel
            if channel_id in self.channels:
                self.channels[channel_id] = False
                expired += 1
        return 200, {"expired": expired}

    async def _register_app(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body[k] for k in ("package_sid", "client_secret")
        ):
            return 400, {"error": "package_sid and client_secret (strings) are required"}
        self.apps[body["package_sid"]] = body["client_secret"]
        return 201, {"package_sid": body["package_sid"]}

    def reset(self, keep_tokens: bool) -> None:
        """Forget access tokens and channels, unless ``keep_tokens`` (registered apps are kept)."""
        if not keep_tokens:
            self.tokens.clear()
            self.channels.clear()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _check(scope: Scope, kind: str | None, body: bytes) -> str | None:
    """Why WNS would refuse these headers and payload, or None."""
    if kind not in TYPES:
        return "X-WNS-Type must be wns/toast, wns/tile, wns/badge or wns/raw"
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    expected = "application/octet-stream" if kind == "wns/raw" else "text/xml"
    if content_type != expected:
        return f"Content-Type must be {expected} for {kind}"
    cache_policy = _header(scope, b"x-wns-cache-policy")
    if cache_policy is not None and cache_policy.lower() not in ("cache", "no-cache"):
        return "X-WNS-Cache-Policy must be cache or no-cache"
    ttl = _header(scope, b"x-wns-ttl")
    if ttl is not None and not ttl.isdigit():
        return "X-WNS-TTL must be a non-negative integer"
    for name in (b"x-wns-tag", b"x-wns-group"):
        value = _header(scope, name)
        if value is not None and len(value) > 16:
            return f"{name.decode()} must be at most 16 characters"
    if len(body) > MAX_PAYLOAD:
        return "too large"
    if not body:
        return "the payload is empty"
    root_name = TYPES[kind]
    if root_name is None:
        return None
    try:
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as error:
        return f"the XML payload is not well formed: {error}"
    if root.tag != root_name:
        return f"the XML root must be <{root_name}> for {kind}"
    if root_name == "badge":
        return None if root.get("value") else "<badge> needs a value"
    binding = root.find("visual/binding")
    if binding is None or not binding.get("template"):
        return f"<{root_name}> needs visual/binding with a template"
    return None


def _identity(body: bytes) -> str:
    try:
        launch = ET.fromstring(body).get("launch")  # noqa: S314
        arguments = json.loads(launch) if launch else {}
        notification_id = arguments.get("i") or (arguments.get("custom") or {}).get("i")
    except (ET.ParseError, ValueError, TypeError, AttributeError):
        notification_id = None
    return str(notification_id) if notification_id else hashlib.sha256(body).hexdigest()
