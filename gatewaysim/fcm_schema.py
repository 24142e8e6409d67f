"""Validation of FCM HTTP v1 ``messages:send`` bodies, as strict as Google's protobuf JSON parser.

Strict on purpose: an unknown field, a number where a string belongs, or a malformed TTL is a
bug in Herald's payload builder that the real FCM would reject, so the simulator rejects it too.

Deliberate leniencies, where the real service is lenient as well:
- field names are accepted in snake_case and lowerCamelCase (protobuf JSON accepts both);
- enum values are matched case-insensitively (firebase-admin sends ``"high"`` and FCM takes it);
- registration tokens only need to be non-empty strings, so tests can use readable ones.

Reference: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

MAX_PAYLOAD_BYTES = 4096
STRING, BOOL, INT, OBJECT, STRING_MAP, STRING_LIST, DURATION = (
    "string",
    "bool",
    "int",
    "object",
    "string_map",
    "string_list",
    "duration",
)
DURATION_RE = re.compile(r"^\d+(\.\d{1,9})?s$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
TOPIC_RE = re.compile(r"^(/topics/)?[a-zA-Z0-9\-_.~%]+$")
RESERVED_DATA_KEYS = {"from", "message_type"}
RESERVED_DATA_PREFIXES = ("google", "gcm")


def _enum(*values: str) -> frozenset[str]:
    return frozenset(values)


# field -> type, a nested schema (dict), or an enum (frozenset of upper-case names).
NOTIFICATION: dict[str, Any] = {"title": STRING, "body": STRING, "image": STRING}
FCM_OPTIONS: dict[str, Any] = {"analytics_label": STRING}
ANDROID_NOTIFICATION: dict[str, Any] = {
    "title": STRING,
    "body": STRING,
    "icon": STRING,
    "color": STRING,
    "sound": STRING,
    "tag": STRING,
    "click_action": STRING,
    "body_loc_key": STRING,
    "title_loc_key": STRING,
    "channel_id": STRING,
    "ticker": STRING,
    "event_time": STRING,
    "image": STRING,
    "body_loc_args": STRING_LIST,
    "title_loc_args": STRING_LIST,
    "vibrate_timings": STRING_LIST,
    "sticky": BOOL,
    "local_only": BOOL,
    "default_sound": BOOL,
    "default_vibrate_timings": BOOL,
    "default_light_settings": BOOL,
    "bypass_proxy_notification": BOOL,
    "notification_priority": _enum(
        "PRIORITY_UNSPECIFIED",
        "PRIORITY_MIN",
        "PRIORITY_LOW",
        "PRIORITY_DEFAULT",
        "PRIORITY_HIGH",
        "PRIORITY_MAX",
    ),
    "visibility": _enum("VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
    "proxy": _enum("PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
    "notification_count": INT,
    "light_settings": OBJECT,
}
ANDROID: dict[str, Any] = {
    "collapse_key": STRING,
    "priority": _enum("NORMAL", "HIGH"),
    "ttl": DURATION,
    "restricted_package_name": STRING,
    "data": STRING_MAP,
    "notification": ANDROID_NOTIFICATION,
    "fcm_options": FCM_OPTIONS,
    "direct_boot_ok": BOOL,
    "bandwidth_constrained_ok": BOOL,
    "restricted_satellite_ok": BOOL,
}
# Web Push and APNs overrides are checked only for their shape; their delivery is not simulated.
WEBPUSH: dict[str, Any] = {
    "headers": STRING_MAP,
    "data": STRING_MAP,
    "notification": OBJECT,
    "fcm_options": OBJECT,
}
APNS: dict[str, Any] = {
    "headers": STRING_MAP,
    "payload": OBJECT,
    "fcm_options": OBJECT,
    "live_activity_token": STRING,
}
MESSAGE: dict[str, Any] = {
    "name": STRING,
    "data": STRING_MAP,
    "notification": NOTIFICATION,
    "android": ANDROID,
    "webpush": WEBPUSH,
    "apns": APNS,
    "fcm_options": FCM_OPTIONS,
    "token": STRING,
    "topic": STRING,
    "condition": STRING,
}
TARGETS = ("token", "topic", "condition")


class MessageError(Exception):
    """An INVALID_ARGUMENT answer: ``field`` goes into the BadRequest field violation."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(description)
        self.field = field
        self.description = description


def parse_request(body: bytes) -> dict[str, Any]:
    """Parse and validate a send request; return it with the message normalised to snake_case."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MessageError("", "Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(request, dict):
        raise MessageError("", "Invalid JSON payload received. Expected an object.")
    request = _normalise(request, {"message": MESSAGE, "validate_only": BOOL}, "")
    message = request.get("message")
    if not message:
        raise MessageError("message", "Recipient of the message is not set.")
    targets = [name for name in TARGETS if name in message]
    if not targets:
        raise MessageError("message", "Recipient of the message is not set.")
    if len(targets) > 1:
        raise MessageError(
            f"message.{targets[1]}",
            f"Invalid value at 'message' (oneof), oneof field 'target' is already set. "
            f"Cannot set '{targets[1]}'",
        )
    _check_target(targets[0], message[targets[0]])
    for where, data in (
        ("message.data", message.get("data")),
        ("message.android.data", _android_data(message)),
    ):
        for key in data or ():
            if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
                raise MessageError(where, f"Invalid data payload key: {key}")
    color = (message.get("android") or {}).get("notification", {}).get("color")
    if color is not None and not COLOR_RE.match(color):
        raise MessageError("message.android.notification.color", "color must be in the form #RRGGBB")
    size = payload_size(message)
    if size > MAX_PAYLOAD_BYTES:
        raise MessageError(
            "message",
            f"Message is too big: the data and notification payload is {size} bytes, "
            f"the limit is {MAX_PAYLOAD_BYTES} bytes.",
        )
    return request


def payload_size(message: dict[str, Any]) -> int:
    """Bytes of the compact JSON of every data and notification object the message carries."""
    android = message.get("android") or {}
    parts = (
        message.get("data"),
        message.get("notification"),
        android.get("data"),
        android.get("notification"),
    )
    return sum(len(orjson.dumps(part)) for part in parts if part)


def identity(message: dict[str, Any]) -> str:
    """What makes two sends "the same notification" to one device, for duplicate counting.

    OneSignal's Android payload carries its notification id as ``data.custom`` = ``{"i": id}``;
    any other message is identified by the hash of its canonical JSON.
    """
    custom = (message.get("data") or {}).get("custom")
    if custom is not None:
        try:
            parsed = orjson.loads(custom)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and "i" in parsed:
            return f"i:{parsed['i']}"
    return "sha256:" + hashlib.sha256(orjson.dumps(message, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _normalise(obj: dict[str, Any], schema: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _snake(key)
        kind = schema.get(name)
        where = f"{path}.{name}" if path else name
        if kind is None:
            at = f" at '{path}'" if path else ""
            raise MessageError(
                where, f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
            )
        if value is None:
            continue  # protobuf JSON treats null as "not set"
        out[name] = _check(value, kind, where)
    return out


def _check(value: Any, kind: Any, where: str) -> Any:
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise _invalid(where, "TYPE_MESSAGE", value)
        return _normalise(value, kind, where)
    if isinstance(kind, frozenset):
        if not isinstance(value, str) or value.upper() not in kind:
            raise _invalid(where, "TYPE_ENUM", value)
        return value
    if kind == STRING:
        if not isinstance(value, str):
            raise _invalid(where, "TYPE_STRING", value)
    elif kind == BOOL:
        if not isinstance(value, bool):
            raise _invalid(where, "TYPE_BOOL", value)
    elif kind == INT:
        # int32 fields also take their decimal string form in protobuf JSON.
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
        ):
            raise _invalid(where, "TYPE_INT32", value)
    elif kind == OBJECT:
        if not isinstance(value, dict):
            raise _invalid(where, "TYPE_MESSAGE", value)
    elif kind == DURATION:
        if not isinstance(value, str) or not DURATION_RE.match(value):
            raise _invalid(where, "type.googleapis.com/google.protobuf.Duration", value)
    elif kind == STRING_LIST:
        if not isinstance(value, list):
            raise _invalid(where, "TYPE_STRING", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _invalid(f"{where}[{index}]", "TYPE_STRING", item)
    elif kind == STRING_MAP:
        if not isinstance(value, dict):
            raise _invalid(where, "TYPE_MESSAGE", value)
        for index, item in enumerate(value.values()):
            if not isinstance(item, str):
                raise _invalid(f"{where}[{index}].value", "TYPE_STRING", item)
    return value


def _invalid(where: str, type_name: str, value: Any) -> MessageError:
    shown = orjson.dumps(value).decode()
    return MessageError(where, f"Invalid value at '{where}' ({type_name}), {shown}")


def _check_target(name: str, value: str) -> None:
    if not value:
        raise MessageError(f"message.{name}", f"Invalid value at 'message.{name}': must not be empty")
    if name == "topic" and not TOPIC_RE.match(value):
        raise MessageError("message.topic", "Invalid topic name")


def _android_data(message: dict[str, Any]) -> dict[str, str] | None:
    return (message.get("android") or {}).get("data")


_CAMEL = re.compile(r"(?<!^)([A-Z])")


def _snake(name: str) -> str:
    if name.islower():
        return name
    return _CAMEL.sub(r"_\1", name).lower()
