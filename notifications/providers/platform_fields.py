"""Per-platform request fields: one notification, different fields for each gateway.

A OneSignal request has one set of fields for every platform. A MobileFirst message has one per
platform (``settings.apns``, ``settings.gcm``, ``settings.wns``): its APNs payload, its Android
collapse key and its WNS tile are separate things. ``imfpush.messages`` stores them under the
internal body key ``herald_platform_fields``::

    {"herald_platform_fields": {"apns": {...}, "fcm": {...}, "wns": {...}}}

and each provider's build functions read ``platform_body(message.body, "<platform>")``: the
request with that platform's fields laid over it. Keys starting with ``herald_`` are internal:
the public ``POST /notifications`` refuses them (``notifications.validation``).

Internal keys the providers read besides the OneSignal fields (only ever set by Herald):

- ``apns_payload_extra`` (APNs): an object of top-level payload keys added next to ``aps`` and
  ``custom`` (never replacing them): MobileFirst's ``payload``, ``nid``, ``attachment-url``.
- ``fcm_data_extra`` (FCM): string values added to the message's ``data``.
- ``fcm_android_notification`` (FCM): fields laid over ``android.notification``
  (``visibility``, ``light_settings``, ``notification_priority``, ``image``, ``title`` ...).
- ``platform_ttl`` (FCM, WNS): seconds; the gateway TTL is at most this.
- ``wns_notifications`` (WNS): ``[{"type": "toast"|"tile"|"badge"|"raw", "payload"?: str,
  "tag"?: str}]``: each entry is its own WNS request to the channel; an entry without
  ``payload`` is the default toast built from the message.
- ``wns_cache_policy`` (WNS): ``"cache"`` or ``"no-cache"``.
"""

from __future__ import annotations

from typing import Any

PLATFORM_FIELDS = "herald_platform_fields"
INTERNAL_PREFIX = "herald_"


def platform_body(body: dict[str, Any], platform: str) -> dict[str, Any]:
    """``body`` with ``platform``'s own fields laid over it (``body`` itself when it has none)."""
    fields = body.get(PLATFORM_FIELDS)
    if not isinstance(fields, dict) or not isinstance(fields.get(platform), dict):
        return body
    return {**body, **fields[platform]}


def capped_ttl(body: dict[str, Any], ttl_seconds: int) -> int:
    """What is left of the notification's TTL, capped by the platform's ``platform_ttl``."""
    cap = body.get("platform_ttl")
    ttl = max(0, ttl_seconds)
    if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0:
        return min(ttl, cap)
    return ttl
