"""Device types, the channels they belong to, the providers that deliver them, and stats keys."""

from __future__ import annotations

from players.models import DeviceType

PUSH_DEVICE_TYPES = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13})
CHANNEL_DEVICE_TYPES = {
    "push": PUSH_DEVICE_TYPES,
    "email": frozenset({DeviceType.EMAIL.value}),
    "sms": frozenset({DeviceType.SMS.value}),
}

# OneSignal's platform switches (onesignal-api.md §4.2).
PLATFORM_FLAGS = {
    "isIos": {0},
    "isMacOSX": {9},
    "isAndroid": {1},
    "isHuawei": {13},
    "isAnyWeb": {5, 7, 8},
    "isChromeWeb": {5},
    "isEdge": {5},
    "isFirefox": {8},
    "isSafari": {7},
    "isWP_WNS": {6},
    "isWP": {3},
    "isAdm": {2},
    "isChrome": {4},
    "isAlexa": {10},
}

# The provider module that delivers each device type; others are stored but reported errored.
PROVIDER_FOR_DEVICE_TYPE = {
    0: "apns",
    9: "apns",
    1: "fcm",
    5: "webpush",
    8: "webpush",
    7: "safari",  # Web Push or legacy APNs, per player (notifications/providers/safari.py)
    6: "wns",
    13: "hms",
    2: "adm",
    11: "email",
    14: "sms",
}

# ``platform_delivery_stats`` keys (onesignal-api.md §7.2). OneSignal's specs name no key for
# Windows (WNS); Herald reports it as ``windows`` (our choice), so WNS sends are not counted only
# in the totals. OneSignal's clients keep an unknown key of this object (§7.4; checked with
# onesignal-python-api 5.18.0).
STATS_KEY_FOR_DEVICE_TYPE = {
    0: "ios",
    1: "android",
    2: "android",
    13: "android",
    5: "chrome_web_push",
    6: "windows",
    7: "safari_web_push",
    8: "firefox_web_push",
    11: "email",
    14: "sms",
}


def device_types_for(channel: str, flags: dict) -> set[int]:
    """Narrow a channel's device types by the platform switches that were sent."""
    allowed = set(CHANNEL_DEVICE_TYPES[channel])
    if channel != "push":
        return allowed
    enabled = [PLATFORM_FLAGS[name] for name, value in flags.items() if value is True]
    if enabled:
        return allowed & set().union(*enabled)
    for name, value in flags.items():
        if value is False:
            allowed -= PLATFORM_FLAGS[name]
    return allowed
