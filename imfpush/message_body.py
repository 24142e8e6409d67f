"""Normalizing a MobileFirst message body (§4): types coerced, target and settings checked."""

from __future__ import annotations

from typing import Any

from imfpush.errors import MfpError
from imfpush.message_coercion import (
    APNS_TYPES,
    DIGITS,
    EMPTY_ALERT,
    GCM_CATEGORIES,
    GCM_PRIORITIES,
    GCM_TYPES,
    GCM_VISIBILITIES,
    LED_COLOURS,
    MAX_TARGET_ENTRIES,
    MAX_TARGET_ENTRY_LENGTH,
    NOT_AN_ARRAY,
    NOT_JSON_OBJECT,
    NOT_ONE_OF,
    ONE_TARGET,
    PLATFORMS,
    REQUIRED,
    STYLE_TYPES,
    TARGET_LISTS,
    TOO_LONG,
    TOO_MANY,
    UNKNOWN_TARGET,
    WNS_DURATIONS,
    WNS_GLYPHS,
    coerce_bool,
    coerce_choice,
    coerce_fields,
    coerce_int,
    coerce_json_object,
    coerce_object,
    coerce_string,
    coerce_strings,
    coerce_url,
)
from notifications.validation import MAX_TTL

# --- normalization (§4) -----------------------------------------------------------------------------


def _target(value: Any) -> dict:
    target = coerce_object(value, "target")
    out: dict[str, Any] = {}
    for key, item in target.items():
        if key in TARGET_LISTS:
            entries = coerce_strings(item, f"target.{key}")
            if not entries:
                raise MfpError.invalid(f"target.{key}", NOT_AN_ARRAY)
            if len(entries) > MAX_TARGET_ENTRIES:
                raise MfpError.invalid(f"target.{key}", TOO_MANY % {"limit": MAX_TARGET_ENTRIES})
            if any(len(entry) > MAX_TARGET_ENTRY_LENGTH for entry in entries):
                raise MfpError.invalid(f"target.{key}", TOO_LONG % {"limit": MAX_TARGET_ENTRY_LENGTH})
            out[key] = entries
        elif key in ("platforms", "platform"):
            if item is None:
                continue
            raw = [item] if isinstance(item, str) else item
            codes = coerce_strings(raw, f"target.{key}")
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
    return coerce_string(value, name)


APNS_SPEC = {
    "badge": lambda v, n: coerce_int(v, n),
    "sound": coerce_string,
    "iosActionKey": coerce_string,
    "launchImage": coerce_string,
    "type": lambda v, n: coerce_choice(v, n, APNS_TYPES),
    "payload": coerce_json_object,
    "interactiveCategory": _category,
    "category": _category,
    "title": coerce_string,
    "subtitle": coerce_string,
    "attachmentUrl": coerce_url,
    "locKey": coerce_string,
    "locArgs": coerce_strings,
    "titleLocKey": coerce_string,
    "titleLocArgs": coerce_strings,
    "apnsCollapseId": coerce_string,
    "apnsThreadId": coerce_string,
    "apnsGroupSummaryArg": coerce_string,
    "apnsGroupSummaryArgCount": lambda v, n: coerce_int(v, n),
}


def _lights(value: Any, name: str) -> dict:
    lights = coerce_object(value, name)
    out = coerce_fields(
        lights,
        name,
        {
            "ledArgb": lambda v, n: coerce_choice(v, n, tuple(LED_COLOURS)),
            "ledOnMs": lambda v, n: coerce_int(v, n),
            "ledOffMs": lambda v, n: coerce_int(v, n),
        },
    )
    if "ledArgb" not in out:
        raise MfpError.invalid(f"{name}.ledArgb", REQUIRED)
    return out


def _style(value: Any, name: str) -> dict:
    style = coerce_object(value, name)
    kind_key = "notification_type" if style.get("notification_type") is not None else "type"
    if style.get(kind_key) is None:
        raise MfpError.invalid(f"{name}.notification_type", REQUIRED)
    out = {"notification_type": coerce_choice(style[kind_key], f"{name}.{kind_key}", STYLE_TYPES)}
    out |= coerce_fields(
        style,
        name,
        {"title": coerce_string, "url": coerce_url, "text": coerce_string, "lines": coerce_strings},
    )
    needed = {"picture_notification": "url", "inbox_notification": "lines", "bigtext_notification": "text"}
    field = needed[out["notification_type"]]
    if field not in out:
        raise MfpError.invalid(f"{name}.{field}", REQUIRED)
    return out


GCM_SPEC = {
    "collapseKey": coerce_string,
    "sound": coerce_string,
    "interactiveCategory": coerce_string,
    "redact": coerce_string,
    "delayWhileIdle": coerce_bool,
    "bridge": coerce_bool,
    "sync": coerce_bool,
    "timeToLive": lambda v, n: coerce_int(v, n, 0, MAX_TTL),
    "priority": lambda v, n: coerce_choice(v, n, GCM_PRIORITIES),
    "category": lambda v, n: coerce_choice(v, n, GCM_CATEGORIES),
    "visibility": lambda v, n: coerce_choice(v, n, GCM_VISIBILITIES),
    "payload": coerce_json_object,
    "lights": _lights,
    "style": _style,
    "icon": coerce_string,
    "androidTitle": coerce_string,
    "groupId": coerce_string,
    "channelId": coerce_string,
    "type": lambda v, n: coerce_choice(v, n, GCM_TYPES),
}


def _binding(value: Any, name: str) -> dict:
    binding = coerce_object(value, name)
    if binding.get("template") is None:
        raise MfpError.invalid(f"{name}.template", REQUIRED)
    out = coerce_fields(
        binding,
        name,
        {
            "template": coerce_string,
            "fallback": coerce_string,
            "lang": coerce_string,
            "baseUri": coerce_string,
            "branding": coerce_string,
            "addImageQuery": coerce_bool,
            "contentId": coerce_string,
        },
    )
    for key, required, spec in (
        ("text", "content", {"content": coerce_string, "lang": coerce_string}),
        ("image", "src", {"src": coerce_string, "alt": coerce_string, "addImageQuery": coerce_bool}),
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
            entry = coerce_fields(coerce_object(item, item_name), item_name, spec)
            if required not in entry:
                raise MfpError.invalid(f"{item_name}.{required}", REQUIRED)
            out[key].append(entry)
    return out


def _visual(value: Any, name: str, *, tile: bool) -> dict:
    visual = coerce_object(value, name)
    out = coerce_fields(
        visual,
        name,
        {
            "addImageQuery": coerce_bool,
            "baseUri": coerce_string,
            "branding": coerce_string,
            "contentId": coerce_string,
            "lang": coerce_string,
            "version": lambda v, n: coerce_int(v, n, 1, 99),
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
    toast = coerce_object(value, name)
    out = coerce_fields(
        toast,
        name,
        {
            "audio": lambda v, n: coerce_fields(
                coerce_object(v, n), n, {"loop": coerce_bool, "silent": coerce_bool, "src": coerce_string}
            ),
            "duration": lambda v, n: coerce_choice(v, n, WNS_DURATIONS),
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
    tile = coerce_object(value, name)
    out = coerce_fields(tile, name, {"tag": coerce_string})
    if tile.get("visual") is None:
        raise MfpError.invalid(f"{name}.visual", REQUIRED)
    out["visual"] = _visual(tile["visual"], f"{name}.visual", tile=True)
    return out


def _badge_value(value: Any, name: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and DIGITS.match(value.strip()):
        return int(value.strip())
    if isinstance(value, str):
        for glyph in WNS_GLYPHS:
            if glyph.lower() == value.strip().lower():
                return glyph
    raise MfpError.invalid(name, NOT_ONE_OF % {"choices": "0-99, " + ", ".join(WNS_GLYPHS)})


def _wns_badge(value: Any, name: str) -> dict:
    badge = coerce_object(value, name)
    if badge.get("value") is None:
        raise MfpError.invalid(f"{name}.value", REQUIRED)
    return coerce_fields(
        badge, name, {"value": _badge_value, "version": lambda v, n: coerce_int(v, n, 1, 99)}
    )


def _raw(value: Any, name: str) -> dict:
    raw = coerce_object(value, name)
    payload = raw.get("payload")
    if payload is None:
        raise MfpError.invalid(f"{name}.payload", REQUIRED)
    if not isinstance(payload, dict | str):
        raise MfpError.invalid(f"{name}.payload", NOT_JSON_OBJECT)
    return {"payload": payload}


WNS_SPEC = {
    "badge": _wns_badge,
    "cachePolicy": coerce_bool,
    "expirationTime": lambda v, n: coerce_int(v, n, 0, MAX_TTL),
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
    body = coerce_object(body, "message")
    message = body.get("message")
    if message is None:
        raise MfpError.invalid("message", REQUIRED)
    message = coerce_object(message, "message")
    alert = message.get("alert")
    if not isinstance(alert, str) or not alert.strip():
        raise MfpError.invalid("message.alert", EMPTY_ALERT)
    out: dict[str, Any] = {"message": {"alert": alert}}
    if message.get("url") is not None:
        out["message"]["url"] = coerce_string(message["url"], "message.url")
    if body.get("notificationType") is not None:
        out["notificationType"] = coerce_int(body["notificationType"], "notificationType", 1, 3)
    settings_ = body.get("settings")
    if settings_ is not None:
        settings_ = coerce_object(settings_, "settings")
        out["settings"] = {
            platform: coerce_fields(
                coerce_object(settings_[platform], f"settings.{platform}"), f"settings.{platform}", spec
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
