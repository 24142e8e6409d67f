"""Webhooks end to end: both APIs configure webhooks over HTTP, a notification goes through a real
worker to the FCM simulator, and real HTTP receivers (sockets in this process) get the signed
events, one of them only after failing twice, so the worker's retries with backoff are real too.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator

import pytest

from imfpush.clients import confidential_client_create
from players.models import Player
from tests.e2e.support import LOOPBACK, HeraldApi, call, settle
from tests.webhooks.receiver import Received, running_receiver
from webhooks.delivery import verify_signature
from webhooks.models import Webhook, WebhookCall

pytestmark = pytest.mark.e2e

PROJECT_ID = "herald-webhooks"
ANDROID = 1
RECEIVER_SECRET = "receiver-secret-" + "x" * 16


@pytest.fixture(scope="module")
def worker_extra_env(sim) -> dict[str, str]:
    """The worker sends to the simulator and may call receivers on loopback, retrying fast."""
    return {
        "HERALD_FCM_BASE_URL": sim.fcm_url,
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_ALLOWED_PRIVATE_NETWORKS": LOOPBACK,
        "HERALD_RETRY_BASE_MS": "200",
        "HERALD_WEBHOOK_RETRY_BASE_MS": "200",
    }


@pytest.fixture(autouse=True)
def configured(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset()
    settings.HERALD_FCM_BASE_URL = sim.fcm_url
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = [LOOPBACK]  # the API checks receiver URLs too
    yield
    settle()


def mfp_token(live_server, tenant, scope: str) -> str:
    """A client-credentials token from the live server's /mfp/api/az/v1/token."""
    client_id = f"e2e-{secrets.token_hex(4)}"
    _client, secret = confidential_client_create(organization=tenant.organization, client_id=client_id)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
    request = urllib.request.Request(f"{live_server.url}/mfp/api/az/v1/token", data=form, method="POST")  # noqa: S310
    request.add_header(
        "Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the live server
        return json.loads(answer.read())["access_token"]


def mfp_post(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the live server
        return answer.status, json.loads(answer.read())


def by_delivery(requests: list[Received]) -> dict[str, list[Received]]:
    grouped: dict[str, list[Received]] = defaultdict(list)
    for request in requests:
        grouped[request.headers["x-herald-delivery"]].append(request)
    return grouped


def wait_all_delivered(timeout: float = 20.0) -> list[WebhookCall]:
    deadline = time.monotonic() + timeout
    while True:
        calls = list(WebhookCall.objects.order_by("id"))
        if calls and all(call.status == WebhookCall.Status.DELIVERED for call in calls):
            return calls
        if time.monotonic() > deadline:
            pytest.fail(
                f"webhook calls not delivered: {[(c.event_type, c.status, c.last_error) for c in calls]}"
            )
        time.sleep(0.1)


def test_receivers_get_signed_events_from_both_apis_through_the_worker(live_server, tenant, sim, worker):
    herald = HeraldApi(f"{live_server.url}/api/v1", str(tenant.app.id), tenant.app_key, tenant.user_key)
    with running_receiver(statuses=[503, 503]) as onesignal_rx, running_receiver() as mfp_rx:
        # The OneSignal side: PUT /apps/{id} with the receiver (which fails twice) and its secret.
        answer = herald.configure(
            {
                "fcm_v1_service_account_json": sim.fcm_service_account(PROJECT_ID),
                "webhooks": [
                    {
                        "url": onesignal_rx.url,
                        "events": ["notification.sent", "player.unsubscribed"],
                        "secret": RECEIVER_SECRET,
                    }
                ],
            }
        )
        assert answer.status == 200, answer.body
        assert answer.body["webhooks"] == [
            {"url": onesignal_rx.url, "events": ["notification.sent", "player.unsubscribed"]}
        ]
        # The MobileFirst side: POST /imfpush/v1/apps/{app}/webhooks with an OAuth token.
        application_id = str(tenant.app.id)  # an App without a MobileFirst id is addressed by its UUID
        token = mfp_token(live_server, tenant, f"webhooks.write push.application.{application_id}")
        status, created = mfp_post(
            f"{live_server.url}/imfpush/v1/apps/{application_id}/webhooks",
            {"eventTypes": ["onMessageSent", "onNotificationStatusChange"], "name": "ops", "url": mfp_rx.url},
            token,
        )
        assert status == 201 and created["eventTypes"] == "onMessageSent,onNotificationStatusChange"

        tokens = [f"fcm:{secrets.token_urlsafe(48)}" for _ in range(3)]
        players = [herald.register(ANDROID, identifier) for identifier in tokens]
        sim.faults(token_errors={tokens[2]: "UNREGISTERED"})
        notification_id = herald.send(
            contents={"en": "Webhook hello"}, included_segments=["Subscribed Users"]
        )
        notification = herald.wait_completed(notification_id, worker=worker)
        assert (notification["successful"], notification["failed"]) == (2, 1)

        onesignal_requests = onesignal_rx.wait_for(2 + 2)  # two events, the first two attempts refused
        mfp_requests = mfp_rx.wait_for(2)
        calls = wait_all_delivered()

    # Every request is a signed JSON POST; a retried event is the same delivery, byte for byte.
    onesignal_hook = Webhook.objects.get(source="onesignal")
    assert onesignal_hook.secret == RECEIVER_SECRET
    for request in onesignal_requests:
        assert request.headers["content-type"] == "application/json"
        assert verify_signature(RECEIVER_SECRET, request.headers["x-herald-signature"], request.body)
    grouped = by_delivery(onesignal_requests)
    assert sorted(len(attempts) for attempts in grouped.values()) in ([1, 3], [2, 2])
    assert all(len({a.body for a in attempts}) == 1 for attempts in grouped.values())
    events = {
        json.loads(attempts[0].body)["event"]: json.loads(attempts[0].body) for attempts in grouped.values()
    }
    assert set(events) == {"notification.sent", "player.unsubscribed"}
    sent = events["notification.sent"]
    assert sent["app_id"] == str(tenant.app.id)
    assert sent["data"]["notification_id"] == notification_id
    assert sorted(sent["data"]["player_ids"]) == sorted(players[:2])
    assert events["player.unsubscribed"]["data"] == {
        "device_type": ANDROID,
        "player_id": players[2],
        "reason": "UNREGISTERED",
    }
    assert Player.objects.get(pk=players[2]).notification_types == -2

    mfp_hook = Webhook.objects.get(source="mfp")
    mfp_events = {}
    for request in mfp_requests:
        assert verify_signature(mfp_hook.secret, request.headers["x-herald-signature"], request.body)
        body = json.loads(request.body)
        assert set(body) == {"applicationId", "entity", "eventTimeStamp", "type"}
        assert body["applicationId"] == application_id
        mfp_events[body["type"]] = body["entity"]
    assert mfp_events["onMessageSent"] == {
        "alert": "Webhook hello",
        "deviceCount": 2,
        "messageId": notification_id,
        "msgStatus": "SENT",
        "platforms": ["G"],
    }
    status_change = mfp_events["onNotificationStatusChange"]
    assert (status_change["msgStatus"], status_change["platform"]) == ("SENT", "G")
    assert sorted(status_change["deviceIds"]) == sorted(players[:2])  # OneSignal players: their ids

    # The log: the OneSignal calls took 4 attempts in all, the MFP ones one each.
    attempts = {(c.webhook.source, c.event_type): c.attempts for c in calls}
    assert sum(n for (source, _), n in attempts.items() if source == "onesignal") == 4
    assert all(n == 1 for (source, _), n in attempts.items() if source == "mfp")
    assert call("GET", f"{live_server.url}/api/v1/apps/{tenant.app.id}", key=tenant.user_key).body["webhooks"]
