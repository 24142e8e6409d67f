"""APNs over HTTP/2: provider-token (ES256 JWT from PyJWT) or certificate (p12) auth, requests sent
over the shared multiplexed client (libcurl).

Not ``apns2`` (it cannot import on Python 3.10+, DESIGN.md) and not ``aioapns`` for sending (pure
Python h2, about 8x slower than libcurl for fan-out). Payloads follow OneSignal's iOS convention:
the notification id in ``custom.i``, the launch URL in ``custom.u``, ``data`` in ``custom.a``,
attachments in ``att`` and action buttons in ``buttons``.

The JWT is cached per key and refreshed every 40 minutes (APNs wants 20 to 60), never per request:
APNs answers ``TooManyProviderTokenUpdates`` to a provider that renews it more often. One
``Http2Client`` per (base URL, auth identity) per process keeps its connections open across
batches; libcurl honours the server's SETTINGS_MAX_CONCURRENT_STREAMS (opening a second
connection when needed) and streams refused by GOAWAY come back as transport errors, which are
TRANSIENT and so resent.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings

from notifications.providers.base import (
    BADGE_COUNT,
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse
from notifications.providers.platform_fields import platform_body

JWT_LIFETIME_SECONDS = 40 * 60
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
# apns-push-type -> the suffix Apple requires on apns-topic for it.
TOPIC_SUFFIXES = {
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "location": ".location-query",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
}
PUSH_TYPES = {"alert", "background", "mdm", *TOPIC_SUFFIXES}
# APNs reasons -> outcome; any other reason: 429 and 5xx are TRANSIENT, 410 INVALID_RECIPIENT, the
# rest ERROR (a bad request or bad credentials will not succeed on retry).
ERROR_OUTCOMES = {
    "Unregistered": Outcome.INVALID_RECIPIENT,
    "ExpiredToken": Outcome.INVALID_RECIPIENT,
    "BadDeviceToken": Outcome.INVALID_RECIPIENT,
    "DeviceTokenNotForTopic": Outcome.INVALID_RECIPIENT,
    "ExpiredProviderToken": Outcome.TRANSIENT,  # our JWT: refreshed before the retry
    "TooManyProviderTokenUpdates": Outcome.TRANSIENT,
    "TooManyRequests": Outcome.TRANSIENT,
    "IdleTimeout": Outcome.TRANSIENT,
    "InternalServerError": Outcome.TRANSIENT,
    "ServiceUnavailable": Outcome.TRANSIENT,
    "Shutdown": Outcome.TRANSIENT,
}
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

_lock = threading.Lock()
_jwts: dict[tuple[str, str, str], tuple[str, float]] = {}
_clients: dict[tuple[str, str], Http2Client] = {}


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes
    topic: str | None  # the bundle id the certificate is for (its subject's UID)
    digest: str


_certificates: dict[str, Certificate] = {}


# --- auth ---------------------------------------------------------------------------------------


def provider_token(key_id: str, team_id: str, p8: str, *, stale: str | None = None) -> str:
    """The cached ES256 JWT for this key, renewed when 40 minutes old, or when APNs refused it as
    expired (``stale``): renewed only if ``stale`` is still the cached one, so many refusals of one
    token, in one batch or in several threads, renew it once."""
    cache_key = (key_id, team_id, hashlib.sha256(p8.encode()).hexdigest()[:16])
    now = time.time()
    with _lock:
        cached = _jwts.get(cache_key)
        if (
            cached is None
            or now - cached[1] >= JWT_LIFETIME_SECONDS
            or (stale is not None and cached[0] == stale)
        ):
            token = jwt.encode(
                {"iss": team_id, "iat": int(now)}, p8, algorithm="ES256", headers={"kid": key_id}
            )
            cached = (token, now)
            _jwts[cache_key] = cached
        return cached[0]


def load_certificate(p12_base64: str, password: str | None, *, label: str = "APNs") -> Certificate:
    """The client certificate and key of an APNs .p12, as PEM for libcurl (cached per file);
    ``label`` names the credential in the not-configured reason (APNs, Safari)."""
    digest = hashlib.sha256(f"{p12_base64}\0{password or ''}".encode()).hexdigest()
    with _lock:
        cached = _certificates.get(digest)
    if cached is not None:
        return cached
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            base64.b64decode(p12_base64), password.encode() if password else None
        )
    except (ValueError, TypeError) as exc:
        raise ProviderNotConfigured(f"{label}: the .p12 certificate cannot be read") from exc
    if key is None or cert is None:
        raise ProviderNotConfigured(f"{label}: the .p12 has no certificate and key")
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    certificate = Certificate(
        cert_pem=b"".join(c.public_bytes(Encoding.PEM) for c in [cert, *extra]),
        key_pem=key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        topic=str(uids[0].value) if uids else None,
        digest=digest[:16],
    )
    with _lock:
        _certificates[digest] = certificate
    return certificate


def _client(base_url: str, identity: str, certificate: Certificate | None) -> Http2Client:
    with _lock:
        client = _clients.get((base_url, identity))
        if client is None:
            client = Http2Client(
                ca_file=settings.HERALD_GATEWAY_CA_FILE or None,
                max_in_flight=settings.HERALD_HTTP2_MAX_IN_FLIGHT,
                client_cert_pem=certificate.cert_pem if certificate else None,
                client_key_pem=certificate.key_pem if certificate else None,
            )
            _clients[(base_url, identity)] = client
        return client


# --- the request --------------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def push_type_of(message: RenderedMessage) -> str:
    """``apns-push-type``: the override if it is one, background for content-available pushes
    with no text, otherwise alert."""
    body = platform_body(message.body, "apns")
    override = body.get("apns_push_type_override")
    if override in PUSH_TYPES:
        return override
    if body.get("content_available") and not message.content:
        return "background"
    return "alert"


def payload_limit(push_type: str) -> int:
    return MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD


def topic_for(bundle_id: str | None, push_type: str) -> str | None:
    if not bundle_id:
        return None
    suffix = TOPIC_SUFFIXES.get(push_type, "")
    return bundle_id if bundle_id.endswith(suffix) else bundle_id + suffix


def build_payload(recipient: Recipient, message: RenderedMessage) -> dict[str, Any]:
    """The APNs JSON payload, in OneSignal's iOS convention (plus ``apns_payload_extra``)."""
    body = platform_body(message.body, "apns")
    push_type = push_type_of(message)
    aps: dict[str, Any] = {}
    alert = {
        key: value
        for key, value in (
            ("title", message.heading),
            ("subtitle", message.subtitle),
            ("body", message.content),
        )
        if value
    }
    if isinstance(body.get("apns_alert"), dict):  # loc keys and the like, as given
        alert.update({key: value for key, value in body["apns_alert"].items() if value is not None})
    if alert and push_type != "background":
        aps["alert"] = alert
        sound = body.get("ios_sound")
        if sound is None:
            aps["sound"] = "default"
        elif sound != "nil":  # OneSignal's way to ask for no sound
            aps["sound"] = sound
    badge_type = body.get("ios_badgeType")
    if badge_type == "SetTo":
        aps["badge"] = max(0, _int(body.get("ios_badgeCount")))
    elif badge_type == "Increase":
        aps["badge"] = max(0, recipient.badge_count + _int(body.get("ios_badgeCount")))
    for field, key in (
        ("thread_id", "thread-id"),
        ("ios_category", "category"),
        ("ios_interruption_level", "interruption-level"),
        ("ios_relevance_score", "relevance-score"),
        ("target_content_identifier", "target-content-id"),
        ("summary_arg", "summary-arg"),
        ("summary_arg_count", "summary-arg-count"),
    ):
        if body.get(field) is not None:
            aps[key] = body[field]
    attachments = body.get("ios_attachments")
    buttons = body.get("buttons")
    if attachments or buttons or body.get("mutable_content"):
        aps["mutable-content"] = 1
    if body.get("content_available"):
        aps["content-available"] = 1

    custom: dict[str, Any] = {"i": message.notification_id}
    url = body.get("app_url") or body.get("url")
    if url:
        custom["u"] = url
    if body.get("data"):
        custom["a"] = body["data"]
    payload: dict[str, Any] = {"aps": aps, "custom": custom}
    if attachments:
        payload["att"] = attachments
    if isinstance(buttons, list) and buttons:
        payload["buttons"] = [
            {
                key: value
                for key, value in (("i", b.get("id")), ("n", b.get("text")), ("p", b.get("icon")))
                if value is not None
            }
            for b in buttons
            if isinstance(b, dict)
        ]
    extra = body.get("apns_payload_extra")
    if isinstance(extra, dict):  # internal: MobileFirst's top-level keys (payload, nid, attachment-url)
        for key, value in extra.items():
            payload.setdefault(key, value)
    return payload


def build_headers(
    message: RenderedMessage, topic: str | None, now: float, *, push_type: str | None = None
) -> list[str]:
    """The apns-* headers (authorization is added by the provider); ``push_type`` overrides the
    one the message asks for (legacy Safari only knows alerts)."""
    body = platform_body(message.body, "apns")
    push_type = push_type or push_type_of(message)
    priority = body.get("priority")
    low = push_type == "background" or (priority is not None and _int(priority, 10) < 10)
    headers = [
        "content-type: application/json",
        f"apns-push-type: {push_type}",
        f"apns-priority: {5 if low else 10}",
        f"apns-expiration: {int(now) + max(0, message.ttl_seconds)}",
    ]
    topic = topic_for(topic, push_type)
    if topic:
        headers.append(f"apns-topic: {_header_value(topic)}")
    if body.get("collapse_id"):
        headers.append(f"apns-collapse-id: {_header_value(str(body['collapse_id']))}")
    return headers


def _header_value(value: str) -> str:
    """No line breaks or NULs from a request field into a header line."""
    return value.translate({10: None, 13: None, 0: None})


def classify(response: HttpResponse) -> tuple[Outcome, str, float | None]:
    if response.status == 200:
        return Outcome.SENT, "", None
    if response.status == 0:
        return Outcome.TRANSIENT, f"transport: {response.error}"[:64], None
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        reason = orjson.loads(response.body).get("reason") or ""
    except (orjson.JSONDecodeError, AttributeError):
        reason = ""
    outcome = ERROR_OUTCOMES.get(reason)
    if outcome is None:
        if response.status == 429 or response.status >= 500:
            outcome = Outcome.TRANSIENT
        elif response.status == 410:
            outcome = Outcome.INVALID_RECIPIENT
        else:
            outcome = Outcome.ERROR
    return outcome, reason or f"http {response.status}", retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _is_device_token(identifier: str) -> bool:
    return bool(identifier) and len(identifier) % 2 == 0 and HEX_DIGITS.issuperset(identifier)


class ApnsProvider(Provider):
    platform = "apns"

    def __init__(self, app):
        super().__init__(app)
        self.token_auth = bool(app.apns_p8 and app.apns_key_id and app.apns_team_id and app.apns_bundle_id)
        self.certificate: Certificate | None = None
        if self.token_auth:
            self.identity = f"token:{app.apns_team_id}:{app.apns_key_id}"
            self.topic: str | None = app.apns_bundle_id
        elif app.apns_p12:
            self.certificate = load_certificate(app.apns_p12, app.apns_p12_password)
            self.identity = f"certificate:{self.certificate.digest}"
            self.topic = app.apns_bundle_id or self.certificate.topic
        else:
            raise ProviderNotConfigured(
                "APNs: the app has no auth key (apns_p8, key id, team id, bundle id) or .p12"
            )

    def _base_url(self, recipient: Recipient) -> str:
        # Players with test_type (1 development, 2 ad hoc) run development builds: sandbox tokens.
        if recipient.test_type in (1, 2) or self.app.apns_env == "sandbox":
            return settings.HERALD_APNS_SANDBOX_URL
        return settings.HERALD_APNS_PRODUCTION_URL

    def payload(self, recipient: Recipient, message: RenderedMessage) -> dict[str, Any]:
        return build_payload(recipient, message)

    def headers(self, message: RenderedMessage, now: float) -> list[str]:
        return build_headers(message, self.topic, now)

    def _token(self, stale: str | None = None) -> str:
        return provider_token(self.app.apns_key_id, self.app.apns_team_id, self.app.apns_p8, stale=stale)

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        """Send every item; a SENT result whose payload set ``aps.badge`` carries that count in
        ``extra[BADGE_COUNT]``, which the pipeline writes back to the player (``ios_badgeType``
        ``Increase`` then builds on what the device shows)."""
        now = time.time()
        token = self._token() if self.token_auth else None
        auth = [f"authorization: bearer {token}"] if token else []
        results: list[SendResult] = []
        by_base: dict[str, list[HttpRequest]] = {}
        badges: dict[Any, int] = {}
        for recipient, message in items:
            if not _is_device_token(recipient.identifier):
                results.append(SendResult(recipient.player_id, Outcome.INVALID_RECIPIENT, "BadDeviceToken"))
                continue
            base = self._base_url(recipient)
            payload = self.payload(recipient, message)
            if "badge" in payload["aps"]:
                badges[recipient.player_id] = payload["aps"]["badge"]
            by_base.setdefault(base, []).append(
                HttpRequest(
                    url=f"{base}/3/device/{recipient.identifier}",
                    body=orjson.dumps(payload),
                    headers=[*self.headers(message, now), *auth],
                    tag=recipient.player_id,
                )
            )
        expired = False
        for base, requests in by_base.items():
            for response in _client(base, self.identity, self.certificate).send_all(requests):
                outcome, reason, retry_after = classify(response)
                expired |= reason == "ExpiredProviderToken"
                result = SendResult(response.request.tag, outcome, reason, retry_after)
                if outcome is Outcome.SENT and response.request.tag in badges:
                    result.extra[BADGE_COUNT] = badges[response.request.tag]
                results.append(result)
        if expired and token is not None:
            self._token(stale=token)  # once per batch; the refused sends are retried with the new one
        return results
