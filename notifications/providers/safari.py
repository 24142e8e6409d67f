"""Safari (device type 7): two kinds of subscription share the device type.

- **Safari 16+** subscribes with standard Web Push: the player's identifier is the push service
  endpoint (``https://web.push.apple.com/...``) and its keys are ``web_auth``/``web_p256``, as for
  Chrome and Firefox. Those players go through ``WebPushProvider`` (VAPID, aes128gcm).
- **Legacy Safari** (macOS Safari before 16, "Safari Push Notifications") registered through a
  push package and got an APNs device token (64 hex characters). Those players go through APNs
  with the app's Safari certificate (``safari_apns_p12``), whose Website Push ID
  (``App.safari_push_id``, ``web.com.example``) is the ``apns-topic``. Website push has no sandbox:
  the production gateway is used whatever ``apns_env`` (the iOS app's setting) says.

The legacy payload is Apple's website push payload::

    {"aps": {"alert": {"title": ..., "body": ...}, "url-args": [<path>]}, "custom": {"i": <id>}}

``url-args`` fills the placeholders of the push package's ``urlFormatString``. Herald sends
exactly one argument, the launch URL's path, query and fragment without the leading ``/`` (``""``
for a notification without ``url``/``web_url``), so the push package's ``urlFormatString`` should
be ``https://<your site>/%@`` (the number of arguments must match, or Safari drops the
notification). ``custom.i`` (the notification id, Herald's convention on every platform) is
ignored by Safari. OneSignal's requests have no field for the alert's ``action`` label, so Safari
shows its default.

Identifiers that are neither an endpoint nor a 64-hex token can never be delivered:
INVALID_RECIPIENT ``BadDeviceToken``. When legacy Safari is not configured for the app, its
players end ERROR with the reason (the Web Push players of the batch are still sent).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings

from notifications.providers.apns import (
    MAX_PAYLOAD,
    ApnsProvider,
    build_headers,
    load_certificate,
)
from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.webpush import WebPushProvider

LEGACY_TOKEN_LENGTH = 64
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_web_push_endpoint(identifier: str) -> bool:
    return identifier[:8].lower().startswith(("https://", "http://"))


def is_legacy_token(identifier: str) -> bool:
    return len(identifier) == LEGACY_TOKEN_LENGTH and HEX_DIGITS.issuperset(identifier)


def url_args(body: dict[str, Any]) -> list[str]:
    """One argument for ``urlFormatString`` ``https://<site>/%@``: the launch URL's path, query
    and fragment without the leading slash, or ``""`` (the site's home page)."""
    url = body.get("web_url") or body.get("url")
    if not isinstance(url, str) or not url:
        return [""]
    parts = urlsplit(url)
    arg = parts.path.lstrip("/")
    if parts.query:
        arg += f"?{parts.query}"
    if parts.fragment:
        arg += f"#{parts.fragment}"
    return [arg]


def build_legacy_payload(message: RenderedMessage, *, default_title: str) -> dict[str, Any]:
    """Apple's website push payload; title and body are both required by Safari."""
    alert = {"title": message.heading or default_title, "body": message.content or ""}
    return {
        "aps": {"alert": alert, "url-args": url_args(message.body)},
        "custom": {"i": message.notification_id},
    }


class SafariApnsProvider(ApnsProvider):
    """APNs with the app's Safari certificate: certificate auth only (OneSignal's Safari
    credentials are a .p12), the Website Push ID as topic, the production gateway, the legacy
    payload, always an alert."""

    def __init__(self, app):
        # Not ApnsProvider.__init__: that one reads the iOS credentials (apns_p8, apns_p12).
        Provider.__init__(self, app)
        if not app.safari_apns_p12:
            raise ProviderNotConfigured("Safari legacy push: the app has no safari_apns_p12")
        self.token_auth = False
        self.certificate = load_certificate(app.safari_apns_p12, app.safari_apns_p12_password, label="Safari")
        self.identity = f"certificate:{self.certificate.digest}"
        self.topic = app.safari_push_id or self.certificate.topic
        if not self.topic or not self.topic.startswith("web."):
            raise ProviderNotConfigured("Safari: the certificate names no Website Push ID (web.*)")

    def _base_url(self, recipient: Recipient) -> str:
        return settings.HERALD_APNS_PRODUCTION_URL

    def payload(self, recipient: Recipient, message: RenderedMessage) -> dict[str, Any]:
        return build_legacy_payload(message, default_title=self.app.site_name or self.app.name)

    def headers(self, message: RenderedMessage, now: float) -> list[str]:
        return build_headers(message, self.topic, now, push_type="alert")

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        results: list[SendResult] = []
        sendable = []
        for recipient, message in items:
            # Title and body are the user's text, so their size is known only now (per language
            # and after tag substitution); APNs would answer 413.
            if len(orjson.dumps(self.payload(recipient, message))) > MAX_PAYLOAD:
                results.append(SendResult(recipient.player_id, Outcome.ERROR, "PayloadTooLarge"))
            else:
                sendable.append((recipient, message))
        return results + (super().send(sendable) if sendable else [])


class SafariProvider(Provider):
    platform = "safari"

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        results: list[SendResult] = []
        web: list[tuple[Recipient, RenderedMessage]] = []
        legacy: list[tuple[Recipient, RenderedMessage]] = []
        for item in items:
            identifier = item[0].identifier
            if is_web_push_endpoint(identifier):
                web.append(item)
            elif is_legacy_token(identifier):
                legacy.append(item)
            else:
                results.append(SendResult(item[0].player_id, Outcome.INVALID_RECIPIENT, "BadDeviceToken"))
        if web:
            results += WebPushProvider(self.app).send(web)
        if legacy:
            try:
                provider = SafariApnsProvider(self.app)
            except ProviderNotConfigured as exc:
                reason = str(exc)[:64]
                results += [SendResult(r.player_id, Outcome.ERROR, reason) for r, _ in legacy]
            else:
                results += provider.send(legacy)
        return results
