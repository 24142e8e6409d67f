"""Limits, enumerations and type coercion for MobileFirst message bodies (§1.5, §4)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.api import limits
from core.ssrf import UnsafeUrl, check_public_url
from imfpush.errors import MfpError

DEFAULT_BULK_LIMIT = 100
MAX_TARGET_ENTRIES = 10_000
# A deviceId, userId or tag name (their own limits are 255, 254 and 255 characters).
MAX_TARGET_ENTRY_LENGTH = 255
MAX_PAYLOAD_BYTES = 2048

REQUIRED = _("is required")
NOT_A_STRING = _("must be a string")
NOT_AN_OBJECT = _("must be a JSON object")
NOT_A_BOOLEAN = _("must be true or false")
NOT_STRINGS = _("must be an array of strings")
NOT_AN_ARRAY = _("must be a non-empty array")
NOT_JSON_OBJECT = _("must be a JSON object or a string holding one")
EMPTY_ALERT = _("must be a non-empty string")
NOT_AN_INTEGER = _("must be an integer from %(minimum)s to %(maximum)s")
NOT_ONE_OF = _("must be one of %(choices)s")
UNKNOWN_TARGET = _("is not a target (deviceIds, userIds, platforms or tagNames)")
ONE_TARGET = _("only one of deviceIds, userIds and tagNames may be set")
TOO_MANY = _("may contain at most %(limit)s entries")
TOO_LONG = _("must contain strings of at most %(limit)s characters")
TOO_LONG_TEXT = _("must be at most %(limit)s characters")
PAYLOAD_TOO_LARGE = _("must be at most %(limit)s bytes of JSON")
KEY_IN_FLIGHT = _("A request with this Idempotency-Key is still being processed; retry it later.")
BAD_BULK = _("must be a JSON array of messages, or an object with one")
EMPTY_BULK = _("must contain between 1 and %(limit)s messages")

APNS_TYPES = ("DEFAULT", "MIXED", "SILENT")
GCM_TYPES = ("DEFAULT", "SILENT")
GCM_PRIORITIES = ("max", "high", "default", "low", "min")
GCM_CATEGORIES = (
    "call",
    "alarm",
    "email",
    "err",
    "event",
    "msg",
    "progress",
    "promo",
    "recommendation",
    "service",
    "social",
    "status",
    "transport",
)
GCM_VISIBILITIES = ("public", "private", "secret")
STYLE_TYPES = ("picture_notification", "inbox_notification", "bigtext_notification")
# The colours MFP's server SDKs offer for ``lights.ledArgb`` (Android's Color constants).
LED_COLOURS: dict[str, tuple[int, int, int, int]] = {
    "black": (0, 0, 0, 255),
    "darkgray": (68, 68, 68, 255),
    "gray": (136, 136, 136, 255),
    "lightgray": (204, 204, 204, 255),
    "white": (255, 255, 255, 255),
    "red": (255, 0, 0, 255),
    "green": (0, 255, 0, 255),
    "blue": (0, 0, 255, 255),
    "yellow": (255, 255, 0, 255),
    "cyan": (0, 255, 255, 255),
    "magenta": (255, 0, 255, 255),
    "transparent": (0, 0, 0, 0),
}
WNS_DURATIONS = ("short", "long")
WNS_GLYPHS = (
    "none",
    "activity",
    "alarm",
    "alert",
    "attention",
    "available",
    "away",
    "busy",
    "error",
    "newMessage",
    "paused",
    "playing",
    "unavailable",
)
PLATFORMS = ("A", "G", "W")
TARGET_LISTS = ("deviceIds", "userIds", "tagNames")
FCM_PRIORITY_NAMES = {"max": "PRIORITY_MAX", "high": "PRIORITY_HIGH", "default": "PRIORITY_DEFAULT"}
FCM_PRIORITY_NAMES |= {"low": "PRIORITY_LOW", "min": "PRIORITY_MIN"}
DIGITS = re.compile(r"^[0-9]+$")


# --- coercion helpers (§1.5: native types and their string forms) ---------------------------------


def coerce_string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise MfpError.invalid(name, NOT_A_STRING)
    return value


def coerce_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MfpError.invalid(name, NOT_A_BOOLEAN)


def coerce_int(value: Any, name: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value)) or (
        isinstance(value, float) and value.is_integer()
    ):
        number = int(value)
    if number is None or not minimum <= number <= maximum:
        raise MfpError.invalid(name, NOT_AN_INTEGER % {"minimum": minimum, "maximum": maximum})
    return number


def coerce_object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise MfpError.invalid(name, NOT_AN_OBJECT)
    return value


def coerce_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """An enumeration, matched case-insensitively (§6 #22), returned in its canonical case."""
    if isinstance(value, str):
        for choice in choices:
            if choice.lower() == value.strip().lower():
                return choice
    raise MfpError.invalid(name, NOT_ONE_OF % {"choices": ", ".join(choices)})


def coerce_strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MfpError.invalid(name, NOT_STRINGS)
    return list(value)


def coerce_json_object(value: Any, name: str) -> dict:
    """A payload: an object, or a string holding one (cloud-push-client sends a string)."""
    if isinstance(value, str):
        try:
            value = limits.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise MfpError.invalid(name, NOT_JSON_OBJECT)
    if len(compact_json(value).encode()) > MAX_PAYLOAD_BYTES:
        raise MfpError.invalid(name, PAYLOAD_TOO_LARGE % {"limit": MAX_PAYLOAD_BYTES})
    return value


def coerce_url(value: Any, name: str) -> str:
    """A URL a device will fetch: http(s), and not a private, loopback or link-local address."""
    url = coerce_string(value, name)
    if url[:8].lower().startswith(("http://", "https://")):
        try:
            check_public_url(url, purpose=name, allow_unresolvable=True, require_https=False)
        except UnsafeUrl as exc:
            raise MfpError.invalid(name, str(exc)) from exc
    return url


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def coerce_fields(source: dict, prefix: str, spec: dict[str, Any]) -> dict:
    """Normalize the known keys of ``source`` with ``spec[key](value, name)``; others are ignored."""
    out = {}
    for key, check in spec.items():
        value = source.get(key)
        if value is not None:
            out[key] = check(value, f"{prefix}.{key}")
    return out
