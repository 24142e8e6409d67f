"""Windows Push Notification Services (device type 6, MobileFirst platform ``W``).

Auth: the OAuth 2 client-credentials grant against ``settings.HERALD_WNS_TOKEN_URL`` (Microsoft's
``https://login.live.com/accesstoken.srf`` by default, the simulator in tests) with the app's
Package SID and client secret, ``scope=notify.windows.com``. The token is cached per app
credentials until a minute before it expires, and dropped when WNS answers 401.

Each player's identifier is its channel URI; Herald POSTs to it with ``X-WNS-Type: wns/toast``
(``wns/raw`` for a notification without text), ``X-WNS-Cache-Policy: cache``, ``X-WNS-TTL`` (what
is left of the notification's ``ttl``) and ``X-WNS-Tag`` from ``collapse_id`` when it fits. The
toast is ``ToastGeneric`` with the heading and content; its ``launch`` argument is JSON
``{"i": <notification id>, "u"?: url, "a"?: data}``, as OneSignal's SDKs read ``custom``.
A MobileFirst message brings its own WNS notifications instead (``wns_notifications``: toast,
tile, badge and raw, each its own request; notifications.providers.platform_fields), with its
cache policy and TTL; the first one's answer is the player's outcome, unless any says the
channel is gone.

Answers: 200 SENT; 404 INVALID_RECIPIENT "NotFound" and 410 "ChannelExpired" (the player is
unsubscribed); 401 TRANSIENT (the token is refreshed before the retry); 406 (throttled), 429 and
5xx TRANSIENT; 400, 403, 405 and 413 ERROR.

SSRF and token leaks: channel URIs come from devices, and each request carries the app's access
token, so Herald only POSTs over https to hosts under ``notify.windows.com`` or to the origin of
HERALD_WNS_TOKEN_URL (the simulator, or a self-hosted stand-in the operator configured). Any
other URI is INVALID_RECIPIENT "InvalidChannelUri" and is never contacted.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import requests
from django.conf import settings

from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client
from notifications.providers.platform_fields import capped_ttl, platform_body

WNS_HOST_SUFFIX = ".notify.windows.com"
SCOPE = "notify.windows.com"
TOKEN_TIMEOUT_SECONDS = 20
TOKEN_EXPIRY_MARGIN_SECONDS = 60
MAX_TAG_LENGTH = 16
# WNS refuses a notification body over 5000 bytes (413); the toast escapes its texts as XML.
MAX_PAYLOAD = 5000
STATUS_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "Throttled",
    410: "ChannelExpired",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

_lock = threading.Lock()
_tokens: dict[str, tuple[str, float]] = {}  # credentials digest -> (access token, expiry)


class WnsAuthError(Exception):
    """The token endpoint refused the credentials: retrying will not help."""


def _cache_key(package_sid: str, client_secret: str) -> str:
    material = f"{settings.HERALD_WNS_TOKEN_URL}\0{package_sid}\0{client_secret}"
    return hashlib.sha256(material.encode()).hexdigest()


def _http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or REQUESTS_CA_BUNDLE from the environment
    if settings.HERALD_GATEWAY_CA_FILE:
        session.verify = settings.HERALD_GATEWAY_CA_FILE
    return session


def access_token(package_sid: str, client_secret: str, *, force_refresh: bool = False) -> str:
    """A cached WNS access token; raises WnsAuthError or requests.RequestException."""
    key = _cache_key(package_sid, client_secret)
    with _lock:
        cached = _tokens.get(key)
        if cached is not None and not force_refresh and cached[1] > time.time():
            return cached[0]
    with _http_session() as session:
        response = session.post(
            settings.HERALD_WNS_TOKEN_URL,
            data={
                "grant_type": "client_credentials",
                "client_id": package_sid,
                "client_secret": client_secret,
                "scope": SCOPE,
            },
            timeout=TOKEN_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    if response.status_code in (400, 401, 403):
        try:
            error = response.json().get("error", "")
        except ValueError:
            error = ""
        raise WnsAuthError(error or f"http {response.status_code}")
    response.raise_for_status()
    answer = response.json()
    token = answer["access_token"]
    expires_in = int(answer.get("expires_in") or 3600)
    with _lock:
        _tokens[key] = (token, time.time() + max(0, expires_in - TOKEN_EXPIRY_MARGIN_SECONDS))
    return token


def forget_token(package_sid: str, client_secret: str) -> None:
    with _lock:
        _tokens.pop(_cache_key(package_sid, client_secret), None)


def _client() -> Http2Client:
    return shared_client("wns")


def allowed_channel(uri: str) -> bool:
    """Whether Herald may POST (with the app's token) to this channel URI."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return False
    host = parts.hostname.lower()
    if host.endswith(WNS_HOST_SUFFIX):
        return True
    token_url = urlsplit(settings.HERALD_WNS_TOKEN_URL)
    return (token_url.scheme, token_url.hostname, token_url.port) == ("https", host, port)


def launch_argument(message: RenderedMessage) -> str:
    body = message.body
    arguments: dict[str, Any] = {"i": message.notification_id}
    url = body.get("url") or body.get("app_url")
    if url:
        arguments["u"] = url
    if body.get("data"):
        arguments["a"] = body["data"]
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def build_toast(message: RenderedMessage) -> bytes:
    texts = "".join(f"<text>{escape(t)}</text>" for t in (message.heading, message.content) if t)
    audio = ""
    sound = message.body.get("wp_wns_sound")
    if isinstance(sound, str) and sound:
        source = sound if ":" in sound else f"ms-appx:///{sound}"
        audio = f"<audio src={quoteattr(source)}/>"
    return (
        f"<toast launch={quoteattr(launch_argument(message))}>"
        f'<visual><binding template="ToastGeneric">{texts}</binding></visual>{audio}</toast>'
    ).encode()


WNS_TYPES = {"toast": "text/xml", "tile": "text/xml", "badge": "text/xml", "raw": "application/octet-stream"}


def build_request(
    recipient: Recipient, message: RenderedMessage, token: str, entry: dict[str, Any] | None = None
) -> HttpRequest:
    """One POST to the channel: ``entry`` (one of the internal ``wns_notifications``) gives its
    type, body and tag; without one (or without its ``payload``) the toast built from the message,
    or a raw notification for a message without text."""
    body = platform_body(message.body, "wns")
    policy = body.get("wns_cache_policy")
    headers = [
        f"authorization: Bearer {token}",
        f"x-wns-cache-policy: {policy if policy in ('cache', 'no-cache') else 'cache'}",
        f"x-wns-ttl: {capped_ttl(body, message.ttl_seconds)}",
    ]
    kind = entry.get("type") if entry else None
    if kind in WNS_TYPES and isinstance(entry.get("payload"), str):
        headers += [f"content-type: {WNS_TYPES[kind]}", f"x-wns-type: wns/{kind}"]
        payload = entry["payload"].encode()
    elif message.heading or message.content:
        headers += ["content-type: text/xml", "x-wns-type: wns/toast"]
        payload = build_toast(message)
    else:
        headers += ["content-type: application/octet-stream", "x-wns-type: wns/raw"]
        payload = launch_argument(message).encode()
    tag = entry.get("tag") if entry and "tag" in entry else body.get("collapse_id")
    if isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_LENGTH and tag.isprintable():
        headers.append(f"x-wns-tag: {tag}")
    return HttpRequest(url=recipient.identifier, body=payload, headers=headers, tag=recipient.player_id)


def build_requests(recipient: Recipient, message: RenderedMessage, token: str) -> list[HttpRequest]:
    """Every WNS notification of the message for one channel: one per internal
    ``wns_notifications`` entry (toast, tile, badge, raw), else the single default one. The first
    request is the primary one; the others carry ``(player id, n)`` tags."""
    entries = platform_body(message.body, "wns").get("wns_notifications")
    if not isinstance(entries, list) or not entries:
        return [build_request(recipient, message, token)]
    requests_ = [
        build_request(recipient, message, token, e if isinstance(e, dict) else None) for e in entries
    ]
    for n, request in enumerate(requests_[1:], 1):
        request.tag = (recipient.player_id, n)
    return requests_


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def classify(response: HttpResponse) -> tuple[Outcome, str, float | None]:
    status = response.status
    if status == 200:
        return Outcome.SENT, "", None
    if status == 0:
        return Outcome.TRANSIENT, f"transport: {response.error}"[:64], None
    reason = STATUS_REASONS.get(status, f"http {status}")
    if status in (404, 410):
        return Outcome.INVALID_RECIPIENT, reason, None
    if status == 401:
        return Outcome.TRANSIENT, "Unauthorized", None
    if status in (406, 429) or status >= 500:
        return Outcome.TRANSIENT, reason, _retry_after(response.headers.get("retry-after"))
    return Outcome.ERROR, reason, None


class WnsProvider(Provider):
    platform = "wns"

    def __init__(self, app):
        super().__init__(app)
        if not app.wns_package_sid or not app.wns_client_secret:
            raise ProviderNotConfigured("WNS: the app has no Package SID and client secret")

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        if not items:
            return []
        sid, secret = self.app.wns_package_sid, self.app.wns_client_secret
        try:
            token = access_token(sid, secret)
        except WnsAuthError as exc:
            reason = f"WnsAuth: {exc}"[:64]
            return [SendResult(r.player_id, Outcome.ERROR, reason) for r, _ in items]
        except (requests.RequestException, ValueError, KeyError) as exc:
            reason = f"WnsToken: {type(exc).__name__}"[:64]
            return [SendResult(r.player_id, Outcome.TRANSIENT, reason) for r, _ in items]
        results: list[SendResult] = []
        requests_: list[HttpRequest] = []
        for recipient, message in items:
            if allowed_channel(recipient.identifier):
                requests_.extend(build_requests(recipient, message, token))
            else:
                invalid = SendResult(recipient.player_id, Outcome.INVALID_RECIPIENT, "InvalidChannelUri")
                results.append(invalid)
        unauthorized = False
        primary: dict[Any, SendResult] = {}
        expired: dict[Any, SendResult] = {}
        for response in _client().send_all(requests_):
            outcome, reason, retry_after = classify(response)
            unauthorized |= response.status == 401
            tag = response.request.tag
            if isinstance(tag, tuple):  # a further notification (tile, badge...) to the same channel
                if outcome is Outcome.INVALID_RECIPIENT:
                    expired[tag[0]] = SendResult(tag[0], outcome, reason)
                continue
            primary[tag] = SendResult(tag, outcome, reason, retry_after)
        # The primary notification's outcome stands for the player, unless the channel is gone.
        results += [expired.get(player_id, result) for player_id, result in primary.items()]
        if unauthorized:
            forget_token(sid, secret)
        return results
