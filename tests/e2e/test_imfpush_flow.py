"""The MobileFirst Push API end to end (issue 5's acceptance flow): HTTP through the live server,
a real Celery worker, the gateway simulators and a real webhook receiver.

1. a confidential client gets a token from ``/mfp/api/az/v1/token``;
2. it creates the application, a webhook listening to ``onMessageSent`` and a tag;
3. devices register on A (APNs), G (FCM) and W (WNS) and subscribe to the tag; one leaves
   ``Push.all``;
4. messages go out by ``tagNames`` (push and SMS, with ``settings.apns/gcm/wns``), by ``userIds``
   and to broadcast (those two in one bulk request);
5. the simulators received exactly the right devices, each in its gateway's format with the
   MobileFirst settings mapped; each message's ``GET`` reports it completed with its counts;
6. the receiver got ``onMessageSent`` for every message, and the messages are in the OneSignal
   notification history;
7. cross-API: a device registered through ``/imfpush/v1`` receives a OneSignal
   ``POST /notifications`` with ``include_player_ids``.

The app's credentials are wired to the simulators through the OneSignal ``PUT /apps/{id}`` (one
store, two views), as an operator would.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from apps.services import app_key_issue
from imfpush.clients import confidential_client_create
from imfpush.models import MfpApplication, Registration
from tests.e2e.support import (
    Answer,
    HeraldApi,
    call,
    every_channel_credentials,
    every_gateway_env,
    settle,
    use_every_gateway,
)
from tests.webhooks.receiver import running_receiver

pytestmark = pytest.mark.e2e

APPLICATION_ID = "com.example.flow"
BUNDLE = APPLICATION_ID
SCOPE = (
    "apps.write tags.write devices.write subscriptions.write messages.write messages.read "
    f"webhooks.write push.application.{APPLICATION_ID}"
)
COMPLETION_TIMEOUT = 90
PHONE = "+15551230001"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apns_key(sim) -> tuple[str, str, str]:
    return sim.apns_key(topics=[BUNDLE])


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    """Every gateway at the simulator; webhook receivers on loopback, retried fast."""
    return {**every_gateway_env(sim, public_url=live_server.url), "HERALD_WEBHOOK_RETRY_BASE_MS": "200"}


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)
    use_every_gateway(settings, sim)
    yield
    settle()


@dataclass
class Mfp:
    """``/imfpush/v1`` on the live server with a Bearer token."""

    root: str
    token: str

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return call(method, f"{self.root}/{path}", body, authorization=f"Bearer {self.token}")

    def created(self, path: str, body: Any, status: int = 201) -> dict:
        answer = self.call("POST", f"apps/{APPLICATION_ID}/{path}", body)
        assert answer.status == status, (path, answer.status, answer.body)
        return answer.body

    def wait_completed(self, message_id: str, worker) -> dict:
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        while True:
            answer = self.call("GET", f"apps/{APPLICATION_ID}/messages/{message_id}")
            assert answer.status == 200, answer.body
            if answer.body["status"] == "COMPLETED":
                return answer.body
            if worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{worker.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not completed: {answer.body}\n{worker.log_path.read_text()[-5000:]}")
            time.sleep(0.2)


def get_token(live_server, tenant) -> str:
    """Step 1: a confidential client of the tenant and its token, over HTTP as MFP clients do."""
    client_id = f"flow-{secrets.token_hex(4)}"
    _client, secret = confidential_client_create(organization=tenant.organization, client_id=client_id)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE}).encode()
    request = urllib.request.Request(f"{live_server.url}/mfp/api/az/v1/token", data=form, method="POST")  # noqa: S310
    request.add_header(
        "Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the live server
        body = json.loads(answer.read())
    assert body["token_type"] == "Bearer" and set(body["scope"].split()) == set(SCOPE.split())
    return body["access_token"]


@dataclass
class Device:
    device_id: str
    platform: str
    token: str
    user_id: str
    phone: str | None = None

    @property
    def gateway(self) -> str:
        return {"A": "apns", "G": "fcm", "W": "wns"}[self.platform]


def message_of(record: dict) -> str | None:
    """Which message a simulator record carries (the messageId travels in each MFP payload)."""
    payload, platform = record["payload"], record["platform"]
    if platform == "apns":
        return payload.get("nid") or payload["custom"]["i"]
    if platform == "fcm":
        return json.loads(payload["data"]["custom"])["i"]
    if platform == "wns":
        launch = payload.get("launch") if isinstance(payload, dict) else None
        return json.loads(launch).get("i") if launch else None  # custom toasts, tiles and badges: None
    return None


# --- the flow -------------------------------------------------------------------------------------


def test_token_tag_devices_subscriptions_messages_webhook_and_cross_api(
    live_server, tenant, sim, apns_key, worker
):
    mfp = Mfp(f"{live_server.url}/imfpush/v1", get_token(live_server, tenant))

    # 2. The application, wired to the simulators through the OneSignal API (one credential store).
    created = mfp.call("POST", "apps/", {"applicationId": APPLICATION_ID})
    assert created.status == 201, created.body
    app = MfpApplication.objects.get(application_id=APPLICATION_ID).app
    _, app_key = app_key_issue(app=app, label="e2e")
    herald = HeraldApi(f"{live_server.url}/api/v1", str(app.pk), app_key, tenant.user_key)
    configured = herald.configure(every_channel_credentials(sim, apns_key=apns_key, bundle_id=BUNDLE))
    assert configured.status == 200, configured.body

    with running_receiver() as receiver:
        hook = mfp.created("webhooks", {"eventTypes": "onMessageSent", "name": "flow", "url": receiver.url})
        assert hook["eventTypes"] == "onMessageSent"
        mfp.created("tags", {"name": "Gold", "description": "Gold customers"})

        # 3. Devices on A, G and W; a1, g1 and w1 subscribe to Gold; g2 leaves Push.all.
        devices = [
            Device("a1", "A", secrets.token_hex(32), "alice"),
            Device("g1", "G", f"fcm-{secrets.token_urlsafe(24)}", "bob", PHONE),
            Device("w1", "W", sim.wns_channel(), "alice"),
            Device("a2", "A", secrets.token_hex(32), "carol"),
            Device("g2", "G", f"fcm-{secrets.token_urlsafe(24)}", "dave"),
        ]
        for device in devices:
            body = {
                "deviceId": device.device_id,
                "platform": device.platform,
                "token": device.token,
                "userId": device.user_id,
            }
            if device.phone:
                body["phoneNumber"] = device.phone
            registered = mfp.created("devices", body)
            assert (registered["deviceId"], registered["platform"]) == (device.device_id, device.platform)
        by_id = {device.device_id: device for device in devices}
        for device_id in ("a1", "g1", "w1"):
            subscription = mfp.created("subscriptions", {"deviceId": device_id, "tagName": "Gold"})
            assert subscription["tagName"] == "Gold"
        left = mfp.call("DELETE", f"apps/{APPLICATION_ID}/subscriptions?deviceId=g2&tagName=Push.all")
        assert left.status == 204, left.body

        # 4. By tagName (push and SMS, with every platform's settings), then userIds and broadcast.
        gold = {
            "message": {"alert": "Gold sale", "url": "https://shop.example/gold"},
            "notificationType": 3,
            "target": {"tagNames": ["Gold"]},
            "settings": {
                "apns": {"badge": 5, "sound": "gold.caf", "title": "Gold", "payload": {"sku": "G-1"}},
                "gcm": {
                    "priority": "max",
                    "timeToLive": 600,
                    "collapseKey": "gold",
                    "payload": {"sku": "G-1"},
                    "style": {
                        "notification_type": "bigtext_notification",
                        "text": "All gold items, half price",
                    },
                },
                "wns": {
                    "toast": {
                        "launch": {"campaign": "gold"},
                        "visual": {
                            "binding": {
                                "template": "ToastText02",
                                "text": [{"content": "Gold"}, {"content": "Gold sale"}],
                            }
                        },
                    },
                    "badge": {"value": 5},
                },
            },
        }
        sent = mfp.call("POST", f"apps/{APPLICATION_ID}/messages", gold)
        assert sent.status == 202, sent.body
        gold_id = sent.body["messageId"]
        assert sent.headers["Location"].endswith(f"/apps/{APPLICATION_ID}/messages/{gold_id}")
        bulk = mfp.call(
            "POST",
            f"apps/{APPLICATION_ID}/messages/bulk",
            [
                {"message": {"alert": "Hi Alice"}, "target": {"userIds": ["alice"]}},
                {"message": {"alert": "Hello everyone"}, "settings": {"apns": {"type": "MIXED"}}},
            ],
        )
        assert bulk.status == 202, bulk.body
        alice_id, everyone_id = (item["messageId"] for item in bulk.body["messages"])

        # 5. Each message completes; its counts are what reached the gateways.
        done = {
            message_id: mfp.wait_completed(message_id, worker)
            for message_id in (gold_id, alice_id, everyone_id)
        }
        counts = {
            mid: (m["successful"], m["failed"], m["errored"], m["remaining"]) for mid, m in done.items()
        }
        assert counts == {gold_id: (4, 0, 0, 0), alice_id: (2, 0, 0, 0), everyone_id: (4, 0, 0, 0)}

        records = sim.deliveries()
        assert {record["status"] for record in records} == {200}, records
        sms = [r for r in records if r["platform"] == "sms"]
        push = [r for r in records if r["platform"] != "sms"]
        by_message: dict[str | None, Counter] = defaultdict(Counter)
        for record in push:
            by_message[message_of(record)][(record["platform"], record["token"])] += 1
        token = {device_id: (by_id[device_id].gateway, by_id[device_id].token) for device_id in by_id}
        assert by_message[alice_id] == Counter([token["a1"], token["w1"]])
        assert by_message[everyone_id] == Counter([token["a1"], token["g1"], token["w1"], token["a2"]])
        assert by_message[gold_id] == Counter([token["a1"], token["g1"]])
        # Gold's WNS notifications carry its own launch argument: a toast and a badge for w1 only.
        assert by_message[None] == Counter({token["w1"]: 2})
        assert not [r for r in records if r["token"] == by_id["g2"].token]

        # APNs: the MobileFirst settings in the aps dictionary, the payload and nid at the top.
        [gold_ios] = [r for r in push if r["platform"] == "apns" and message_of(r) == gold_id]
        assert gold_ios["payload"] == {
            "aps": {"alert": {"body": "Gold sale", "title": "Gold"}, "sound": "gold.caf", "badge": 5},
            "custom": {"i": gold_id, "u": "https://shop.example/gold"},
            "nid": gold_id,
            "payload": {"sku": "G-1"},
        }
        assert (gold_ios["headers"]["apns-push-type"], gold_ios["headers"]["apns-topic"]) == ("alert", BUNDLE)
        assert Registration.objects.get(device_id="a1").player.badge_count == 5  # written back
        for record in push:
            if record["platform"] == "apns" and message_of(record) == everyone_id:
                assert record["payload"]["aps"] == {
                    "alert": {"body": "Hello everyone"},
                    "sound": "default",
                    "content-available": 1,
                }

        # FCM v1: priority, TTL, collapse key and style mapped; the IBM SDK's data keys.
        [gold_android] = [r for r in push if r["platform"] == "fcm" and message_of(r) == gold_id]
        message = gold_android["payload"]
        assert message["android"]["priority"] == "HIGH" and message["android"]["collapse_key"] == "gold"
        assert 590 <= int(message["android"]["ttl"].removesuffix("s")) <= 600
        assert message["android"]["notification"]["notification_priority"] == "PRIORITY_MAX"
        data = message["data"]
        assert json.loads(data["payload"]) == {"sku": "G-1", "nid": gold_id}
        assert json.loads(data["style"]) == {
            "type": "bigtext_notification",
            "text": "All gold items, half price",
        }
        assert (data["alert"], data["url"], data["priority"], data["key"]) == (
            "Gold sale",
            "https://shop.example/gold",
            "max",
            "gold",
        )
        assert message["notification"] == {"body": "Gold sale"}

        # WNS: Gold's own toast and badge; the others get the default toast with the alert.
        wns = [r for r in push if r["platform"] == "wns"]
        gold_wns = {r["headers"]["x-wns-type"]: r for r in wns if message_of(r) is None}
        toast = ET.fromstring(gold_wns["wns/toast"]["payload"]["xml"])  # noqa: S314 - our simulator's record
        assert toast.find("visual/binding").get("template") == "ToastText02"
        assert [t.text for t in toast.iter("text")] == ["Gold", "Gold sale"]
        assert json.loads(toast.get("launch")) == {"campaign": "gold"}
        assert gold_wns["wns/badge"]["payload"]["value"] == "5"
        for record in wns:
            if message_of(record) in (alice_id, everyone_id):
                assert record["headers"]["x-wns-type"] == "wns/toast"
                expected = "Hi Alice" if message_of(record) == alice_id else "Hello everyone"
                assert record["payload"]["texts"] == [expected]

        # SMS: notificationType 3 reached the phone g1 registered, with the alert.
        assert [(r["token"], r["payload"]["message"]) for r in sms] == [(PHONE, "Gold sale")]

        # 6. onMessageSent for each message, at the real receiver.
        requests_ = receiver.wait_for(3)
        events = {}
        for request in requests_:
            event = json.loads(request.body)
            assert (event["type"], event["applicationId"]) == ("onMessageSent", APPLICATION_ID)
            events[event["entity"]["messageId"]] = event["entity"]
        assert set(events) == {gold_id, alice_id, everyone_id}
        assert events[gold_id]["deviceCount"] == 4 and events[gold_id]["alert"] == "Gold sale"
        assert events[alice_id]["platforms"] == ["A", "W"]
        assert events[everyone_id]["platforms"] == ["A", "G", "W"]

    # ... and the messages are in the OneSignal notification history.
    history = herald.call("GET", f"/notifications?app_id={app.pk}")
    assert history.status == 200, history.body
    assert {n["id"] for n in history.body["notifications"]} == {gold_id, alice_id, everyone_id}
    assert all(not k.startswith("herald_") for n in history.body["notifications"] for k in n)

    # 7. Cross-API: OneSignal's POST /notifications reaches a device registered through MFP.
    sim.reset(keep_tokens=True)
    player_id = str(Registration.objects.get(device_id="g1").player_id)
    notification_id = herald.send(contents={"en": "From OneSignal"}, include_player_ids=[player_id])
    notification = herald.wait_completed(notification_id, worker)
    assert (notification["successful"], notification["failed"]) == (1, 0)
    [record] = sim.deliveries()
    assert (record["platform"], record["token"]) == ("fcm", by_id["g1"].token)
    assert json.loads(record["payload"]["data"]["custom"]) == {"i": notification_id}
    assert record["payload"]["notification"] == {"body": "From OneSignal"}
    # A OneSignal notification is readable through the MFP API as a message too.
    read = mfp.call("GET", f"apps/{APPLICATION_ID}/messages/{notification_id}")
    assert (read.status, read.body["alert"], read.body["successful"]) == (200, "From OneSignal", 1)
    assert call("GET", f"{live_server.url}/imfpush/v1/apps/{APPLICATION_ID}/messages/{gold_id}").status == 401
