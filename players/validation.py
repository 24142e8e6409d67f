"""Per-channel checks of what a device sends: identifiers, tags, language."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from core.api.errors import ApiError
from core.ssrf import UnsafeUrl, check_public_url
from players.models import DeviceType

MAX_TAG_KEYS_PER_CALL = 100
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 1024
MAX_TAGS_BYTES = 16 * 1024
MAX_IDENTIFIER_LENGTH = 1024

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
_HTTP_URL = re.compile(r"^https?://", re.IGNORECASE)

APNS_DEVICE_TYPES = {DeviceType.IOS, DeviceType.MACOS}
WEB_PUSH_DEVICE_TYPES = {DeviceType.CHROME_WEB, DeviceType.FIREFOX}
# Device types whose identifier may be a Web Push endpoint URL (Safari 16+ uses VAPID Web Push).
WEB_ENDPOINT_DEVICE_TYPES = {*WEB_PUSH_DEVICE_TYPES, DeviceType.SAFARI}


def check_device_type(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError.bad_request("device_type must be an integer from 0 to 14")
    try:
        device_type = int(value)
    except ValueError:
        device_type = -1
    if device_type not in DeviceType.values:
        raise ApiError.bad_request(f"{value} is not a valid device_type (0 to 14)"[:200])
    return device_type


def normalize_identifier(device_type: int, identifier: Any) -> str | None:
    """The identifier as stored, or a 400 naming what is wrong for that channel."""
    if identifier is None:
        return None
    if not isinstance(identifier, str):
        raise ApiError.bad_request("identifier must be a string")
    identifier = identifier.strip()
    if identifier == "":
        return None
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise ApiError.bad_request(f"identifier must be at most {MAX_IDENTIFIER_LENGTH} characters")
    if device_type in APNS_DEVICE_TYPES:
        # OneSignal strips "<", ">" and spaces that NSData descriptions put around tokens.
        token = _NON_ALNUM.sub("", identifier).lower()
        if not _HEX.match(token) or not 32 <= len(token) <= 400 or len(token) % 2:
            raise ApiError.bad_request("identifier is not a valid APNs device token (hexadecimal)")
        return token
    if device_type == DeviceType.EMAIL:
        try:
            return validate_email(identifier, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ApiError.bad_request(f"identifier is not a valid email address: {exc}"[:300]) from exc
    if device_type == DeviceType.SMS:
        return normalize_phone(identifier)
    if device_type in WEB_ENDPOINT_DEVICE_TYPES and _HTTP_URL.match(identifier):
        if not _TOKEN.match(identifier):
            raise ApiError.bad_request("identifier is not a valid web push endpoint URL")
        check_web_push_endpoint(identifier)
        return identifier
    if not _TOKEN.match(identifier):
        raise ApiError.bad_request("identifier must not contain spaces or control characters")
    return identifier


def check_web_push_endpoint(endpoint: str) -> None:
    """SSRF policy at registration (core/ssrf.py): https, no userinfo, and a host that is not, and
    does not resolve to, a loopback/private/link-local/... address unless the network is allowed
    (HERALD_ALLOWED_PRIVATE_NETWORKS). A host that does not resolve at all is accepted here: nothing
    is fetched at registration, DNS may be briefly down, and the Web Push provider checks every
    endpoint again at send time, pinning the connection to the addresses it checked."""
    try:
        check_public_url(endpoint, purpose="identifier (the web push endpoint)", allow_unresolvable=True)
    except UnsafeUrl as exc:
        raise ApiError.bad_request(str(exc)) from exc


def normalize_phone(value: str) -> str:
    if not _E164.match(value):
        raise ApiError.bad_request("identifier must be a phone number in E.164 format, like +15551234567")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ApiError.bad_request("identifier is not a valid E.164 phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ApiError.bad_request("identifier is not a possible phone number")
    return value


def check_language(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ApiError.bad_request("language must be a 2-letter code such as en, or zh-Hans / zh-Hant")
    return value


def tag_changes(tags: Any) -> dict[str, str | None]:
    """Validated tag edits: a string value sets the key, None deletes it ("" and null delete)."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ApiError.bad_request("tags must be an object of string keys and string values")
    if len(tags) > MAX_TAG_KEYS_PER_CALL:
        raise ApiError.bad_request(f"tags may change at most {MAX_TAG_KEYS_PER_CALL} keys per request")
    changes: dict[str, str | None] = {}
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY_LENGTH:
            raise ApiError.bad_request(f"tag keys must be 1 to {MAX_TAG_KEY_LENGTH} characters")
        if value is None or value == "":
            changes[key] = None
        elif isinstance(value, bool):
            changes[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            changes[key] = str(value)
        elif isinstance(value, str):
            if len(value) > MAX_TAG_VALUE_LENGTH:
                raise ApiError.bad_request(f"tag {key!r} is longer than {MAX_TAG_VALUE_LENGTH} characters")
            changes[key] = value
        else:
            raise ApiError.bad_request(f"tag {key!r} must be a string or a number, not an array or object")
    return changes


def merge_tags(current: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(str(merged).encode()) > MAX_TAGS_BYTES:
        raise ApiError.bad_request(f"a player's tags must total at most {MAX_TAGS_BYTES} bytes")
    return merged
