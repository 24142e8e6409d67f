"""Web Push (RFC 8030) for Chrome (device type 5) and Firefox (8): aes128gcm payloads (RFC 8291,
on ``cryptography``'s primitives) signed for with VAPID (RFC 8292, py-vapid), sent over the shared pycurl
client (``http2.Http2Client``), concurrently to every push service origin in the batch.

SSRF: every endpoint is checked at send time with ``core.ssrf.resolve_public_url`` (once per push
service origin and step, ``OriginMemo``, plus each URL's own text checks) and the request
is pinned to the addresses checked (``CURLOPT_RESOLVE``), so DNS rebinding between the check and
the connection cannot reach a private address. Redirects are never followed and proxies from the
environment are ignored. An endpoint that resolves to a non-public address (not allowed by
HERALD_ALLOWED_PRIVATE_NETWORKS) ends ERROR "UnsafeEndpoint" (never sent, not unsubscribed: the
allow-list may be what is wrong); one that does not resolve is TRANSIENT "EndpointUnresolvable".

The plaintext is OneSignal's web SDK payload (its service worker's ``RawNotificationPayload``):
``{"title", "alert", "icon", "image", "badge", "o": [buttons], "custom": {"i", "u", "a"}}``, where
``custom.i`` is the notification id (the simulator's duplicate identity, like FCM's).
"""

from __future__ import annotations

import binascii
import email.utils
import hmac
import os
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pycurl
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from py_vapid import Vapid
from py_vapid import jwt as vapid_jwt

from apps.vapid import b64url_decode, ensure_vapid_keys
from core.ssrf import OriginMemo, PinnedUrl, UnresolvableHost, UnsafeUrl
from notifications.providers.base import Outcome, Provider, Recipient, RenderedMessage, SendResult
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client

# RFC 8291 in one 4096-byte record: 4096 - 86 (header) - 16 (tag) - 1 (delimiter).
MAX_PLAINTEXT_BYTES = 3993
VAPID_LIFETIME_SECONDS = 12 * 3600
# A VAPID JWT is reused until this much of its life is left, then signed anew.
VAPID_REFRESH_MARGIN_SECONDS = 3600
DEFAULT_VAPID_SUBJECT = "mailto:webpush@herald.invalid"
FIREFOX = 8
# A UUID: what the notification id costs in the payload, for estimates made before it exists.
ID_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"

_lock = threading.Lock()
_jwts: dict[tuple[str, str, str, str], tuple[str, float]] = {}


# --- payload ----------------------------------------------------------------------------------


def build_payload(
    *,
    notification_id: str,
    heading: str | None,
    content: str | None,
    body: Mapping[str, Any],
    device_type: int = 5,
    site_name: str | None = None,
    default_icon: str | None = None,
) -> dict[str, Any]:
    """OneSignal's web push payload for one recipient."""
    custom: dict[str, Any] = {"i": notification_id}
    url = body.get("web_url") or body.get("url")
    if url:
        custom["u"] = url
    if body.get("data"):
        custom["a"] = body["data"]
    payload: dict[str, Any] = {"custom": custom}
    title = heading or site_name
    if title:
        payload["title"] = title
    if content:
        payload["alert"] = content
    icon = (body.get("firefox_icon") if device_type == FIREFOX else None) or body.get("chrome_web_icon")
    icon = icon or default_icon
    if icon:
        payload["icon"] = icon
    if body.get("chrome_web_image"):
        payload["image"] = body["chrome_web_image"]
    if body.get("chrome_web_badge"):
        payload["badge"] = body["chrome_web_badge"]
    buttons = body.get("web_buttons")
    if isinstance(buttons, list) and buttons:
        payload["o"] = [
            {
                k: v
                for k, v in {
                    "i": button.get("id"),
                    "n": button.get("text"),
                    "p": button.get("icon"),
                    "u": button.get("url"),
                }.items()
                if v
            }
            for button in buttons
            if isinstance(button, dict)
        ]
    return payload


def estimated_plaintext_size(body: Mapping[str, Any], app) -> int:
    """The largest plaintext this notification can produce before tag substitution: the longest
    heading and content of any language, with every web field. Used by POST /notifications."""

    def longest(key: str) -> str | None:
        # Longest as JSON, not as text: escapes make a shorter text longer ("\x07" is 6 bytes in
        # JSON), which let a 3,994-byte plaintext through (found by tests/fuzz).
        texts = body.get(key)
        if not isinstance(texts, dict) or not texts:
            return None
        return max(
            (t for t in texts.values() if isinstance(t, str)),
            key=lambda t: len(orjson.dumps(t)),
            default=None,
        )

    sizes = [
        len(
            orjson.dumps(
                build_payload(
                    notification_id=ID_PLACEHOLDER,
                    heading=longest("headings"),
                    content=longest("contents"),
                    body=body,
                    device_type=device_type,
                    site_name=getattr(app, "site_name", None),
                    default_icon=getattr(app, "chrome_web_default_notification_icon", None),
                )
            )
        )
        for device_type in (5, FIREFOX)
    ]
    return max(sizes)


# --- keys and VAPID -----------------------------------------------------------------------------


def subscription_keys(recipient: Recipient) -> tuple[bytes, bytes] | None:
    """(p256dh, auth) of a subscription when both are well-formed, else None."""
    if not recipient.web_p256 or not recipient.web_auth:
        return None
    try:
        p256dh, auth = b64url_decode(recipient.web_p256), b64url_decode(recipient.web_auth)
    except (binascii.Error, ValueError):
        return None
    if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
        return None
    return p256dh, auth


# RFC 8291 §3.3-3.4 and RFC 8188 §2.2-2.3: the info strings of the three HKDF expansions; the
# trailing 0x01 is HKDF-Expand's block counter (every output here fits in one SHA-256 block).
KEY_INFO = b"WebPush: info\x00"
CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
RECORD_SIZE = struct.pack("!L", 4096)
LAST_RECORD = b"\x02"


def encrypt(
    plaintext: bytes,
    keys: tuple[bytes, bytes],
    *,
    salt: bytes | None = None,
    ephemeral: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """aes128gcm body for a subscription's (p256dh, auth) keys (RFC 8291), in one record, with a
    new ephemeral ECDH key and salt for every message (``salt`` and ``ephemeral`` are given only by
    tests, to compare with a reference).

    Written on ``cryptography``'s primitives rather than through http_ece, which it matches byte
    for byte (tests/notifications/test_webpush_encryption.py; the gateway simulator decrypts with
    http_ece): http_ece builds an HKDF object per derivation, derives the pseudorandom key twice
    and serialises the ephemeral key twice, 118 µs a message against 99 µs here on the benchmark
    machine, and a fan-out encrypts once per Web Push recipient. The ECDH itself (52 µs) and the
    key pair (12 µs) cannot be shared between recipients."""
    p256dh, auth = keys
    salt = salt or os.urandom(16)
    ephemeral = ephemeral or ec.generate_private_key(ec.SECP256R1())
    shared = ephemeral.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    )
    sender = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    ikm = _hkdf_expand(_hkdf_extract(auth, shared), KEY_INFO + p256dh + sender + b"\x01")
    prk = _hkdf_extract(salt, ikm)
    cek, nonce = _hkdf_expand(prk, CEK_INFO)[:16], _hkdf_expand(prk, NONCE_INFO)[:12]
    record = AESGCM(cek).encrypt(nonce, plaintext + LAST_RECORD, None)
    return salt + RECORD_SIZE + bytes([len(sender)]) + sender + record


# HKDF-SHA256 (RFC 5869) for outputs of at most 32 bytes, one Expand block: the info passed in
# ends with the block counter 0x01.
def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, "sha256")


def _hkdf_expand(prk: bytes, info_and_counter: bytes) -> bytes:
    return hmac.digest(prk, info_and_counter, "sha256")


def vapid_subject(app) -> str:
    if app.vapid_subject:
        return app.vapid_subject
    for candidate in (app.chrome_web_origin, settings.HERALD_PUBLIC_URL):
        if candidate and candidate.startswith("https://"):
            return candidate.rstrip("/")
    return DEFAULT_VAPID_SUBJECT


def vapid_authorization(app, origin: str, *, now: float | None = None) -> str:
    """``vapid t=<JWT>, k=<public key>`` for one push service origin (RFC 8292), reused for most of
    its 12-hour life. Signed with py-vapid's ES256 signer; its ``Vapid.sign`` is not used because
    its ``aud`` pattern refuses IPv6 origins."""
    now = time.time() if now is None else now
    subject = vapid_subject(app)
    key = (str(app.pk), app.vapid_public_key, origin, subject)
    with _lock:
        cached = _jwts.get(key)
        if cached is not None and cached[1] - VAPID_REFRESH_MARGIN_SECONDS > now:
            return cached[0]
    expires = int(now) + VAPID_LIFETIME_SECONDS
    signer = Vapid.from_raw(app.vapid_private_key.encode())
    token = vapid_jwt.sign({"aud": origin, "exp": expires, "sub": subject}, signer.private_key)
    header = f"vapid t={token}, k={app.vapid_public_key}"
    with _lock:
        if len(_jwts) > 10_000:
            _jwts.clear()
        _jwts[key] = (header, expires)
    return header


# --- transport ----------------------------------------------------------------------------------


@dataclass
class PinnedRequest(HttpRequest):
    resolve: list[str] = field(default_factory=list)  # CURLOPT_RESOLVE entries (core.ssrf)


class PinnedHttpClient(Http2Client):
    """The shared pycurl client, hardened for URLs that come from devices: connections go only to
    the addresses the SSRF check resolved, never through an environment proxy, never to another
    URL by redirect, and only over http(s)."""

    def _handle_for(self, request: HttpRequest) -> pycurl.Curl:
        handle = super()._handle_for(request)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS | pycurl.PROTO_HTTP)
        if isinstance(request, PinnedRequest) and request.resolve:
            handle.setopt(pycurl.RESOLVE, request.resolve)
        if request.url[:7].lower() == "http://":
            # Only allow-listed (private) push services get here; HTTP/2 without TLS is rare.
            handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        return handle


def _client() -> PinnedHttpClient:
    return shared_client("webpush", PinnedHttpClient)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def classify(response: HttpResponse) -> tuple[Outcome, str, float | None]:
    status = response.status
    if status in (200, 201, 202):
        return Outcome.SENT, "", None
    if status == 0:
        return Outcome.TRANSIENT, f"transport: {response.error}"[:64], None
    if status == 404:
        return Outcome.INVALID_RECIPIENT, "NotFound", None
    if status == 410:
        return Outcome.INVALID_RECIPIENT, "Gone", None
    if status == 413:
        return Outcome.ERROR, "PayloadTooLarge", None
    retry_after = _retry_after(response.headers.get("retry-after"))
    if status == 429:
        return Outcome.TRANSIENT, "TooManyRequests", retry_after
    if status >= 500:
        return Outcome.TRANSIENT, f"http {status}", retry_after
    return Outcome.ERROR, f"http {status}", None


# --- provider -----------------------------------------------------------------------------------


class WebPushProvider(Provider):
    platform = "webpush"

    def __init__(self, app):
        super().__init__(app)
        if not app.vapid_private_key or not app.vapid_public_key:
            ensure_vapid_keys(app)

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        results: list[SendResult] = []
        requests: list[PinnedRequest] = []
        endpoints = OriginMemo(purpose="web push endpoint")
        for recipient, message in items:
            request = self._request(recipient, message, results, endpoints)
            if request is not None:
                requests.append(request)
        if requests:
            for response in _client().send_all(requests):
                outcome, reason, retry_after = classify(response)
                results.append(SendResult(response.request.tag, outcome, reason, retry_after))
        return results

    def _request(
        self, recipient: Recipient, message: RenderedMessage, results: list[SendResult], endpoints: OriginMemo
    ) -> PinnedRequest | None:
        """The request for one recipient, or None after appending why it cannot be sent."""

        def fail(outcome: Outcome, reason: str) -> None:
            results.append(SendResult(recipient.player_id, outcome, reason))

        try:
            pinned: PinnedUrl = endpoints.resolve(recipient.identifier)
        except UnresolvableHost:
            fail(Outcome.TRANSIENT, "EndpointUnresolvable")
            return None
        except UnsafeUrl:
            fail(Outcome.ERROR, "UnsafeEndpoint")
            return None
        keys = subscription_keys(recipient)
        if keys is None:
            fail(Outcome.ERROR, "InvalidSubscriptionKeys")
            return None
        body = message.body
        plaintext = orjson.dumps(
            build_payload(
                notification_id=message.notification_id,
                heading=message.heading,
                content=message.content,
                body=body,
                device_type=recipient.device_type,
                site_name=self.app.site_name,
                default_icon=self.app.chrome_web_default_notification_icon,
            )
        )
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            fail(Outcome.ERROR, "PayloadTooLarge")
            return None
        try:
            encrypted = encrypt(plaintext, keys)
        except Exception:  # any failure here is the subscription's keys
            fail(Outcome.ERROR, "InvalidSubscriptionKeys")
            return None
        priority = body.get("priority")
        headers = [
            f"authorization: {vapid_authorization(self.app, pinned.origin)}",
            "content-encoding: aes128gcm",
            "content-type: application/octet-stream",
            f"ttl: {max(0, int(message.ttl_seconds))}",
            f"urgency: {'high' if priority is not None and int(priority) >= 10 else 'normal'}",
        ]
        if body.get("web_push_topic"):
            headers.append(f"topic: {body['web_push_topic']}")
        return PinnedRequest(
            url=recipient.identifier,
            body=encrypted,
            headers=headers,
            tag=recipient.player_id,
            resolve=pinned.curl_resolve(),
        )
