"""MobileFirst messages (mobilefirst-push-api.md §3.6 and §4): normalize, translate, send.

A message is a Notification. ``message_send`` checks and normalizes the MFP body (``normalize``:
types coerced, ``settings.target`` moved to ``target``, ``platform`` renamed ``platforms``,
``"A,G"`` split, enumerations and required sub-fields checked, every error a ``400`` naming the
property), translates it (``translate``) into a notification request for
``notifications.services.notification_create`` and sends it through the same pipeline as a
OneSignal notification. The messageId is the notification's id.

The translation:

- ``message.alert`` is the English ``contents`` (the SMS text too), ``message.url`` the ``url``.
- The target becomes the internal ``herald_mfp_target`` (``notifications.targeting.mfp_audience``,
  re-resolved at fan-out): ``deviceIds`` / ``userIds`` / ``tagNames`` / broadcast to ``Push.all``,
  narrowed by ``platforms``; ``notificationType`` 2 and 3 add each device's SMS player.
- ``settings.apns`` / ``gcm`` / ``wns`` become per-platform fields (``herald_platform_fields``,
  ``notifications.providers.platform_fields``) that only that gateway's provider sees:

  * APNs: ``badge`` → ``aps.badge`` (written back to the device's count), ``sound``, ``type``
    (``SILENT``: a background push, ``content-available`` with no alert, sound or badge;
    ``MIXED``: the alert plus ``content-available``), ``interactiveCategory``/``category`` →
    ``aps.category``, ``title``/``subtitle``/loc keys/``iosActionKey``/``launchImage`` → the
    ``aps.alert`` dictionary, ``attachmentUrl`` → ``mutable-content`` and the top-level
    ``attachment-url`` the IBM SDKs' service extension downloads, ``apnsThreadId`` →
    ``thread-id``, ``apnsCollapseId`` → ``apns-collapse-id``, group summary args. Top level:
    ``nid`` (the messageId) and ``payload`` (the object).
  * FCM v1: ``priority`` max/high → ``android.priority`` HIGH (default/low/min NORMAL) and the
    matching ``notification_priority``, ``timeToLive`` → ``android.ttl``, ``collapseKey`` →
    ``android.collapse_key``, ``sound``/``icon``/``channelId``/``visibility``/``lights``/
    ``androidTitle`` and a picture ``style``'s image → ``android.notification``; ``type``
    SILENT → a data-only message. The IBM Android SDK's data keys are set too: ``payload``
    (JSON text of the object plus ``nid``), ``url``, ``androidTitle``, ``sound``, ``priority``,
    ``visibility``, ``redact``, ``interactiveCategory``, ``category``, ``icon``, ``bridge``,
    ``style`` and ``lights`` (JSON text), ``key`` (the collapse key), ``type``,
    ``has-template``.
  * WNS: ``toast``, ``tile``, ``badge`` and ``raw`` each become their own WNS notification
    (``X-WNS-Type`` and the XML or raw body); without ``toast`` the device still gets a toast
    with the alert. ``cachePolicy`` → ``X-WNS-Cache-Policy``, ``expirationTime`` →
    ``X-WNS-TTL``, ``tile.tag`` → ``X-WNS-Tag``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from apps.models import App
from core.api.errors import ApiError
from core.ssrf import UnsafeUrl, check_public_url
from imfpush.errors import APP_DISABLED, SMS_NOT_CONFIGURED, MfpError
from imfpush.message_selectors import MFP_DELETED, MFP_MESSAGE, message_or_404
from imfpush.models import MfpApplication
from notifications.models import Notification
from notifications.providers.platform_fields import PLATFORM_FIELDS
from notifications.services import notification_cancel, notification_create
from notifications.validation import MAX_TTL, MFP_TARGET

DEFAULT_BULK_LIMIT = 100
MAX_TARGET_ENTRIES = 10_000
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
_DIGITS = re.compile(r"^[0-9]+$")


# --- coercion helpers (§1.5: native types and their string forms) ---------------------------------


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise MfpError.invalid(name, NOT_A_STRING)
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MfpError.invalid(name, NOT_A_BOOLEAN)


def _int(value: Any, name: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
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


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise MfpError.invalid(name, NOT_AN_OBJECT)
    return value


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """An enumeration, matched case-insensitively (§6 #22), returned in its canonical case."""
    if isinstance(value, str):
        for choice in choices:
            if choice.lower() == value.strip().lower():
                return choice
    raise MfpError.invalid(name, NOT_ONE_OF % {"choices": ", ".join(choices)})


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MfpError.invalid(name, NOT_STRINGS)
    return list(value)


def _json_object(value: Any, name: str) -> dict:
    """A payload: an object, or a string holding one (cloud-push-client sends a string)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise MfpError.invalid(name, NOT_JSON_OBJECT)
    if len(_compact(value).encode()) > MAX_PAYLOAD_BYTES:
        raise MfpError.invalid(name, PAYLOAD_TOO_LARGE % {"limit": MAX_PAYLOAD_BYTES})
    return value


def _url(value: Any, name: str) -> str:
    """A URL a device will fetch: http(s), and not a private, loopback or link-local address."""
    url = _string(value, name)
    if url[:8].lower().startswith(("http://", "https://")):
        try:
            check_public_url(url, purpose=name, allow_unresolvable=True, require_https=False)
        except UnsafeUrl as exc:
            raise MfpError.invalid(name, str(exc)) from exc
    return url


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _fields(source: dict, prefix: str, spec: dict[str, Any]) -> dict:
    """Normalize the known keys of ``source`` with ``spec[key](value, name)``; others are ignored."""
    out = {}
    for key, check in spec.items():
        value = source.get(key)
        if value is not None:
            out[key] = check(value, f"{prefix}.{key}")
    return out


# --- normalization (§4) -----------------------------------------------------------------------------


def _target(value: Any) -> dict:
    target = _object(value, "target")
    out: dict[str, Any] = {}
    for key, item in target.items():
        if key in TARGET_LISTS:
            entries = _strings(item, f"target.{key}")
            if not entries:
                raise MfpError.invalid(f"target.{key}", NOT_AN_ARRAY)
            if len(entries) > MAX_TARGET_ENTRIES:
                raise MfpError.invalid(f"target.{key}", TOO_MANY % {"limit": MAX_TARGET_ENTRIES})
            out[key] = entries
        elif key in ("platforms", "platform"):
            if item is None:
                continue
            raw = [item] if isinstance(item, str) else item
            codes = _strings(raw, f"target.{key}")
            platforms = out.setdefault("platforms", [])
            for code in (part.strip().upper() for entry in codes for part in entry.split(",")):
                if code not in PLATFORMS:
                    raise MfpError.invalid(f"target.{key}", NOT_ONE_OF % {"choices": ", ".join(PLATFORMS)})
                if code not in platforms:
                    platforms.append(code)
            if not platforms:
                raise MfpError.invalid(f"target.{key}", NOT_AN_ARRAY)
        else:
            raise MfpError.invalid(f"target.{key}", UNKNOWN_TARGET)
    if sum(key in out for key in TARGET_LISTS) > 1:
        raise MfpError.invalid("target", ONE_TARGET)
    return out


def _category(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # [YAML] shows an integer (§6 #22)
    return _string(value, name)


APNS_SPEC = {
    "badge": lambda v, n: _int(v, n),
    "sound": _string,
    "iosActionKey": _string,
    "launchImage": _string,
    "type": lambda v, n: _choice(v, n, APNS_TYPES),
    "payload": _json_object,
    "interactiveCategory": _category,
    "category": _category,
    "title": _string,
    "subtitle": _string,
    "attachmentUrl": _url,
    "locKey": _string,
    "locArgs": _strings,
    "titleLocKey": _string,
    "titleLocArgs": _strings,
    "apnsCollapseId": _string,
    "apnsThreadId": _string,
    "apnsGroupSummaryArg": _string,
    "apnsGroupSummaryArgCount": lambda v, n: _int(v, n),
}


def _lights(value: Any, name: str) -> dict:
    lights = _object(value, name)
    out = _fields(
        lights,
        name,
        {
            "ledArgb": lambda v, n: _choice(v, n, tuple(LED_COLOURS)),
            "ledOnMs": lambda v, n: _int(v, n),
            "ledOffMs": lambda v, n: _int(v, n),
        },
    )
    if "ledArgb" not in out:
        raise MfpError.invalid(f"{name}.ledArgb", REQUIRED)
    return out


def _style(value: Any, name: str) -> dict:
    style = _object(value, name)
    kind_key = "notification_type" if style.get("notification_type") is not None else "type"
    if style.get(kind_key) is None:
        raise MfpError.invalid(f"{name}.notification_type", REQUIRED)
    out = {"notification_type": _choice(style[kind_key], f"{name}.{kind_key}", STYLE_TYPES)}
    out |= _fields(style, name, {"title": _string, "url": _url, "text": _string, "lines": _strings})
    needed = {"picture_notification": "url", "inbox_notification": "lines", "bigtext_notification": "text"}
    field = needed[out["notification_type"]]
    if field not in out:
        raise MfpError.invalid(f"{name}.{field}", REQUIRED)
    return out


GCM_SPEC = {
    "collapseKey": _string,
    "sound": _string,
    "interactiveCategory": _string,
    "redact": _string,
    "delayWhileIdle": _bool,
    "bridge": _bool,
    "sync": _bool,
    "timeToLive": lambda v, n: _int(v, n, 0, MAX_TTL),
    "priority": lambda v, n: _choice(v, n, GCM_PRIORITIES),
    "category": lambda v, n: _choice(v, n, GCM_CATEGORIES),
    "visibility": lambda v, n: _choice(v, n, GCM_VISIBILITIES),
    "payload": _json_object,
    "lights": _lights,
    "style": _style,
    "icon": _string,
    "androidTitle": _string,
    "groupId": _string,
    "channelId": _string,
    "type": lambda v, n: _choice(v, n, GCM_TYPES),
}


def _binding(value: Any, name: str) -> dict:
    binding = _object(value, name)
    if binding.get("template") is None:
        raise MfpError.invalid(f"{name}.template", REQUIRED)
    out = _fields(
        binding,
        name,
        {
            "template": _string,
            "fallback": _string,
            "lang": _string,
            "baseUri": _string,
            "branding": _string,
            "addImageQuery": _bool,
            "contentId": _string,
        },
    )
    for key, required, spec in (
        ("text", "content", {"content": _string, "lang": _string}),
        ("image", "src", {"src": _string, "alt": _string, "addImageQuery": _bool}),
    ):
        items = binding.get(key)
        if items is None:
            continue
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise MfpError.invalid(f"{name}.{key}", NOT_AN_ARRAY)
        out[key] = []
        for index, item in enumerate(items):
            item_name = f"{name}.{key}[{index}]"
            entry = _fields(_object(item, item_name), item_name, spec)
            if required not in entry:
                raise MfpError.invalid(f"{item_name}.{required}", REQUIRED)
            out[key].append(entry)
    return out


def _visual(value: Any, name: str, *, tile: bool) -> dict:
    visual = _object(value, name)
    out = _fields(
        visual,
        name,
        {
            "addImageQuery": _bool,
            "baseUri": _string,
            "branding": _string,
            "contentId": _string,
            "lang": _string,
            "version": lambda v, n: _int(v, n, 1, 99),
        },
    )
    binding = visual.get("binding")
    if binding is None:
        raise MfpError.invalid(f"{name}.binding", REQUIRED)
    if tile:  # an array for tiles (one binding per tile size); one object is taken as [object]
        bindings = binding if isinstance(binding, list) else [binding]
        if not bindings:
            raise MfpError.invalid(f"{name}.binding", NOT_AN_ARRAY)
        out["binding"] = [_binding(b, f"{name}.binding[{i}]") for i, b in enumerate(bindings)]
    else:
        out["binding"] = _binding(binding, f"{name}.binding")
    return out


def _toast(value: Any, name: str) -> dict:
    toast = _object(value, name)
    out = _fields(
        toast,
        name,
        {
            "audio": lambda v, n: _fields(_object(v, n), n, {"loop": _bool, "silent": _bool, "src": _string}),
            "duration": lambda v, n: _choice(v, n, WNS_DURATIONS),
        },
    )
    launch = toast.get("launch")
    if launch is not None:
        if not isinstance(launch, dict | str):
            raise MfpError.invalid(f"{name}.launch", NOT_JSON_OBJECT)
        out["launch"] = launch
    if toast.get("visual") is None:
        raise MfpError.invalid(f"{name}.visual", REQUIRED)
    out["visual"] = _visual(toast["visual"], f"{name}.visual", tile=False)
    return out


def _tile(value: Any, name: str) -> dict:
    tile = _object(value, name)
    out = _fields(tile, name, {"tag": _string})
    if tile.get("visual") is None:
        raise MfpError.invalid(f"{name}.visual", REQUIRED)
    out["visual"] = _visual(tile["visual"], f"{name}.visual", tile=True)
    return out


def _badge_value(value: Any, name: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    if isinstance(value, str):
        for glyph in WNS_GLYPHS:
            if glyph.lower() == value.strip().lower():
                return glyph
    raise MfpError.invalid(name, NOT_ONE_OF % {"choices": "0-99, " + ", ".join(WNS_GLYPHS)})


def _wns_badge(value: Any, name: str) -> dict:
    badge = _object(value, name)
    if badge.get("value") is None:
        raise MfpError.invalid(f"{name}.value", REQUIRED)
    return _fields(badge, name, {"value": _badge_value, "version": lambda v, n: _int(v, n, 1, 99)})


def _raw(value: Any, name: str) -> dict:
    raw = _object(value, name)
    payload = raw.get("payload")
    if payload is None:
        raise MfpError.invalid(f"{name}.payload", REQUIRED)
    if not isinstance(payload, dict | str):
        raise MfpError.invalid(f"{name}.payload", NOT_JSON_OBJECT)
    return {"payload": payload}


WNS_SPEC = {
    "badge": _wns_badge,
    "cachePolicy": _bool,
    "expirationTime": lambda v, n: _int(v, n, 0, MAX_TTL),
    "raw": _raw,
    "tile": _tile,
    "toast": _toast,
}
SETTINGS_SPECS = {"apns": APNS_SPEC, "gcm": GCM_SPEC, "wns": WNS_SPEC}


def normalize(body: Any) -> dict:
    """The accepted message body (§4.6): checked, types coerced, ``settings.target`` moved to
    ``target``, ``platform`` renamed ``platforms`` and ``"A,G"`` split. Unknown top-level keys,
    other ``settings`` keys (IBM Cloud's web platforms) and unknown keys inside ``apns``, ``gcm``
    and ``wns`` are ignored and left out; an unknown key inside ``target`` is a 400."""
    body = _object(body, "message")
    message = body.get("message")
    if message is None:
        raise MfpError.invalid("message", REQUIRED)
    message = _object(message, "message")
    alert = message.get("alert")
    if not isinstance(alert, str) or not alert.strip():
        raise MfpError.invalid("message.alert", EMPTY_ALERT)
    out: dict[str, Any] = {"message": {"alert": alert}}
    if message.get("url") is not None:
        out["message"]["url"] = _string(message["url"], "message.url")
    if body.get("notificationType") is not None:
        out["notificationType"] = _int(body["notificationType"], "notificationType", 1, 3)
    settings_ = body.get("settings")
    if settings_ is not None:
        settings_ = _object(settings_, "settings")
        out["settings"] = {
            platform: _fields(
                _object(settings_[platform], f"settings.{platform}"), f"settings.{platform}", spec
            )
            for platform, spec in SETTINGS_SPECS.items()
            if settings_.get(platform) is not None
        }
    target = body.get("target")
    if target is None and settings_ is not None:
        target = settings_.get("target")  # the brace error of [REF] (§6 #1)
    if target is not None:
        out["target"] = _target(target)
    return out


# --- translation ------------------------------------------------------------------------------------


def _apns_fields(apns: dict, message_id: str) -> dict:
    kind = apns.get("type", "DEFAULT")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {"nid": message_id}
    if kind == "SILENT":  # background only: no alert, sound or badge
        fields["apns_push_type_override"] = "background"
        fields["content_available"] = True
    else:
        if kind == "MIXED":
            fields["content_available"] = True
        if "badge" in apns:
            fields["ios_badgeType"] = "SetTo"
            fields["ios_badgeCount"] = apns["badge"]
        if "sound" in apns:
            fields["ios_sound"] = apns["sound"]
    alert = {
        key: apns[name]
        for name, key in (
            ("title", "title"),
            ("subtitle", "subtitle"),
            ("locKey", "loc-key"),
            ("locArgs", "loc-args"),
            ("titleLocKey", "title-loc-key"),
            ("titleLocArgs", "title-loc-args"),
            ("iosActionKey", "action-loc-key"),
            ("launchImage", "launch-image"),
        )
        if name in apns
    }
    if alert:
        fields["apns_alert"] = alert
    category = apns.get("interactiveCategory", apns.get("category"))
    if category is not None:
        fields["ios_category"] = category
    for name, key in (
        ("apnsThreadId", "thread_id"),
        ("apnsCollapseId", "collapse_id"),
        ("apnsGroupSummaryArg", "summary_arg"),
        ("apnsGroupSummaryArgCount", "summary_arg_count"),
    ):
        if name in apns:
            fields[key] = apns[name]
    if "attachmentUrl" in apns:
        fields["mutable_content"] = True
        extra["attachment-url"] = apns["attachmentUrl"]
    if "payload" in apns:
        extra["payload"] = apns["payload"]
    fields["apns_payload_extra"] = extra
    return fields


def _light_settings(lights: dict) -> dict:
    red, green, blue, alpha = LED_COLOURS[lights["ledArgb"]]
    settings_: dict[str, Any] = {
        "color": {"red": red / 255, "green": green / 255, "blue": blue / 255, "alpha": alpha / 255}
    }
    for name, key in (("ledOnMs", "light_on_duration"), ("ledOffMs", "light_off_duration")):
        if name in lights:
            settings_[key] = f"{lights[name] / 1000:.3f}s"
    return settings_


def _fcm_fields(gcm: dict, message: dict, message_id: str) -> dict:
    fields: dict[str, Any] = {}
    notification: dict[str, Any] = {}
    data: dict[str, str] = {
        "payload": _compact({**gcm.get("payload", {}), "nid": message_id}),
        "type": gcm.get("type", "DEFAULT"),
        "has-template": "0",  # the IBM Android SDK parses it as an integer on every message
    }
    if "url" in message:
        data["url"] = message["url"]
    if gcm.get("type") == "SILENT":
        fields["content_available"] = True  # data only: no notification block
    if "priority" in gcm:
        fields["priority"] = 10 if gcm["priority"] in ("max", "high") else 5
        notification["notification_priority"] = FCM_PRIORITY_NAMES[gcm["priority"]]
    if "timeToLive" in gcm:
        fields["platform_ttl"] = gcm["timeToLive"]
    if "collapseKey" in gcm:
        fields["collapse_id"] = gcm["collapseKey"]
        data["key"] = gcm["collapseKey"]
    for name, key in (
        ("sound", "android_sound"),
        ("icon", "small_icon"),
        ("channelId", "android_channel_id"),
    ):
        if name in gcm:
            fields[key] = gcm[name]
    if "visibility" in gcm:
        notification["visibility"] = gcm["visibility"].upper()
    if "lights" in gcm:
        notification["light_settings"] = _light_settings(gcm["lights"])
        lights = gcm["lights"]
        data["lights"] = _compact(
            {
                key: lights[name]
                for name, key in (("ledArgb", "ledARGB"), ("ledOnMs", "ledOnMS"), ("ledOffMs", "ledOffMS"))
                if name in lights
            }
        )
    if "androidTitle" in gcm:
        notification["title"] = gcm["androidTitle"]
    style = gcm.get("style")
    if style is not None:
        if style["notification_type"] == "picture_notification":
            notification["image"] = style["url"]
        data["style"] = _compact({("type" if k == "notification_type" else k): v for k, v in style.items()})
    for name in ("androidTitle", "sound", "priority", "visibility", "redact", "interactiveCategory"):
        if name in gcm:
            data[name] = gcm[name]
    for name in ("category", "icon", "groupId", "channelId"):
        if name in gcm:
            data[name] = gcm[name]
    for name in ("bridge", "sync"):
        if name in gcm:
            data[name] = "true" if gcm[name] else "false"
    if notification:
        fields["fcm_android_notification"] = notification
    fields["fcm_data_extra"] = data
    return fields


def _attributes(source: dict, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        value = source.get(name)
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f" {name}={quoteattr(text)}")
    return "".join(parts)


BINDING_ATTRIBUTES = ("template", "fallback", "lang", "baseUri", "branding", "addImageQuery", "contentId")
VISUAL_ATTRIBUTES = ("version", "lang", "baseUri", "branding", "addImageQuery", "contentId")


def _binding_xml(binding: dict) -> str:
    images = "".join(
        f'<image id="{n}"{_attributes(image, ("src", "alt", "addImageQuery"))}/>'
        for n, image in enumerate(binding.get("image", []), 1)
    )
    texts = "".join(
        f'<text id="{n}"{_attributes(text, ("lang",))}>{escape(text["content"])}</text>'
        for n, text in enumerate(binding.get("text", []), 1)
    )
    return f"<binding{_attributes(binding, BINDING_ATTRIBUTES)}>{images}{texts}</binding>"


def _visual_xml(visual: dict) -> str:
    bindings = visual["binding"] if isinstance(visual["binding"], list) else [visual["binding"]]
    inner = "".join(_binding_xml(binding) for binding in bindings)
    return f"<visual{_attributes(visual, VISUAL_ATTRIBUTES)}>{inner}</visual>"


def toast_xml(toast: dict) -> str:
    launch = toast.get("launch")
    attributes = _attributes(
        {
            "launch": _compact(launch) if isinstance(launch, dict) else launch,
            "duration": toast.get("duration"),
        },
        ("launch", "duration"),
    )
    audio = toast.get("audio")
    audio_xml = f"<audio{_attributes(audio, ('src', 'loop', 'silent'))}/>" if audio else ""
    return f"<toast{attributes}>{_visual_xml(toast['visual'])}{audio_xml}</toast>"


def tile_xml(tile: dict) -> str:
    return f"<tile>{_visual_xml(tile['visual'])}</tile>"


def badge_xml(badge: dict) -> str:
    return f"<badge{_attributes(badge, ('value', 'version'))}/>"


def _wns_fields(wns: dict) -> dict:
    fields: dict[str, Any] = {}
    if "cachePolicy" in wns:
        fields["wns_cache_policy"] = "cache" if wns["cachePolicy"] else "no-cache"
    if "expirationTime" in wns:
        fields["platform_ttl"] = wns["expirationTime"]
    if any(kind in wns for kind in ("toast", "tile", "badge", "raw")):
        # The toast first (its answer is the device's outcome); the default toast shows the alert.
        notifications: list[dict[str, Any]] = [
            {"type": "toast", "payload": toast_xml(wns["toast"])} if "toast" in wns else {"type": "toast"}
        ]
        if "tile" in wns:
            tile: dict[str, Any] = {"type": "tile", "payload": tile_xml(wns["tile"])}
            if "tag" in wns["tile"]:
                tile["tag"] = wns["tile"]["tag"]
            notifications.append(tile)
        if "badge" in wns:
            notifications.append({"type": "badge", "payload": badge_xml(wns["badge"])})
        if "raw" in wns:
            payload = wns["raw"]["payload"]
            notifications.append(
                {"type": "raw", "payload": payload if isinstance(payload, str) else _compact(payload)}
            )
        fields["wns_notifications"] = notifications
    return fields


@dataclass
class Translation:
    body: dict[str, Any]  # the public fields of the notification request
    internal: dict[str, Any]  # Herald's herald_* fields


def translate(normalized: dict, message_id: str) -> Translation:
    """The notification request for a normalized message whose id will be ``message_id``."""
    message = normalized["message"]
    kind = normalized.get("notificationType", 1)
    body: dict[str, Any] = {"contents": {"en": message["alert"]}, "ttl": MAX_TTL}
    if "url" in message:
        body["url"] = message["url"]
    if kind == 2:
        body["target_channel"] = "sms"
    target = {**normalized.get("target", {}), "push": kind in (1, 3), "sms": kind in (2, 3)}
    settings_ = normalized.get("settings", {})
    platform_fields = {
        "apns": _apns_fields(settings_.get("apns", {}), message_id),
        "fcm": _fcm_fields(settings_.get("gcm", {}), message, message_id),
        "wns": _wns_fields(settings_.get("wns", {})),
    }
    internal = {MFP_TARGET: target, PLATFORM_FIELDS: platform_fields, MFP_MESSAGE: normalized}
    return Translation(body=body, internal=internal)


# --- the service --------------------------------------------------------------------------------


@dataclass
class SentMessage:
    notification: Notification
    message: dict  # the normalized body, as first accepted (a replay returns the first one)
    replayed: bool


def _check_sendable(record: MfpApplication, normalized: dict) -> None:
    if normalized.get("notificationType", 1) in (2, 3) and not record.app.sms_gateway_json:
        raise MfpError(400, "FPWSE0003E", SMS_NOT_CONFIGURED)


def _create(app: App, normalized: dict, header_key: str | None) -> SentMessage:
    message_id = uuid.uuid4()
    translation = translate(normalized, str(message_id))
    try:
        response, replayed = notification_create(
            app=app,
            body=translation.body,
            header_key=header_key,
            internal=translation.internal,
            notification_id=message_id,
            allow_empty=True,
        )
    except ApiError as exc:  # the pipeline's own checks (APNs payload size and the like)
        reason = "; ".join(str(e) for e in exc.body.get("errors", [])) or str(exc.body)
        raise MfpError.invalid("message", reason) from exc
    notification = Notification.objects.get(app=app, pk=response["id"])
    stored = notification.request.get(MFP_MESSAGE) or normalized
    return SentMessage(notification=notification, message=stored, replayed=replayed)


def idempotency_lock_name(app: App, key: str) -> str:
    return f"herald-mfp-idempotency:{app.pk}:{key}"


def _claim_key(app: App, key: str | None) -> None:
    """Inside the sending transaction: ``409`` while a twin request with the same key is still in
    flight (§1.3). A PostgreSQL advisory lock, released when the transaction ends; after the twin
    commits, the key replays its answer. (The embedded SQLite default runs writes one at a time.)"""
    if not key or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [idempotency_lock_name(app, key)]
        )
        if not cursor.fetchone()[0]:
            raise MfpError(409, "FPWSE0002E", KEY_IN_FLIGHT)


def message_send(*, record: MfpApplication, body: Any, idempotency_key: str | None = None) -> SentMessage:
    """``POST /messages``: 403 for a disabled application, 400 for an invalid body, else the
    message stored and its fan-out enqueued after commit (202)."""
    if not record.enabled:
        raise MfpError(403, "FPWSE1007E", APP_DISABLED)
    normalized = normalize(body)
    _check_sendable(record, normalized)
    with transaction.atomic():
        _claim_key(record.app, idempotency_key)
        return _create(record.app, normalized, idempotency_key)


def bulk_limit() -> int:
    return int(getattr(settings, "HERALD_MFP_BULK_LIMIT", DEFAULT_BULK_LIMIT))


def _indexed(error: MfpError, index: int) -> MfpError:
    """The same error, naming the element of the bulk body it is about."""
    if "name" in error.params:
        error.params = {**error.params, "name": f"[{index}].{error.params['name']}"}
    else:
        error.extra = {**error.extra, "index": index}
    return error


def messages_send_bulk(
    *, record: MfpApplication, body: Any, idempotency_key: str | None = None
) -> list[SentMessage]:
    """``POST /messages/bulk``: all or nothing. Every element is checked first; if one fails the
    answer is a 400 naming its index and nothing is stored or sent. With an ``Idempotency-Key``,
    element ``n`` uses the key ``<key>#<n>``, so a replay returns the first answer."""
    if not record.enabled:
        raise MfpError(403, "FPWSE1007E", APP_DISABLED)
    items = body.get("messages") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise MfpError.invalid("messages", BAD_BULK)
    limit = bulk_limit()
    if not 1 <= len(items) <= limit:
        raise MfpError.invalid("messages", EMPTY_BULK % {"limit": limit})
    normalized = []
    for index, item in enumerate(items):
        try:
            message = normalize(item)
            _check_sendable(record, message)
        except MfpError as error:
            raise _indexed(error, index) from None
        normalized.append(message)
    sent = []
    with transaction.atomic():
        _claim_key(record.app, f"bulk:{idempotency_key}" if idempotency_key else None)
        for index, message in enumerate(normalized):
            key = f"{idempotency_key}#{index}" if idempotency_key else None
            try:
                sent.append(_create(record.app, message, key))
            except MfpError as error:
                raise _indexed(error, index) from None
    return sent


# --- reads and deletes ----------------------------------------------------------------------------


@transaction.atomic
def message_delete(*, app: App, message_id: str) -> None:
    """``DELETE /messages/{id}``: the message is canceled as ``notification_cancel`` cancels a
    notification (batches not yet dispatched are never sent; those already handed to APNs, FCM or
    WNS cannot be recalled) and removed from this API: GET and DELETE answer 404 afterwards.

    The notification row itself stays, canceled, in the OneSignal history with its delivery
    records, so what was already sent remains accounted for (our choice: deleting the rows under
    a batch a worker is sending would lose that record).
    """
    notification = message_or_404(app, message_id, lock=True)
    if not notification.canceled and notification.status != Notification.Status.COMPLETED:
        notification_cancel(app=app, notification_id=str(notification.pk))
    Notification.objects.filter(pk=notification.pk).update(
        request={**notification.request, MFP_DELETED: True}
    )
