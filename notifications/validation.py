"""POST /notifications: validation in OneSignal's order (onesignal-api.md §4.1).

auth -> JSON and app_id -> targeting present -> one targeting mode and one channel -> content ->
id formats -> send_after / delayed_option / delivery_time_of_day -> sizes and limits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from apps.models import App
from core.api.base import parse_uuid
from core.api.errors import ApiError
from core.ssrf import UnsafeUrl, check_public_url
from notifications.models import Template
from notifications.platforms import PLATFORM_FLAGS, device_types_for
from notifications.timeparse import parse_send_after, parse_time_of_day
from players.validation import MAX_IDENTIFIER_LENGTH

NO_TARGETING = "You must include which players, segments, or tags you wish to send this notification to."
INCOMPATIBLE_TARGETING = "Targeting parameters are incompatible. Use only one targeting mode per request."
MIXED_CHANNELS = (
    "Platforms You may only send to one delivery channel at a time. Make sure you are only including one of "
    "push platforms, Email, or SMS."
)
NULL_CONTENT = "Notification content must not be null for any languages."
NO_ENGLISH = "Message Notifications must have English language content"
PAST_SCHEDULE = "Schedule Notifications may not be scheduled in the past."
BAD_TIME_OF_DAY = "Schedule delivery_time_of_day must be valid time"
DATA_TOO_LARGE = "Data Data must be no more than 2048 bytes long"
PAYLOAD_TOO_LARGE = "Option Metadata must not exceed 3500 bytes."

# Body keys starting with this are Herald's own (a MobileFirst message's target and per-platform
# fields): ``notification_create(internal=...)`` sets them, the public API refuses them.
INTERNAL_PREFIX = "herald_"
MFP_TARGET = "herald_mfp_target"
# MobileFirst platform codes -> device types, and the SMS channel (notificationType 2 and 3).
MFP_PLATFORM_DEVICE_TYPES = {"A": 0, "G": 1, "W": 6}
SMS_DEVICE_TYPE = 14

# Targeting field -> mode. Segments may be combined only with each other.
TARGETING_MODES = {
    "included_segments": "segments",
    "excluded_segments": "segments",
    "filters": "filters",
    "include_player_ids": "player_ids",
    "include_subscription_ids": "subscription_ids",
    "include_external_user_ids": "external_ids",
    "include_aliases": "aliases",
    "include_ios_tokens": "tokens",
    "include_android_reg_ids": "tokens",
    "include_amazon_reg_ids": "tokens",
    "include_chrome_reg_ids": "tokens",
    "include_chrome_web_reg_ids": "tokens",
    "include_wp_wns_uris": "tokens",
    "email_to": "email",
    "include_email_tokens": "email",
    "include_phone_numbers": "sms",
    # Internal (never accepted from the public API): a MobileFirst message's target, see
    # notifications.targeting.mfp_audience.
    MFP_TARGET: "mfp",
}
LIST_LIMITS = {"include_aliases": 20_000, "include_subscription_ids": 20_000}
DEFAULT_LIST_LIMIT = 2_000
# Each id, token, address or segment name in a targeting list: the longest a player identifier
# may be, which is longer than any id, external id or segment name.
MAX_LIST_ITEM_LENGTH = MAX_IDENTIFIER_LENGTH
TOKEN_FIELD_DEVICE_TYPE = {
    "include_ios_tokens": 0,
    "include_android_reg_ids": 1,
    "include_amazon_reg_ids": 2,
    "include_chrome_reg_ids": 4,
    "include_chrome_web_reg_ids": 5,
    "include_wp_wns_uris": 6,
}
EMAIL_FIELDS = ("email_subject", "email_body", "email_preheader", "email_from_name", "email_from_address")
SMS_FIELDS = ("sms_from", "sms_media_urls")
LANGUAGE_MAPS = ("contents", "headings", "subtitle")
WEB_PUSH_TOO_LARGE = "Message Web push payload must not exceed {limit} bytes; this notification's is {size}"
# Chrome, Firefox and Safari (whose Safari 16+ players are Web Push subscriptions).
WEB_PUSH_DEVICE_TYPES = frozenset({5, 7, 8})
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Image fields: devices fetch them, so they must not point at loopback/private/link-local hosts.
IMAGE_URL_FIELDS = (
    "big_picture",
    "large_icon",
    "small_icon",
    "chrome_web_image",
    "chrome_web_icon",
    "chrome_web_badge",
    "chrome_big_picture",
    "chrome_icon",
    "firefox_icon",
    "huawei_big_picture",
    "huawei_large_icon",
    "huawei_small_icon",
    "adm_big_picture",
    "adm_large_icon",
    "adm_small_icon",
)
MAX_TTL = 2_419_200
DEFAULT_TTL = 259_200
SKEW = timedelta(seconds=60)


@dataclass
class NotificationRequest:
    """A validated request: the body to store and echo, plus what the pipeline needs typed."""

    body: dict[str, Any]
    mode: str
    channel: str
    device_types: set[int]
    send_after: datetime
    scheduled: bool
    delayed_option: str | None = None
    delivery_time_of_day: time | None = None
    throttle_rate_per_minute: int | None = None
    ttl: int = DEFAULT_TTL
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _present(body: dict, key: str) -> bool:
    return key in body and body[key] is not None


def _merge_template(app: App, body: dict) -> dict:
    template_id = body.get("template_id")
    if template_id in (None, ""):
        return body
    template_uuid = parse_uuid(template_id)
    template = Template.objects.filter(app=app, pk=template_uuid).first() if template_uuid else None
    if template is None:
        raise ApiError.bad_request(f"template_id {template_id} not found"[:200])
    return {**template.fields, **body}


def _targeting_mode(body: dict) -> str:
    modes = {mode for key, mode in TARGETING_MODES.items() if _present(body, key)}
    if not modes:
        raise ApiError.bad_request(NO_TARGETING)
    if len(modes) > 1:
        raise ApiError.bad_request(INCOMPATIBLE_TARGETING)
    return modes.pop()


def _channel(body: dict, mode: str) -> str:
    implied = set()
    if mode == "email" or any(_present(body, f) for f in EMAIL_FIELDS):
        implied.add("email")
    if mode == "sms" or any(_present(body, f) for f in SMS_FIELDS):
        implied.add("sms")
    for key in ("target_channel", "channel_for_external_user_ids"):
        value = body.get(key)
        if value is not None:
            if value not in ("push", "email", "sms"):
                raise ApiError.bad_request(f"{key} must be push, email or sms")
            implied.add(value)
    if any(body.get(flag) is True for flag in PLATFORM_FLAGS) or mode == "tokens":
        implied.add("push")
    if len(implied) > 1:
        raise ApiError.bad_request(MIXED_CHANNELS)
    return implied.pop() if implied else "push"


def _check_language_map(body: dict, key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ApiError.bad_request(f"{key} must be an object of language codes to strings")


def _check_content(body: dict, channel: str) -> None:
    for key in LANGUAGE_MAPS:
        _check_language_map(body, key)
    if channel == "email":
        if not body.get("email_subject") or not body.get("email_body"):
            raise ApiError.bad_request("Email notifications need email_subject and email_body")
        return
    if body.get("content_available") is True and channel == "push" and body.get("contents") is None:
        return
    contents = body.get("contents")
    if not contents:
        raise ApiError.bad_request(NULL_CONTENT)
    if "en" not in contents:
        raise ApiError.bad_request(NO_ENGLISH)


def _check_list(body: dict, key: str, item_check=None) -> None:
    value = body.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise ApiError.bad_request(f"{key} must be an array")
    limit = LIST_LIMITS.get(key, DEFAULT_LIST_LIMIT)
    if len(value) > limit:
        raise ApiError.bad_request(f"{key} may contain at most {limit} entries")
    for item in value:
        if not isinstance(item, str):
            raise ApiError.bad_request(f"{key} must contain strings")
        if len(item) > MAX_LIST_ITEM_LENGTH:
            raise ApiError.bad_request(f"{key} entries must be at most {MAX_LIST_ITEM_LENGTH} characters")
        if item_check:
            item_check(item)


def _check_ids(body: dict) -> None:
    def uuid_check(field_name: str, label: str):
        def check(value: str) -> None:
            if parse_uuid(value) is None:
                raise ApiError.bad_request(
                    f"Incorrect {label} format in {field_name} (not a valid UUID): {value}"[:300]
                )

        return check

    _check_list(body, "include_player_ids", uuid_check("include_player_ids", "player_id"))
    _check_list(body, "include_subscription_ids", uuid_check("include_subscription_ids", "subscription_id"))
    for key in (
        "include_external_user_ids",
        "included_segments",
        "excluded_segments",
        "email_to",
        "include_email_tokens",
        "include_phone_numbers",
        *TOKEN_FIELD_DEVICE_TYPE,
    ):
        _check_list(body, key)
    aliases = body.get("include_aliases")
    if aliases is not None:
        if not isinstance(aliases, dict) or not all(isinstance(v, list) for v in aliases.values()):
            raise ApiError.bad_request("include_aliases must be an object of alias labels to arrays of ids")
        if sum(len(v) for v in aliases.values()) > LIST_LIMITS["include_aliases"]:
            raise ApiError.bad_request("include_aliases may contain at most 20000 entries")
        if not all(isinstance(i, str) for v in aliases.values() for i in v):
            raise ApiError.bad_request("include_aliases must contain strings")
    if body.get("filters") is not None:
        from segments.filters import FilterError, validate_filters

        try:
            body["filters"] = validate_filters(body["filters"])
        except FilterError as exc:
            raise ApiError.bad_request(str(exc)) from exc


def _int_field(body: dict, key: str, *, minimum: int = 0) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError.bad_request(f"{key} must be an integer") from exc
    if isinstance(value, bool) or number < minimum:
        raise ApiError.bad_request(f"{key} must be an integer of at least {minimum}")
    return number


def _schedule(body: dict, now: datetime) -> tuple[datetime, bool, str | None, time | None]:
    send_after, scheduled = now, False
    raw = body.get("send_after")
    if raw not in (None, ""):
        if not isinstance(raw, str):
            raise ApiError.bad_request("Schedule send_after must be a date string")
        parsed = parse_send_after(raw)
        if parsed is None:
            raise ApiError.bad_request(f"Schedule send_after is not a valid date: {raw}"[:200])
        if parsed < now - SKEW:
            raise ApiError.bad_request(PAST_SCHEDULE)
        send_after, scheduled = max(parsed, now), parsed > now + timedelta(seconds=1)
    delayed = body.get("delayed_option")
    if delayed in (None, "", "immediate"):
        delayed = None
    elif delayed not in ("timezone", "last-active"):
        raise ApiError.bad_request("delayed_option must be timezone or last-active")
    time_of_day = None
    if delayed == "timezone" or body.get("delivery_time_of_day") not in (None, ""):
        time_of_day = parse_time_of_day(body.get("delivery_time_of_day"))
        if time_of_day is None:
            raise ApiError.bad_request(BAD_TIME_OF_DAY)
    return send_after, scheduled, delayed, time_of_day


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_sizes(body: dict, app: App | None = None, device_types: set[int] | None = None) -> None:
    data = body.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise ApiError.bad_request("data must be an object")
        if _json_size(data) > 2048:
            raise ApiError.bad_request(DATA_TOO_LARGE)
    for key, limit in (("collapse_id", 64), ("name", 128), ("web_push_topic", 32)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value.encode()) > limit):
            raise ApiError.bad_request(f"{key} must be a string of at most {limit} bytes")
    for key, limit in (("buttons", 3), ("web_buttons", 2)):
        buttons = body.get(key)
        if buttons is None:
            continue
        if not isinstance(buttons, list) or len(buttons) > limit:
            raise ApiError.bad_request(f"{key} must be an array of at most {limit} buttons")
        if not all(isinstance(b, dict) and isinstance(b.get("id"), str) and b["id"] for b in buttons):
            raise ApiError.bad_request(f"each of {key} needs an id")
    if body.get("ios_badgeType") not in (None, "None", "SetTo", "Increase"):
        raise ApiError.bad_request("ios_badgeType must be None, SetTo or Increase")
    # The largest per-language rendering must fit the providers' 4 KB with room for their envelope.
    contents, headings = body.get("contents") or {}, body.get("headings") or {}
    longest = max([0, *(len(v.encode()) for v in contents.values())])
    longest_heading = max([0, *(len(v.encode()) for v in headings.values())])
    metadata = {
        k: body.get(k) for k in ("data", "url", "buttons", "big_picture", "ios_attachments", "subtitle")
    }
    if longest + longest_heading + _json_size(metadata) > 3500:
        raise ApiError.bad_request(PAYLOAD_TOO_LARGE)
    topic = body.get("web_push_topic")
    if topic and not _TOPIC.match(topic):
        raise ApiError.bad_request("web_push_topic may only use the characters A-Z a-z 0-9 - _ (RFC 8030)")
    if device_types and device_types & WEB_PUSH_DEVICE_TYPES:
        # Web Push carries at most 3993 bytes of plaintext (RFC 8291 in one 4096-byte record).
        from notifications.providers.webpush import MAX_PLAINTEXT_BYTES, estimated_plaintext_size

        size = estimated_plaintext_size(body, app)
        if size > MAX_PLAINTEXT_BYTES:
            raise ApiError.bad_request(WEB_PUSH_TOO_LARGE.format(limit=MAX_PLAINTEXT_BYTES, size=size))
    if device_types and device_types & {0, 9}:  # iOS and macOS: APNs
        _check_apns_size(body)
    if device_types and device_types & {1, 2, 6, 13}:  # FCM, ADM, WNS, Huawei
        _check_built_sizes(body, device_types, app)


def _check_apns_size(body: dict) -> None:
    """APNs refuses payloads over 4096 bytes (5120 for VoIP): build each language's payload as the
    provider will (notifications/providers/apns.py), for a synthetic recipient, and measure it.
    Tag substitution happens per player at send time and is not counted."""
    import uuid

    import orjson

    from notifications.providers.apns import build_payload, payload_limit, push_type_of
    from notifications.providers.base import Recipient, RenderedMessage
    from notifications.rendering import pick_language

    texts = {key: body[key] if isinstance(body.get(key), dict) else None for key in LANGUAGE_MAPS}
    languages = sorted(set().union(*(t for t in texts.values() if t))) or ["en"]
    nobody = Recipient(player_id=uuid.UUID(int=0), device_type=0, identifier="", language=None, tags={})
    for language in languages:
        message = RenderedMessage(
            notification_id=str(uuid.UUID(int=0)),
            heading=pick_language(texts["headings"], language),
            content=pick_language(texts["contents"], language),
            subtitle=pick_language(texts["subtitle"], language),
            body=body,
        )
        size, limit = len(orjson.dumps(build_payload(nobody, message))), payload_limit(push_type_of(message))
        if size > limit:
            raise ApiError.bad_request(
                f"Message iOS (APNs) payload must not exceed {limit} bytes"
                f"{' for VoIP' if limit > 4096 else ''}; this notification's is {size} "
                f"(language {language}): shorten the contents, headings, subtitle, data or iOS fields"
            )


def _rendered_languages(body: dict):
    """``(language, RenderedMessage)`` for every language of the texts (``en`` when none), as the
    pipeline renders them before tag substitution."""
    import uuid

    from notifications.providers.base import RenderedMessage
    from notifications.rendering import pick_language

    texts = {key: body[key] if isinstance(body.get(key), dict) else None for key in LANGUAGE_MAPS}
    for language in sorted(set().union(*(t for t in texts.values() if t))) or ["en"]:
        yield (
            language,
            RenderedMessage(
                notification_id=str(uuid.UUID(int=0)),
                heading=pick_language(texts["headings"], language),
                content=pick_language(texts["contents"], language),
                subtitle=pick_language(texts["subtitle"], language),
                body=body,
            ),
        )


def _check_built_sizes(body: dict, device_types: set[int], app: App | None) -> None:
    """FCM (4096 bytes of data + notification), Amazon ADM (6 KB of data), WNS (5000-byte body) and
    Huawei Push Kit (4096-byte message) measured on the payloads the providers build, as for APNs:
    the 3500-byte rule counts raw text once, while these carry it twice or as JSON inside JSON,
    and escape it (JSON \\u escapes, XML entities). Found by tests/fuzz."""
    import uuid

    import orjson

    from notifications.providers import adm, fcm, hms, wns
    from notifications.providers.base import Recipient

    def refuse(platform: str, limit: int, size: int, language: str) -> ApiError:
        return ApiError.bad_request(
            f"Message {platform} payload must not exceed {limit} bytes; this notification's is {size} "
            f"(language {language}): shorten the contents, headings or data"
        )

    for language, message in _rendered_languages(body):
        if 1 in device_types:
            nobody = Recipient(
                player_id=uuid.UUID(int=0), device_type=1, identifier="", language=None, tags={}
            )
            size = fcm.payload_size(fcm.build_message(nobody, message))
            if size > fcm.MAX_PAYLOAD:
                raise refuse("Android (FCM)", fcm.MAX_PAYLOAD, size, language)
        if 2 in device_types:
            size = len(orjson.dumps(adm.build_body(message)["data"]))
            if size > adm.MAX_DATA_BYTES:
                raise refuse("Amazon (ADM)", adm.MAX_DATA_BYTES, size, language)
        if 6 in device_types:
            nobody = Recipient(
                player_id=uuid.UUID(int=0), device_type=6, identifier="", language=None, tags={}
            )
            size = max(len(request.body) for request in wns.build_requests(nobody, message, token=""))
            if size > wns.MAX_PAYLOAD:
                raise refuse("Windows (WNS)", wns.MAX_PAYLOAD, size, language)
        if 13 in device_types:
            title = getattr(app, "name", None) or ""
            size = len(orjson.dumps(hms.build_message(message, default_title=title)))
            if size > hms.MAX_MESSAGE_BYTES:
                raise refuse("Huawei (Push Kit)", hms.MAX_MESSAGE_BYTES, size, language)


def _image_urls(body: dict):
    for key in IMAGE_URL_FIELDS:
        yield key, body.get(key)
    attachments = body.get("ios_attachments")
    if isinstance(attachments, dict):
        for name, value in attachments.items():
            yield f"ios_attachments.{name}", value
    for key in ("buttons", "web_buttons"):
        for button in body.get(key) or ():
            if isinstance(button, dict):
                yield f"{key} icon", button.get("icon")


UNSUBSCRIBE_PLACEHOLDER = "[unsubscribe_url]"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_SMS_MEDIA_URLS = 10


def _text_or_language_map(body: dict, key: str, limit: int) -> list[str]:
    """The texts of a field that is a string or a language map (empty when absent)."""
    value = body.get(key)
    if value is None:
        return []
    texts = list(value.values()) if isinstance(value, dict) else [value]
    if not texts or not all(isinstance(t, str) and len(t) <= limit for t in texts):
        raise ApiError.bad_request(f"{key} must be a string of at most {limit} characters")
    return texts


def _check_email_address(body: dict, key: str) -> None:
    # Django's check, as for the app's email_from_address (special-use domains such as .test pass).
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    value = body.get(key)
    if value in (None, ""):
        return
    try:
        if not isinstance(value, str):
            raise ValidationError("not a string")
        validate_email(value)
    except ValidationError as exc:
        raise ApiError.bad_request(f"{key} must be an email address") from exc


def _check_channel_fields(body: dict, channel: str) -> None:
    """Email and SMS fields (onesignal-api.md §4.3): the unsubscribe link is mandatory in email."""
    if channel == "email":
        _text_or_language_map(body, "email_subject", 998)
        bodies = _text_or_language_map(body, "email_body", 1_000_000)
        if not all(UNSUBSCRIBE_PLACEHOLDER in text for text in bodies):
            raise ApiError.bad_request(f"email_body must contain {UNSUBSCRIBE_PLACEHOLDER}")
        _text_or_language_map(body, "email_preheader", 500)
        _text_or_language_map(body, "email_from_name", 200)
        _check_email_address(body, "email_from_address")
        _check_email_address(body, "email_reply_to_address")
        if body.get("include_unsubscribed") not in (None, True, False):
            raise ApiError.bad_request("include_unsubscribed must be a boolean")
    if channel == "sms":
        sms_from = body.get("sms_from")
        if sms_from not in (None, "") and (not isinstance(sms_from, str) or not _E164.match(sms_from)):
            raise ApiError.bad_request("sms_from must be a phone number in E.164 format, like +15551234567")
        media = body.get("sms_media_urls")
        if media is None:
            return
        if not isinstance(media, list) or len(media) > MAX_SMS_MEDIA_URLS:
            limit = MAX_SMS_MEDIA_URLS
            raise ApiError.bad_request(f"sms_media_urls must be an array of at most {limit} URLs")
        for url in media:
            if not isinstance(url, str) or not url[:8].lower().startswith(("http://", "https://")):
                raise ApiError.bad_request("sms_media_urls must contain http(s) URLs")
            try:
                check_public_url(url, purpose="sms_media_urls", allow_unresolvable=True, require_https=False)
            except UnsafeUrl as exc:
                raise ApiError.bad_request(str(exc)) from exc


def _check_image_urls(body: dict) -> None:
    """An image URL whose host is, or resolves to, a loopback/private/link-local/... address is a
    400 unless HERALD_ALLOWED_PRIVATE_NETWORKS allows it (core/ssrf.py). Values that are not http(s)
    URLs (Android resource names, bundled files) are not URLs to check. A host that does not resolve
    is accepted: Herald never fetches images, and the devices resolve them on their own networks."""
    for key, value in _image_urls(body):
        if not isinstance(value, str) or not value[:8].lower().startswith(("http://", "https://")):
            continue
        try:
            check_public_url(value, purpose=key, allow_unresolvable=True, require_https=False)
        except UnsafeUrl as exc:
            raise ApiError.bad_request(str(exc)) from exc


def _idempotency_key(body: dict, header_key: str | None) -> str | None:
    key = body.get("idempotency_key") or body.get("external_id") or header_key
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise ApiError.bad_request("idempotency_key must be a string of 1 to 255 characters")
    return key


def mfp_device_types(target: dict) -> set[int]:
    """The device types a MobileFirst target reaches: its platforms' (all three by default) when
    it pushes, plus SMS when it texts."""
    device_types = set()
    if target.get("push", True):
        platforms = target.get("platforms") or list(MFP_PLATFORM_DEVICE_TYPES)
        device_types |= {MFP_PLATFORM_DEVICE_TYPES[p] for p in platforms if p in MFP_PLATFORM_DEVICE_TYPES}
    if target.get("sms"):
        device_types.add(SMS_DEVICE_TYPE)
    return device_types


def _check_no_internal_keys(body: dict) -> None:
    for key in body:
        if isinstance(key, str) and key.startswith(INTERNAL_PREFIX):
            raise ApiError.bad_request(f"{key} is reserved for Herald's internal use"[:200])


def validate_notification(
    *,
    app: App,
    body: dict,
    now: datetime,
    header_key: str | None = None,
    internal: dict[str, Any] | None = None,
) -> NotificationRequest:
    """Check a request in OneSignal's order. ``internal`` holds Herald's own ``herald_*`` fields
    (a MobileFirst message's target and per-platform fields); a request may not carry them."""
    body = _merge_template(app, dict(body))
    _check_no_internal_keys(body)
    body.update(internal or {})
    mode = _targeting_mode(body)
    channel = _channel(body, mode)
    _check_content(body, channel)
    _check_channel_fields(body, channel)
    _check_ids(body)
    send_after, scheduled, delayed, time_of_day = _schedule(body, now)
    throttle = _int_field(body, "throttle_rate_per_minute")
    ttl = _int_field(body, "ttl")
    _int_field(body, "priority")
    flags = {name: body[name] for name in PLATFORM_FLAGS if isinstance(body.get(name), bool)}
    device_types = device_types_for(channel, flags)
    if mode == "mfp":
        device_types = mfp_device_types(body[MFP_TARGET])
    _check_sizes(body, app, device_types)
    _check_image_urls(body)
    return NotificationRequest(
        body=body,
        mode=mode,
        channel=channel,
        device_types=device_types,
        send_after=send_after,
        scheduled=scheduled,
        delayed_option=delayed,
        delivery_time_of_day=time_of_day,
        throttle_rate_per_minute=throttle or None,
        ttl=min(ttl, MAX_TTL) if ttl is not None else DEFAULT_TTL,
        idempotency_key=_idempotency_key(body, header_key),
    )
