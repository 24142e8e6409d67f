"""Translating a normalized MobileFirst message into a notification request (see imfpush.messages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from imfpush.message_coercion import (
    FCM_PRIORITY_NAMES,
    LED_COLOURS,
    compact_json,
)
from imfpush.message_selectors import MFP_MESSAGE
from notifications.providers.platform_fields import PLATFORM_FIELDS
from notifications.validation import MAX_TTL, MFP_TARGET

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
        "payload": compact_json({**gcm.get("payload", {}), "nid": message_id}),
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
        data["lights"] = compact_json(
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
        data["style"] = compact_json(
            {("type" if k == "notification_type" else k): v for k, v in style.items()}
        )
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
            "launch": compact_json(launch) if isinstance(launch, dict) else launch,
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
                {"type": "raw", "payload": payload if isinstance(payload, str) else compact_json(payload)}
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
