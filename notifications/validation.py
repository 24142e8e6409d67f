"""POST /notifications: validation in OneSignal's order (onesignal-api.md §4.1).

auth -> JSON and app_id -> targeting present -> one targeting mode and one channel -> content ->
id formats -> send_after / delayed_option / delivery_time_of_day -> sizes and limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from apps.models import App
from core.api.base import parse_uuid
from core.api.errors import ApiError
from notifications.models import Template
from notifications.platforms import PLATFORM_FLAGS, device_types_for
from notifications.timeparse import parse_send_after, parse_time_of_day

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
}
LIST_LIMITS = {"include_aliases": 20_000, "include_subscription_ids": 20_000}
DEFAULT_LIST_LIMIT = 2_000
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


def _check_sizes(body: dict) -> None:
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


def _idempotency_key(body: dict, header_key: str | None) -> str | None:
    key = body.get("idempotency_key") or body.get("external_id") or header_key
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise ApiError.bad_request("idempotency_key must be a string of 1 to 255 characters")
    return key


def validate_notification(
    *, app: App, body: dict, now: datetime, header_key: str | None = None
) -> NotificationRequest:
    body = _merge_template(app, dict(body))
    mode = _targeting_mode(body)
    channel = _channel(body, mode)
    _check_content(body, channel)
    _check_ids(body)
    send_after, scheduled, delayed, time_of_day = _schedule(body, now)
    throttle = _int_field(body, "throttle_rate_per_minute")
    ttl = _int_field(body, "ttl")
    _int_field(body, "priority")
    _check_sizes(body)
    flags = {name: body[name] for name in PLATFORM_FLAGS if isinstance(body.get(name), bool)}
    return NotificationRequest(
        body=body,
        mode=mode,
        channel=channel,
        device_types=device_types_for(channel, flags),
        send_after=send_after,
        scheduled=scheduled,
        delayed_option=delayed,
        delivery_time_of_day=time_of_day,
        throttle_rate_per_minute=throttle or None,
        ttl=min(ttl, MAX_TTL) if ttl is not None else DEFAULT_TTL,
        idempotency_key=_idempotency_key(body, header_key),
    )
