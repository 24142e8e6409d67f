"""Per-platform request fields (notifications.providers.platform_fields) and the internal keys the
providers read: each gateway sees only its own fields; WNS sends several notifications per
channel and reports one outcome per player."""

from __future__ import annotations

import uuid

import pytest

from notifications.providers import wns
from notifications.providers.apns import build_headers, build_payload
from notifications.providers.base import Outcome, Recipient, RenderedMessage
from notifications.providers.fcm import build_message
from notifications.providers.http2 import HttpResponse
from notifications.providers.platform_fields import capped_ttl, platform_body

PLAYER = uuid.UUID(int=1)


def message(body: dict, ttl: int = 600) -> RenderedMessage:
    return RenderedMessage(
        notification_id="n-1", heading=None, content="Hi", subtitle=None, body=body, ttl_seconds=ttl
    )


def recipient(device_type: int, identifier: str, player_id: uuid.UUID = PLAYER) -> Recipient:
    return Recipient(
        player_id=player_id, device_type=device_type, identifier=identifier, language="en", tags={}
    )


def test_platform_body_lays_a_platforms_fields_over_the_request():
    body = {
        "contents": {"en": "Hi"},
        "collapse_id": "all",
        "herald_platform_fields": {"apns": {"collapse_id": "ios"}},
    }
    assert platform_body(body, "apns")["collapse_id"] == "ios"
    assert platform_body(body, "fcm") is body
    assert platform_body({"herald_platform_fields": "nonsense"}, "apns") == {
        "herald_platform_fields": "nonsense"
    }


@pytest.mark.parametrize(
    ("cap", "left", "expected"), [(None, 600, 600), (10, 600, 10), (900, 600, 600), (0, 5, 0)]
)
def test_capped_ttl(cap, left, expected):
    assert capped_ttl({} if cap is None else {"platform_ttl": cap}, left) == expected


def test_apns_reads_only_its_own_fields_and_adds_top_level_extras():
    body = {
        "contents": {"en": "Hi"},
        "herald_platform_fields": {
            "apns": {"collapse_id": "c1", "apns_payload_extra": {"nid": "n-1", "aps": "never replaces aps"}},
            "fcm": {"collapse_id": "other"},
        },
    }
    payload = build_payload(recipient(0, "ab" * 32), message(body))
    assert payload == {
        "aps": {"alert": {"body": "Hi"}, "sound": "default"},
        "custom": {"i": "n-1"},
        "nid": "n-1",
    }
    assert "apns-collapse-id: c1" in build_headers(message(body), "com.example", 0)


def test_fcm_data_extra_android_notification_and_ttl():
    body = {
        "herald_platform_fields": {
            "fcm": {
                "fcm_data_extra": {"nid": "n-1", "not-a-string": 1},
                "fcm_android_notification": {"visibility": "SECRET"},
                "platform_ttl": 30,
            }
        }
    }
    fcm = build_message(recipient(1, "tok"), message(body))
    assert fcm["data"]["nid"] == "n-1" and "not-a-string" not in fcm["data"]
    assert fcm["android"]["ttl"] == "30s" and fcm["android"]["notification"] == {"visibility": "SECRET"}


class FakeClient:
    def __init__(self, statuses: dict[str, int]):
        self.statuses = statuses
        self.sent = []

    def send_all(self, requests_):
        self.sent += requests_
        kinds = [dict(h.split(": ", 1) for h in r.headers)["x-wns-type"] for r in requests_]
        return [
            HttpResponse(request=r, status=self.statuses.get(k, 200))
            for r, k in zip(requests_, kinds, strict=True)
        ]


@pytest.fixture
def wns_provider(monkeypatch):
    monkeypatch.setattr(wns, "access_token", lambda sid, secret: "token")

    class App:
        wns_package_sid = "ms-app://s-1"
        wns_client_secret = "secret"

    def with_statuses(statuses: dict[str, int]):
        client = FakeClient(statuses)
        monkeypatch.setattr(wns, "_client", lambda: client)
        return wns.WnsProvider(App()), client

    return with_statuses


ENTRIES = [
    {"type": "toast"},
    {"type": "tile", "payload": "<tile/>", "tag": "t1"},
    {"type": "badge", "payload": "<badge value='1'/>"},
]


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ({}, Outcome.SENT),
        ({"wns/tile": 406}, Outcome.SENT),  # a throttled tile does not resend the toast
        ({"wns/toast": 503}, Outcome.TRANSIENT),
        ({"wns/badge": 410}, Outcome.INVALID_RECIPIENT),  # the channel is gone
    ],
)
def test_wns_sends_every_notification_and_reports_one_outcome_per_player(wns_provider, statuses, outcome):
    provider, client = wns_provider(statuses)
    body = {"herald_platform_fields": {"wns": {"wns_notifications": ENTRIES, "wns_cache_policy": "no-cache"}}}
    channel = "https://db5.notify.windows.com/?token=a"
    results = provider.send([(recipient(6, channel), message(body))])
    assert [(r.player_id, r.outcome) for r in results] == [(PLAYER, outcome)]
    headers = [dict(h.split(": ", 1) for h in r.headers) for r in client.sent]
    assert [h["x-wns-type"] for h in headers] == ["wns/toast", "wns/tile", "wns/badge"]
    assert {h["x-wns-cache-policy"] for h in headers} == {"no-cache"}
    assert headers[1]["x-wns-tag"] == "t1" and "x-wns-tag" not in headers[0]
    assert client.sent[1].body == b"<tile/>"


def test_wns_without_entries_sends_one_toast_per_player(wns_provider):
    provider, client = wns_provider({})
    other = uuid.UUID(int=2)
    items = [
        (recipient(6, "https://db5.notify.windows.com/?token=a"), message({})),
        (recipient(6, "https://db5.notify.windows.com/?token=b", other), message({})),
    ]
    results = provider.send(items)
    assert sorted((r.player_id, r.outcome) for r in results) == [
        (PLAYER, Outcome.SENT),
        (other, Outcome.SENT),
    ]
    assert len(client.sent) == 2
