"""Pure mapping of MobileFirst message bodies (mobilefirst-push-api.md §4) onto the gateways'
requests: the exact APNs payload and headers, FCM v1 message and WNS requests the providers build
from what ``imfpush.messages`` stores. No database, no network."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET

import pytest

from imfpush.errors import MfpError
from imfpush.messages import normalize, translate
from notifications.providers.apns import build_headers, build_payload
from notifications.providers.base import Recipient, RenderedMessage
from notifications.providers.fcm import build_message
from notifications.providers.wns import build_requests
from notifications.validation import MAX_TTL

MESSAGE_ID = "6f1c2f7e-1d4b-4f4e-9d39-3d5a2c7b9e10"
IOS_TOKEN = "ab" * 32
FCM_TOKEN = "fcm-token-1"
WNS_CHANNEL = "https://db5.notify.windows.com/?token=AwYAAAB"
NOW = 1_700_000_000.0


def rendered(mfp_body: dict) -> RenderedMessage:
    """The message a recipient gets: the stored request (public and internal fields), rendered as
    the delivery pipeline renders it (English contents, no headings)."""
    translation = translate(normalize(mfp_body), MESSAGE_ID)
    body = {**translation.body, **translation.internal}
    return RenderedMessage(
        notification_id=MESSAGE_ID,
        heading=None,
        content=body["contents"]["en"],
        subtitle=None,
        body=body,
        ttl_seconds=body["ttl"],
    )


def recipient(device_type: int, identifier: str, badge_count: int = 0) -> Recipient:
    return Recipient(
        player_id=uuid.UUID(int=7),
        device_type=device_type,
        identifier=identifier,
        language="en",
        tags={},
        badge_count=badge_count,
    )


def apns(mfp_body: dict) -> tuple[dict, dict[str, str]]:
    message = rendered(mfp_body)
    payload = build_payload(recipient(0, IOS_TOKEN, badge_count=4), message)
    headers = dict(line.split(": ", 1) for line in build_headers(message, "com.example.app", NOW))
    return payload, headers


def fcm(mfp_body: dict) -> dict:
    return build_message(recipient(1, FCM_TOKEN), rendered(mfp_body))


def wns(mfp_body: dict) -> list[tuple[dict[str, str], str]]:
    requests_ = build_requests(recipient(6, WNS_CHANNEL), rendered(mfp_body), "wns-token")
    return [(dict(line.split(": ", 1) for line in r.headers), r.body.decode()) for r in requests_]


# --- the minimal message -------------------------------------------------------------------------


def test_the_minimal_message_on_every_gateway():
    body = {"message": {"alert": "Hello World!"}}
    payload, headers = apns(body)
    assert payload == {
        "aps": {"alert": {"body": "Hello World!"}, "sound": "default"},
        "custom": {"i": MESSAGE_ID},
        "nid": MESSAGE_ID,
    }
    assert headers == {
        "content-type": "application/json",
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": str(int(NOW) + MAX_TTL),
        "apns-topic": "com.example.app",
    }
    assert fcm(body) == {
        "token": FCM_TOKEN,
        "data": {
            "custom": json.dumps({"i": MESSAGE_ID}, separators=(",", ":")),
            "alert": "Hello World!",
            "payload": json.dumps({"nid": MESSAGE_ID}, separators=(",", ":")),
            "type": "DEFAULT",
            "has-template": "0",
        },
        "android": {"priority": "HIGH", "ttl": f"{MAX_TTL}s"},
        "notification": {"body": "Hello World!"},
    }
    [(headers, xml)] = wns(body)
    assert headers["x-wns-type"] == "wns/toast" and headers["x-wns-cache-policy"] == "cache"
    assert headers["x-wns-ttl"] == str(MAX_TTL)
    toast = ET.fromstring(xml)  # noqa: S314 - built by us
    assert [t.text for t in toast.iter("text")] == ["Hello World!"]
    assert json.loads(toast.get("launch")) == {"i": MESSAGE_ID}


def test_the_url_goes_to_every_platform():
    body = {"message": {"alert": "Hi", "url": "https://shop.example/sale"}}
    payload, _ = apns(body)
    assert payload["custom"] == {"i": MESSAGE_ID, "u": "https://shop.example/sale"}
    message = fcm(body)
    assert message["data"]["url"] == "https://shop.example/sale"
    assert json.loads(message["data"]["custom"])["u"] == "https://shop.example/sale"


# --- APNs (§4.3) -------------------------------------------------------------------------------------

FULL_APNS = {
    "attachmentUrl": "https://cdn.example/test.png",
    "badge": "1",
    "category": "confirmOrder",
    "interactiveCategory": "confirmOrder",
    "iosActionKey": "Ok",
    "launchImage": "test.png",
    "locArgs": ["Shelly"],
    "locKey": "REQ_FORMAT",
    "payload": {"custom": "data"},
    "sound": "song.mp3",
    "subtitle": "Sub Title",
    "title": "Title",
    "titleLocArgs": ["Shelly"],
    "titleLocKey": "REQ_FORMAT",
    "apnsCollapseId": "sale-1",
    "apnsThreadId": "sales",
    "apnsGroupSummaryArg": "Sales",
    "apnsGroupSummaryArgCount": 2,
    "timeToLive": 10,  # cloud-push-client sends it: ignored
}


def test_apns_default_maps_every_field():
    payload, headers = apns({"message": {"alert": "Order ready"}, "settings": {"apns": FULL_APNS}})
    assert payload == {
        "aps": {
            "alert": {
                "body": "Order ready",
                "title": "Title",
                "subtitle": "Sub Title",
                "loc-key": "REQ_FORMAT",
                "loc-args": ["Shelly"],
                "title-loc-key": "REQ_FORMAT",
                "title-loc-args": ["Shelly"],
                "action-loc-key": "Ok",
                "launch-image": "test.png",
            },
            "sound": "song.mp3",
            "badge": 1,
            "thread-id": "sales",
            "category": "confirmOrder",
            "summary-arg": "Sales",
            "summary-arg-count": 2,
            "mutable-content": 1,
        },
        "custom": {"i": MESSAGE_ID},
        "nid": MESSAGE_ID,
        "attachment-url": "https://cdn.example/test.png",
        "payload": {"custom": "data"},
    }
    assert headers["apns-push-type"] == "alert" and headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == "sale-1"


def test_apns_silent_is_a_background_push_without_alert_sound_or_badge():
    settings = {"apns": {"type": "silent", "badge": 3, "sound": "a.caf", "payload": '{"sync": true}'}}
    payload, headers = apns({"message": {"alert": "ignored"}, "settings": settings})
    assert payload == {
        "aps": {"content-available": 1},
        "custom": {"i": MESSAGE_ID},
        "nid": MESSAGE_ID,
        "payload": {"sync": True},
    }
    assert headers["apns-push-type"] == "background" and headers["apns-priority"] == "5"


def test_apns_mixed_is_the_alert_plus_a_background_update():
    payload, headers = apns({"message": {"alert": "New mail"}, "settings": {"apns": {"type": "MIXED"}}})
    assert payload["aps"] == {"alert": {"body": "New mail"}, "sound": "default", "content-available": 1}
    assert headers["apns-push-type"] == "alert"


def test_apns_category_alias_and_its_integer_form():
    payload, _ = apns({"message": {"alert": "x"}, "settings": {"apns": {"category": 7}}})
    assert payload["aps"]["category"] == "7"


def test_apns_fields_never_reach_the_other_platforms():
    body = {
        "message": {"alert": "x"},
        "settings": {"apns": {"type": "SILENT", "apnsCollapseId": "c", "payload": {"a": 1}}},
    }
    message = fcm(body)
    assert "notification" in message and "collapse_key" not in message["android"]
    assert json.loads(message["data"]["payload"]) == {"nid": MESSAGE_ID}
    [(headers, _)] = wns(body)
    assert "x-wns-tag" not in headers and headers["x-wns-type"] == "wns/toast"


# --- FCM (§4.4) --------------------------------------------------------------------------------------

FULL_GCM = {
    "bridge": False,
    "category": "EMAIL",
    "collapseKey": "testkey",
    "delayWhileIdle": "false",
    "interactiveCategory": "confirmOrder",
    "lights": {"ledArgb": "green", "ledOffMs": "100", "ledOnMs": 250},
    "payload": {"custom": "data"},
    "priority": "max",
    "redact": "Test Redact Message",
    "sound": "song.mp3",
    "style": {
        "lines": ["first line", "second line"],
        "notification_type": "inbox_notification",
        "title": "T",
    },
    "sync": True,
    "timeToLive": "10",
    "visibility": "public",
    "icon": "ic_sale",
    "androidTitle": "Sale",
    "channelId": "offers",
}


def test_gcm_maps_every_field_onto_the_fcm_v1_message():
    message = fcm({"message": {"alert": "50% off"}, "settings": {"gcm": FULL_GCM}})
    data = message["data"]
    assert json.loads(data.pop("custom")) == {"i": MESSAGE_ID}
    assert json.loads(data.pop("payload")) == {"custom": "data", "nid": MESSAGE_ID}
    assert json.loads(data.pop("lights")) == {"ledARGB": "green", "ledOnMS": 250, "ledOffMS": 100}
    assert json.loads(data.pop("style")) == {
        "type": "inbox_notification",
        "title": "T",
        "lines": ["first line", "second line"],
    }
    assert data == {
        "alert": "50% off",
        "type": "DEFAULT",
        "has-template": "0",
        "key": "testkey",
        "androidTitle": "Sale",
        "sound": "song.mp3",
        "priority": "max",
        "visibility": "public",
        "redact": "Test Redact Message",
        "interactiveCategory": "confirmOrder",
        "category": "email",
        "icon": "ic_sale",
        "channelId": "offers",
        "bridge": "false",
        "sync": "true",
    }
    assert message["android"] == {
        "priority": "HIGH",
        "ttl": "10s",
        "collapse_key": "testkey",
        "notification": {
            "channel_id": "offers",
            "sound": "song.mp3",
            "icon": "ic_sale",
            "tag": "testkey",
            "notification_priority": "PRIORITY_MAX",
            "visibility": "PUBLIC",
            "light_settings": {
                "color": {"red": 0.0, "green": 1.0, "blue": 0.0, "alpha": 1.0},
                "light_on_duration": "0.250s",
                "light_off_duration": "0.100s",
            },
            "title": "Sale",
        },
    }
    assert message["notification"] == {"body": "50% off"}
    assert all(isinstance(value, str) for value in message["data"].values())


@pytest.mark.parametrize(
    ("priority", "android"), [("high", "HIGH"), ("default", "NORMAL"), ("MIN", "NORMAL")]
)
def test_gcm_priority_maps_to_fcm_high_or_normal(priority, android):
    message = fcm({"message": {"alert": "x"}, "settings": {"gcm": {"priority": priority}}})
    assert message["android"]["priority"] == android


def test_gcm_picture_style_sets_the_notification_image():
    style = {"notification_type": "PICTURE_NOTIFICATION", "url": "https://cdn.example/p.png", "title": "Pic"}
    message = fcm({"message": {"alert": "x"}, "settings": {"gcm": {"style": style}}})
    assert message["android"]["notification"]["image"] == "https://cdn.example/p.png"
    assert json.loads(message["data"]["style"]) == {
        "type": "picture_notification",
        "url": "https://cdn.example/p.png",
        "title": "Pic",
    }


def test_gcm_silent_is_data_only():
    message = fcm(
        {"message": {"alert": "sync"}, "settings": {"gcm": {"type": "SILENT", "payload": {"k": 1}}}}
    )
    assert "notification" not in message and "notification" not in message["android"]
    assert message["data"]["type"] == "SILENT" and message["data"]["alert"] == "sync"


def test_gcm_time_to_live_zero_is_kept():
    message = fcm({"message": {"alert": "x"}, "settings": {"gcm": {"timeToLive": 0}}})
    assert message["android"]["ttl"] == "0s"


# --- WNS (§4.5) --------------------------------------------------------------------------------------

FULL_WNS = {
    "badge": {"value": "10"},
    "cachePolicy": False,
    "expirationTime": 20,
    "raw": {"payload": {"custom": "data"}},
    "tile": {
        "tag": "tile1",
        "visual": {
            "binding": [
                {"template": "TileSquareText04", "text": [{"content": "Text1"}]},
                {"template": "TileWideText04", "text": [{"content": "Text1"}]},
            ]
        },
    },
    "toast": {
        "audio": {"loop": True, "silent": False, "src": "ms-winsoundevent:Notification.Looping.Alarm"},
        "duration": "long",
        "launch": {"custom": "data"},
        "visual": {
            "lang": "en-US",
            "binding": {
                "template": "ToastImageAndText04",
                "image": [{"src": "https://cdn.example/i.png", "alt": "pic"}],
                "text": [{"content": "Text1"}, {"content": "Text2 & <more>"}, {"content": "Text3"}],
            },
        },
    },
}


def test_wns_sends_toast_tile_badge_and_raw_each_as_its_own_notification():
    requests_ = wns({"message": {"alert": "x"}, "settings": {"wns": FULL_WNS}})
    kinds = [(headers["x-wns-type"], headers["content-type"]) for headers, _ in requests_]
    assert kinds == [
        ("wns/toast", "text/xml"),
        ("wns/tile", "text/xml"),
        ("wns/badge", "text/xml"),
        ("wns/raw", "application/octet-stream"),
    ]
    for headers, _ in requests_:
        assert headers["x-wns-cache-policy"] == "no-cache" and headers["x-wns-ttl"] == "20"
        assert headers["authorization"] == "Bearer wns-token"
    (_, toast), (tile_headers, tile), (_, badge), (_, raw) = requests_
    assert toast == (
        '<toast launch=\'{"custom":"data"}\' duration="long">'
        '<visual lang="en-US"><binding template="ToastImageAndText04">'
        '<image id="1" src="https://cdn.example/i.png" alt="pic"/>'
        '<text id="1">Text1</text><text id="2">Text2 &amp; &lt;more&gt;</text><text id="3">Text3</text>'
        "</binding></visual>"
        '<audio src="ms-winsoundevent:Notification.Looping.Alarm" loop="true" silent="false"/></toast>'
    )
    assert json.loads(ET.fromstring(toast).get("launch")) == {"custom": "data"}  # noqa: S314
    assert tile == (
        '<tile><visual><binding template="TileSquareText04"><text id="1">Text1</text></binding>'
        '<binding template="TileWideText04"><text id="1">Text1</text></binding></visual></tile>'
    )
    assert tile_headers["x-wns-tag"] == "tile1"
    assert badge == '<badge value="10"/>'
    assert json.loads(raw) == {"custom": "data"}


def test_wns_without_a_toast_still_shows_the_alert():
    requests_ = wns({"message": {"alert": "Level up"}, "settings": {"wns": {"badge": {"value": "Alert"}}}})
    (toast_headers, toast), (badge_headers, badge) = requests_
    assert toast_headers["x-wns-type"] == "wns/toast"
    assert [t.text for t in ET.fromstring(toast).iter("text")] == ["Level up"]  # noqa: S314
    assert (badge_headers["x-wns-type"], badge) == ("wns/badge", '<badge value="alert"/>')


def test_wns_cache_policy_and_expiration_alone_keep_the_default_toast():
    [(headers, _)] = wns(
        {"message": {"alert": "x"}, "settings": {"wns": {"cachePolicy": "true", "expirationTime": 5}}}
    )
    assert (headers["x-wns-cache-policy"], headers["x-wns-ttl"], headers["x-wns-type"]) == (
        "cache",
        "5",
        "wns/toast",
    )


# --- normalization (§4.1, §4.2, §4.6) ----------------------------------------------------------------


def test_the_minimal_body_normalizes_to_itself():
    assert normalize({"message": {"alert": "TestMessage"}}) == {"message": {"alert": "TestMessage"}}


def test_normalization_coerces_moves_and_renames():
    body = {
        "message": {"alert": "Hi", "extra": "ignored"},
        "notificationType": "3",
        "validate": True,
        "settings": {
            "target": {"platform": "A,G", "tagNames": ["Gold"]},
            "apns": {"badge": "2", "type": "mixed", "unknown": 1},
            "chromeWeb": {"title": "ignored"},
        },
    }
    assert normalize(body) == {
        "message": {"alert": "Hi"},
        "notificationType": 3,
        "settings": {"apns": {"badge": 2, "type": "MIXED"}},
        "target": {"platforms": ["A", "G"], "tagNames": ["Gold"]},
    }


def test_a_top_level_target_wins_over_settings_target():
    body = {
        "message": {"alert": "Hi"},
        "target": {"userIds": ["u"]},
        "settings": {"target": {"deviceIds": ["d"]}},
    }
    assert normalize(body)["target"] == {"userIds": ["u"]}


def test_platform_array_elements_are_split_and_deduplicated():
    body = {"message": {"alert": "Hi"}, "target": {"platforms": ["A,G", "g", "W"]}}
    assert normalize(body)["target"] == {"platforms": ["A", "G", "W"]}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "message"),
        ({"message": "Hi"}, "message"),
        ({"message": {}}, "message.alert"),
        ({"message": {"alert": "  "}}, "message.alert"),
        ({"message": {"alert": "x"}, "notificationType": 4}, "notificationType"),
        ({"message": {"alert": "x"}, "target": []}, "target"),
        ({"message": {"alert": "x"}, "target": {"deviceIds": []}}, "target.deviceIds"),
        ({"message": {"alert": "x"}, "target": {"userIds": "u"}}, "target.userIds"),
        ({"message": {"alert": "x"}, "target": {"devices": ["d"]}}, "target.devices"),
        ({"message": {"alert": "x"}, "target": {"platforms": ["M"]}}, "target.platforms"),
        ({"message": {"alert": "x"}, "target": {"deviceIds": ["d"], "userIds": ["u"]}}, "target"),
        ({"message": {"alert": "x"}, "settings": {"apns": {"type": "LOUD"}}}, "settings.apns.type"),
        ({"message": {"alert": "x"}, "settings": {"apns": {"badge": -1}}}, "settings.apns.badge"),
        ({"message": {"alert": "x"}, "settings": {"apns": {"payload": "[1]"}}}, "settings.apns.payload"),
        ({"message": {"alert": "x"}, "settings": {"apns": {"locArgs": "Shelly"}}}, "settings.apns.locArgs"),
        (
            {"message": {"alert": "x"}, "settings": {"apns": {"attachmentUrl": "http://127.0.0.1/a.png"}}},
            "settings.apns.attachmentUrl",
        ),
        ({"message": {"alert": "x"}, "settings": {"gcm": {"priority": "urgent"}}}, "settings.gcm.priority"),
        ({"message": {"alert": "x"}, "settings": {"gcm": {"category": "spam"}}}, "settings.gcm.category"),
        ({"message": {"alert": "x"}, "settings": {"gcm": {"visibility": "open"}}}, "settings.gcm.visibility"),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"timeToLive": 2419201}}},
            "settings.gcm.timeToLive",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"delayWhileIdle": "yes"}}},
            "settings.gcm.delayWhileIdle",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"lights": {"ledArgb": "pink"}}}},
            "settings.gcm.lights.ledArgb",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"lights": {"ledOnMs": 1}}}},
            "settings.gcm.lights.ledArgb",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"style": {"title": "t"}}}},
            "settings.gcm.style.notification_type",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"gcm": {"style": {"type": "bigtext_notification"}}}},
            "settings.gcm.style.text",
        ),
        (
            {
                "message": {"alert": "x"},
                "settings": {"gcm": {"style": {"notification_type": "picture_notification"}}},
            },
            "settings.gcm.style.url",
        ),
        ({"message": {"alert": "x"}, "settings": {"gcm": {"type": "MIXED"}}}, "settings.gcm.type"),
        ({"message": {"alert": "x"}, "settings": {"wns": {"badge": {}}}}, "settings.wns.badge.value"),
        (
            {"message": {"alert": "x"}, "settings": {"wns": {"badge": {"value": "sparkle"}}}},
            "settings.wns.badge.value",
        ),
        ({"message": {"alert": "x"}, "settings": {"wns": {"raw": {}}}}, "settings.wns.raw.payload"),
        ({"message": {"alert": "x"}, "settings": {"wns": {"tile": {}}}}, "settings.wns.tile.visual"),
        (
            {
                "message": {"alert": "x"},
                "settings": {"wns": {"tile": {"visual": {"binding": [{"text": []}]}}}},
            },
            "settings.wns.tile.visual.binding[0].template",
        ),
        (
            {
                "message": {"alert": "x"},
                "settings": {"wns": {"toast": {"visual": {"binding": {"template": "T", "text": [{}]}}}}},
            },
            "settings.wns.toast.visual.binding.text[0].content",
        ),
        (
            {
                "message": {"alert": "x"},
                "settings": {"wns": {"toast": {"duration": "forever", "visual": {}}}},
            },
            "settings.wns.toast.duration",
        ),
        (
            {"message": {"alert": "x"}, "settings": {"wns": {"toast": {"visual": {}}}}},
            "settings.wns.toast.visual.binding",
        ),
        ({"message": {"alert": "x"}, "settings": {"wns": {"cachePolicy": 1}}}, "settings.wns.cachePolicy"),
        ({"message": {"alert": "x"}, "settings": "apns"}, "settings"),
        ({"message": {"alert": "x"}, "settings": {"gcm": []}}, "settings.gcm"),
    ],
)
def test_invalid_bodies_are_400_naming_the_property(body, name, settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    with pytest.raises(MfpError) as raised:
        normalize(body)
    error = raised.value
    assert (error.status, error.code) == (400, "FPWSE0005E")
    assert error.params["name"] == name, error.body()
    assert f"The property {name} " in error.body()["message"]


def test_a_too_large_payload_is_refused():
    big = {"k": "x" * 3000}
    with pytest.raises(MfpError) as raised:
        normalize({"message": {"alert": "x"}, "settings": {"gcm": {"payload": big}}})
    assert raised.value.params["name"] == "settings.gcm.payload"


def test_the_target_is_translated_with_its_channels():
    normalized = normalize(
        {"message": {"alert": "x"}, "notificationType": 3, "target": {"tagNames": ["Gold"]}}
    )
    translation = translate(normalized, MESSAGE_ID)
    assert translation.internal["herald_mfp_target"] == {"tagNames": ["Gold"], "push": True, "sms": True}
    assert translation.body == {"contents": {"en": "x"}, "ttl": MAX_TTL}
    sms_only = translate(normalize({"message": {"alert": "x"}, "notificationType": 2}), MESSAGE_ID)
    assert sms_only.internal["herald_mfp_target"] == {"push": False, "sms": True}
    assert sms_only.body["target_channel"] == "sms"
