"""The Web Push push-service simulator (platform ``webpush``): RFC 8030 push resources, RFC 8291
(aes128gcm) payloads that it decrypts, RFC 8292 (VAPID) authorization that it verifies.

- ``POST /_sim/webpush/subscriptions`` (control port) ``{"count"?: 1, "application_server_key"?}``
  issues subscriptions as a browser's ``PushManager.subscribe`` returns them:
  ``{"subscriptions": [{"endpoint": "<this gateway's URL>/push/<id>", "keys": {"p256dh", "auth"}}]}``.
  The simulator keeps each subscription's private key and auth secret. With
  ``application_server_key`` (a VAPID public key, base64url), sends signed with another key get 403.
- ``POST /_sim/webpush/expire`` ``{"endpoint"}`` or ``{"endpoints": [...]}``: later sends get 410.
- ``POST /push/<id>``, answered in this order (every request is recorded, whatever the answer):

  1. unknown subscription -> 404; expired -> 410;
  2. ``Authorization: vapid t=<JWT>, k=<public key>``: the ES256 signature verified with ``k``,
     ``aud`` equal to the endpoint's origin, ``exp`` in the future and at most 24 hours ahead,
     ``sub`` a ``mailto:`` or ``https:`` URL -> otherwise 401; ``k`` not the subscription's
     ``application_server_key`` -> 403;
  3. ``TTL`` missing or not a non-negative integer, a bad ``Urgency`` (very-low, low, normal,
     high) or ``Topic`` (at most 32 base64url characters) -> 400;
  4. ``Content-Encoding`` other than ``aes128gcm`` -> 415; a body over 4096 bytes -> 413; a body
     that does not decrypt with the subscription's keys -> 400;
  5. the platform's fault plan (``token_errors`` keyed by endpoint URL);
  6. otherwise 201 Created with ``Location`` (the push message resource) and the ``TTL`` kept.

The token recorded is the endpoint URL and the body recorded is the decrypted plaintext, so the
delivery's ``payload`` is what the service worker gets: the parsed JSON when it is JSON. A send is
a duplicate when the endpoint already accepted one with the same identity: ``custom.i`` or ``id``
of the JSON plaintext (Herald puts the notification id in ``custom.i``, as OneSignal does),
otherwise the plaintext's sha256.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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

PUSH_PREFIX = "/push/"
MESSAGE_PREFIX = "/m/"
MAX_BODY = 4096
MAX_EXP_AHEAD = 24 * 3600
LEEWAY_SECONDS = 60
MAX_SUBSCRIPTIONS_PER_CALL = 100_000
URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
WEBPUSH_ERRORS: dict[str, int] = {
    "NotFound": 404,
    "Gone": 410,
    "PayloadTooLarge": 413,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}
RETRY_AFTER_STATUSES = (429, 503)


@dataclass
class Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: bytes | None = None
    active: bool = True


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = text.strip().rstrip("=")
    return base64.b64decode(text.translate(str.maketrans("-_", "+/")) + "=" * (-len(text) % 4), validate=True)


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str, headers: list[Header] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers or []


class WebPushGateway(Gateway):
    platform = "webpush"
    errors = WEBPUSH_ERRORS
    default_port = 9103
    url = ""  # set by server.py once the port is bound: endpoints are built on it

    def __init__(self, state) -> None:
        super().__init__(state)
        self.subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(int(time.time()))
        self._messages = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(PUSH_PREFIX) and "/" not in path[len(PUSH_PREFIX) :]:
            if scope["method"] != "POST":
                await respond(send, 405, b"", [(b"allow", b"POST")])
                return
            await self._push(scope, receive, send, path[len(PUSH_PREFIX) :])
            return
        await _error(send, Refused(404, "NotFound", f"no such resource: {path}"))

    # --- push ----------------------------------------------------------------------------------

    async def _push(self, scope: Scope, receive: Receive, send: Send, subscription_id: str) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = b"x" * (MAX_BODY + 1)
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        endpoint = self.endpoint(subscription_id)
        plaintext = b""
        duplicate = False
        refusal: Refused | None = None
        try:
            plaintext = self._accept(scope, body, subscription_id, endpoint, plan)
            duplicate = self.state.seen_before(self.platform, endpoint, _identity(plaintext))
        except Refused as refused:
            refusal = refused
        status = 201 if refusal is None else refusal.status
        self.state.record(
            self.platform,
            token=endpoint,
            status=status,
            headers=scope["headers"],
            body=plaintext,
            duplicate=duplicate,
            received_at=received_at,
        )
        if refusal is not None:
            await _error(send, refusal)
            return
        location = f"{self.url}{MESSAGE_PREFIX}{next(self._messages)}".encode()
        ttl = (_header(scope, b"ttl") or "0").encode()
        await respond(send, 201, b"", [(b"location", location), (b"ttl", ttl)])

    def _accept(
        self, scope: Scope, body: bytes, subscription_id: str, endpoint: str, plan: FaultPlan | None
    ) -> bytes:
        """The decrypted plaintext of an acceptable push, or ``Refused``."""
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise Refused(404, "NotFound", "Subscription not found")
        if not subscription.active:
            raise Refused(410, "Gone", "Push subscription has expired or was unsubscribed")
        self._check_vapid(scope, endpoint, subscription)
        _check_headers(scope)
        encoding = (_header(scope, b"content-encoding") or "").strip().lower()
        if body and encoding != "aes128gcm":
            raise Refused(415, "UnsupportedMediaType", "Content-Encoding must be aes128gcm (RFC 8291)")
        if len(body) > MAX_BODY:
            raise Refused(413, "PayloadTooLarge", f"The payload exceeds {MAX_BODY} bytes")
        plaintext = b""
        if body:
            try:
                plaintext = http_ece.decrypt(
                    body,
                    private_key=subscription.private_key,
                    auth_secret=subscription.auth,
                    version="aes128gcm",
                )
            except Exception as exc:  # http_ece raises several kinds for bad input
                raise Refused(400, "BadRequest", f"The payload does not decrypt: {exc}"[:200]) from None
        if plan is not None:
            error = plan.pick(endpoint)
            if error is not None:
                status = WEBPUSH_ERRORS[error]
                headers: list[Header] = []
                if plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers.append((b"retry-after", b"%d" % plan.retry_after))
                raise Refused(status, error, f"Injected fault: {error}", headers)
        return plaintext

    def _check_vapid(self, scope: Scope, endpoint: str, subscription: Subscription) -> None:
        scheme, _, params = (_header(scope, b"authorization") or "").strip().partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(401, "Unauthorized", "Authorization must be 'vapid t=<JWT>, k=<key>' (RFC 8292)")
        fields = {}
        for part in params.split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if not fields.get("t") or not fields.get("k"):
            raise Refused(401, "Unauthorized", "The vapid authorization needs t and k")
        try:
            raw_key = b64url_decode(fields["k"])
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
        except (ValueError, binascii.Error):
            raise Refused(401, "Unauthorized", "k is not a P-256 public key") from None
        origin = _origin(endpoint)
        host = _header(scope, b"host")
        audiences = {origin, f"{scope.get('scheme', 'https')}://{host}"} if host else {origin}
        now = time.time()
        try:
            claims = jwt.decode(
                fields["t"],
                public_key,
                algorithms=["ES256"],
                options={"require": ["exp", "aud", "sub"], "verify_aud": False},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "Unauthorized", "The VAPID JWT has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Refused(401, "Unauthorized", f"Invalid VAPID JWT: {exc}"[:200]) from None
        if claims.get("aud") not in audiences:
            raise Refused(401, "Unauthorized", f"aud must be the endpoint's origin {origin}")
        if (
            not isinstance(claims.get("exp"), int | float)
            or claims["exp"] > now + MAX_EXP_AHEAD + LEEWAY_SECONDS
        ):
            raise Refused(401, "Unauthorized", "exp must be at most 24 hours ahead")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise Refused(401, "Unauthorized", "sub must be a mailto: or https: URL")
        if subscription.application_server_key is not None and raw_key != subscription.application_server_key:
            raise Refused(403, "Forbidden", "k is not the key this subscription was created with")

    def decode_payload(self, body: bytes) -> Any:
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")

    # --- control -------------------------------------------------------------------------------

    def endpoint(self, subscription_id: str) -> str:
        return f"{self.url}{PUSH_PREFIX}{subscription_id}"

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("POST", "/_sim/webpush/subscriptions"): self._subscribe,
            ("POST", "/_sim/webpush/expire"): self._expire,
        }

    async def _subscribe(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        count = body.get("count", 1)
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 0 < count <= MAX_SUBSCRIPTIONS_PER_CALL
        ):
            return 400, {"error": f"count: an integer from 1 to {MAX_SUBSCRIPTIONS_PER_CALL}"}
        server_key = body.get("application_server_key")
        bound = None
        if server_key is not None:
            try:
                bound = b64url_decode(server_key)
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bound)
            except (ValueError, TypeError, AttributeError, binascii.Error):
                return 400, {"error": "application_server_key: a base64url uncompressed P-256 public key"}
        subscriptions = []
        for _ in range(count):
            private_key = ec.generate_private_key(ec.SECP256R1())
            auth = secrets.token_bytes(16)
            subscription_id = f"{next(self._ids):x}{secrets.token_urlsafe(24)}"
            self.subscriptions[subscription_id] = Subscription(private_key, auth, bound)
            p256dh = private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            subscriptions.append(
                {
                    "endpoint": self.endpoint(subscription_id),
                    "keys": {"p256dh": b64url(p256dh), "auth": b64url(auth)},
                }
            )
        return 201, {"subscriptions": subscriptions}

    async def _expire(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        endpoints = body.get("endpoints", [body["endpoint"]] if "endpoint" in body else None)
        if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
            return 400, {"error": "endpoint (a string) or endpoints (an array of strings) is required"}
        expired = 0
        for endpoint in endpoints:
            subscription = self.subscriptions.get(urlsplit(endpoint).path.rpartition("/")[2])
            if subscription is not None and subscription.active:
                subscription.active = False
                expired += 1
        return 200, {"expired": expired}

    def reset(self, keep_tokens: bool) -> None:
        """Forget subscriptions unless ``keep_tokens``."""
        if not keep_tokens:
            self.subscriptions.clear()


def _check_headers(scope: Scope) -> None:
    ttl = _header(scope, b"ttl")
    if ttl is None or not ttl.strip().isdigit():
        raise Refused(400, "BadRequest", "The TTL header is required: a non-negative integer (RFC 8030)")
    urgency = _header(scope, b"urgency")
    if urgency is not None and urgency.strip().lower() not in URGENCIES:
        raise Refused(400, "BadRequest", "Urgency must be very-low, low, normal or high")
    topic = _header(scope, b"topic")
    if topic is not None and not _TOPIC.match(topic.strip()):
        raise Refused(400, "BadRequest", "Topic must be at most 32 characters of the base64url alphabet")


async def _error(send: Send, refused: Refused) -> None:
    # Mozilla autopush's error shape.
    answer = {
        "code": refused.status,
        "errno": refused.status,
        "error": refused.error,
        "message": refused.message,
    }
    await respond_json(send, refused.status, answer, refused.headers)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _identity(plaintext: bytes) -> str:
    try:
        message = orjson.loads(plaintext)
    except orjson.JSONDecodeError:
        message = None
    if isinstance(message, dict):
        custom = message.get("custom")
        if isinstance(custom, dict) and custom.get("i"):
            return str(custom["i"])
        if message.get("id"):
            return str(message["id"])
    return hashlib.sha256(plaintext).hexdigest()
