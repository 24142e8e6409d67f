"""Web Push end to end: browsers' subscriptions registered through POST /players, one notification,
a real ``celery worker`` encrypting and signing for each push service, the simulator decrypting.

The simulator listens on 127.0.0.1, so this module allows 127.0.0.0/8
(``HERALD_ALLOWED_PRIVATE_NETWORKS``), in the worker's environment and in this process (the live
server). The SSRF tests turn the allow-list off in this process, or use addresses it never covers.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core import ssrf
from notifications.models import Delivery, DeliveryBatch, Notification
from notifications.providers.base import Outcome, Recipient, RenderedMessage
from notifications.providers.webpush import WebPushProvider
from players.models import Player
from tests.e2e.support import Answer, call, settle
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.e2e

CHROME, FIREFOX = 5, 8
ALLOWED = ["127.0.0.0/8"]
RETRY_BASE_MS = 200
COMPLETION_TIMEOUT = 60


@pytest.fixture(scope="module")
def worker_extra_env(sim) -> dict[str, str]:
    """Overrides conftest's: the worker trusts the simulator's CA and may reach 127.0.0.0/8."""
    return {
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_ALLOWED_PRIVATE_NETWORKS": ",".join(ALLOWED),
        "HERALD_RETRY_BASE_MS": str(RETRY_BASE_MS),
    }


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset()
    ssrf.clear_dns_cache()
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ALLOWED
    settings.HERALD_RETRY_BASE_SECONDS = RETRY_BASE_MS / 1000
    yield
    settle()


@dataclass
class Herald:
    root: str
    app_id: str
    key: str

    def call(self, method: str, path: str, body: Any = None, *, keyed: bool = True) -> Answer:
        return call(method, self.root + path, body, key=self.key if keyed else None)

    def public_key(self) -> str:
        """What the web SDK fetches before ``pushManager.subscribe`` (no key)."""
        answer = self.call("GET", f"/apps/{self.app_id}/web_push_public_key", keyed=False)
        assert answer.status == 200, answer.body
        return answer.body["vapid_public_key"]

    def register(self, device_type: int, subscription: dict) -> Answer:
        """POST /players as OneSignal's web SDK does: endpoint, auth and p256dh."""
        body = {
            "app_id": self.app_id,
            "device_type": device_type,
            "identifier": subscription["endpoint"],
            "web_auth": subscription["keys"]["auth"],
            "web_p256": subscription["keys"]["p256dh"],
            "language": "en",
        }
        return self.call("POST", "/players", body, keyed=False)

    def subscribe(self, sim: Simulator, device_type: int) -> tuple[str, dict]:
        """A browser subscribing with the app's key, then registering; returns (player id, subscription)."""
        subscription = sim.webpush_subscription(application_server_key=self.public_key())
        answer = self.register(device_type, subscription)
        assert answer.status == 200, answer.body
        return answer.body["id"], subscription

    def send(self, **fields) -> dict:
        answer = self.call("POST", "/notifications", {"app_id": self.app_id, **fields})
        assert answer.status == 200, answer.body
        assert answer.body["id"], answer.body
        return answer.body

    def wait_completed(self, notification_id: str, worker) -> dict:
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        while True:
            answer = self.call("GET", f"/notifications/{notification_id}?app_id={self.app_id}")
            assert answer.status == 200, answer.body
            if answer.body["completed_at"] is not None:
                return answer.body
            if worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{worker.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not completed: {answer.body}\n{worker.log_path.read_text()[-5000:]}")
            time.sleep(0.2)


@pytest.fixture
def herald(live_server, tenant) -> Herald:
    return Herald(f"{live_server.url}/api/v1", str(tenant.app.pk), tenant.app_key)


def pushes(sim: Simulator, endpoint: str) -> list[dict]:
    return sim.deliveries(endpoint, platform="webpush")


# --- delivery -----------------------------------------------------------------------------------


def test_chrome_and_firefox_players_get_the_decrypted_notification(herald, sim, worker):
    chrome_id, chrome = herald.subscribe(sim, CHROME)
    firefox_id, firefox = herald.subscribe(sim, FIREFOX)

    sent = herald.send(
        include_player_ids=[chrome_id, firefox_id],
        headings={"en": "Flash sale"},
        contents={"en": "Everything 50% off until midnight"},
        url="https://shop.example/sale",
        chrome_web_icon="https://cdn.example/icon.png",
        firefox_icon="https://cdn.example/firefox.png",
        chrome_web_image="https://cdn.example/banner.jpg",
        chrome_web_badge="https://cdn.example/badge.png",
        web_buttons=[
            {"id": "buy", "text": "Buy", "icon": "https://cdn.example/b.png", "url": "https://s.example/b"}
        ],
        data={"order": "42"},
        priority=10,
        ttl=600,
        web_push_topic="flash-sale",
    )
    notification = herald.wait_completed(sent["id"], worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (2, 0, 0)
    stats = notification["platform_delivery_stats"]
    assert stats["chrome_web_push"]["successful"] == 1
    assert stats["firefox_web_push"]["successful"] == 1
    common = {
        "title": "Flash sale",
        "alert": "Everything 50% off until midnight",
        "image": "https://cdn.example/banner.jpg",
        "badge": "https://cdn.example/badge.png",
        "o": [{"i": "buy", "n": "Buy", "p": "https://cdn.example/b.png", "u": "https://s.example/b"}],
        "custom": {"i": sent["id"], "u": "https://shop.example/sale", "a": {"order": "42"}},
    }
    for subscription, icon in ((chrome, "icon.png"), (firefox, "firefox.png")):
        [push] = pushes(sim, subscription["endpoint"])
        assert push["status"] == 201
        assert push["payload"] == {**common, "icon": f"https://cdn.example/{icon}"}
        headers = push["headers"]
        assert 550 <= int(headers["ttl"]) <= 600
        assert headers["urgency"] == "high"
        assert headers["topic"] == "flash-sale"
        assert headers["content-encoding"] == "aes128gcm"
        assert headers["authorization"] == "vapid [redacted]"
    assert sim.stats()["webpush"] == {"received": 2, "accepted": 2, "rejected": 0, "duplicates": 0}


def test_defaults_normal_urgency_the_site_name_as_title_and_the_web_url(herald, sim, worker, tenant):
    tenant.app.site_name = "Shop"
    tenant.app.save(update_fields=["site_name"])
    player_id, subscription = herald.subscribe(sim, CHROME)

    sent = herald.send(
        include_player_ids=[player_id],
        contents={"en": "Hi"},
        url="https://app.example/deep",
        web_url="https://shop.example/web",
    )
    herald.wait_completed(sent["id"], worker)

    [push] = pushes(sim, subscription["endpoint"])
    assert push["payload"] == {
        "title": "Shop",
        "alert": "Hi",
        "custom": {"i": sent["id"], "u": "https://shop.example/web"},
    }
    assert push["headers"]["urgency"] == "normal"
    assert "topic" not in push["headers"]


def test_endpoints_of_several_origins_are_sent_concurrently_each_with_its_own_vapid_aud(herald, sim, worker):
    """The same simulator reached as 127.0.0.1 and as localhost: two origins, so two VAPID JWTs
    (the simulator checks ``aud`` against the Host it was reached by), and localhost's connection
    pinned to the address the SSRF check resolved."""
    if {info[4][0] for info in socket.getaddrinfo("localhost", 443, type=socket.SOCK_STREAM)} != {
        "127.0.0.1"
    }:
        pytest.skip("localhost resolves outside 127.0.0.0/8 here")
    key = herald.public_key()
    by_ip = sim.webpush_subscriptions(3, application_server_key=key)
    by_name = [
        {**s, "endpoint": s["endpoint"].replace("://127.0.0.1:", "://localhost:")}
        for s in sim.webpush_subscriptions(3, application_server_key=key)
    ]
    ids = []
    for subscription in by_ip + by_name:
        answer = herald.register(CHROME, subscription)
        assert answer.status == 200, answer.body
        ids.append(answer.body["id"])

    sent = herald.send(include_player_ids=ids, contents={"en": "Hi"})
    notification = herald.wait_completed(sent["id"], worker)

    assert notification["successful"] == 6
    hosts = [d["headers"]["host"].split(":")[0] for d in sim.deliveries(platform="webpush")]
    assert sorted(hosts) == ["127.0.0.1"] * 3 + ["localhost"] * 3
    assert all(d["status"] == 201 and d["payload"]["custom"]["i"] == sent["id"] for d in sim.deliveries())


def test_gone_and_not_found_unsubscribe_the_player_with_the_reason(herald, sim, worker):
    gone_id, gone = herald.subscribe(sim, CHROME)
    missing_id, missing = herald.subscribe(sim, FIREFOX)
    fine_id, _fine = herald.subscribe(sim, CHROME)
    sim.expire_webpush(gone["endpoint"])
    sim.faults("webpush", token_errors={missing["endpoint"]: "NotFound"})

    sent = herald.send(include_player_ids=[gone_id, missing_id, fine_id], contents={"en": "Hi"})
    notification = herald.wait_completed(sent["id"], worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 2, 0)
    for player_id, reason in ((gone_id, "Gone"), (missing_id, "NotFound")):
        player = Player.objects.get(pk=player_id)
        assert (player.invalid_identifier, player.notification_types, player.unsubscribed_reason) == (
            True,
            -2,
            reason,
        )
        shown = herald.call("GET", f"/players/{player_id}?app_id={herald.app_id}").body
        assert shown["invalid_identifier"] is True and shown["notification_types"] == -2
    assert Player.objects.get(pk=fine_id).invalid_identifier is False
    assert [p["status"] for p in pushes(sim, gone["endpoint"])] == [410]

    # Never sent to again.
    again = herald.send(included_segments=["Subscribed Users"], contents={"en": "Again"})
    assert again["recipients"] == 1
    herald.wait_completed(again["id"], worker)
    assert [p["status"] for p in pushes(sim, gone["endpoint"])] == [410]


def test_429_with_retry_after_is_retried_after_that_long_then_delivered(herald, sim, worker):
    player_id, subscription = herald.subscribe(sim, CHROME)
    sim.faults("webpush", fail_first={"TooManyRequests": 1}, retry_after=2)

    sent = herald.send(include_player_ids=[player_id], contents={"en": "Hi"})
    notification = herald.wait_completed(sent["id"], worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 0, 0)
    first, second = pushes(sim, subscription["endpoint"])
    assert (first["status"], second["status"]) == (429, 201)
    assert second["received_at"] - first["received_at"] >= 1.8
    assert second["payload"]["custom"]["i"] == sent["id"]
    assert DeliveryBatch.objects.get(notification_id=sent["id"]).attempts == 2


def test_server_errors_are_retried_and_a_413_is_an_error(herald, sim, worker):
    player_id, subscription = herald.subscribe(sim, FIREFOX)
    sim.faults("webpush", fail_first={"ServiceUnavailable": 1, "InternalServerError": 1})
    sent = herald.send(include_player_ids=[player_id], contents={"en": "Hi"})
    assert herald.wait_completed(sent["id"], worker)["successful"] == 1
    assert [p["status"] for p in pushes(sim, subscription["endpoint"])] == [503, 500, 201]

    sim.faults("webpush", fail_first={"PayloadTooLarge": 1})
    sent = herald.send(include_player_ids=[player_id], contents={"en": "Hi again"})
    notification = herald.wait_completed(sent["id"], worker)
    assert (notification["successful"], notification["errored"]) == (0, 1)
    assert Delivery.objects.get(notification_id=sent["id"]).error == "PayloadTooLarge"
    assert Player.objects.get(pk=player_id).invalid_identifier is False


# --- SSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    ["https://127.0.0.1:9/push/x", "https://10.1.2.3/push/x", "https://169.254.169.254/latest/meta-data"],
)
def test_without_the_allow_list_private_endpoints_cannot_register(herald, sim, settings, endpoint):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    subscription = {"endpoint": endpoint, "keys": sim.webpush_subscription()["keys"]}

    answer = herald.register(CHROME, subscription)

    assert answer.status == 400
    assert "must not point at a non-public address" in answer.body["errors"][0]
    assert not Player.objects.exists()


def test_the_allow_list_covers_only_the_listed_networks(herald, sim):
    assert herald.register(CHROME, sim.webpush_subscription()).status == 200
    for endpoint in ("https://10.1.2.3/push/x", "https://169.254.169.254/push/x"):
        answer = herald.register(FIREFOX, {"endpoint": endpoint, "keys": {"auth": "a", "p256dh": "b"}})
        assert answer.status == 400, answer.body


def test_the_worker_refuses_private_endpoints_stored_before_the_checks(herald, sim, worker, tenant):
    """Endpoints that got into the database some other way (an import, an older Herald) are checked
    again when sent: nothing is sent to them, and they are errored, not unsubscribed."""
    keys = sim.webpush_subscription()["keys"]
    smuggled = [
        Player.objects.create(
            app=tenant.app,
            device_type=CHROME,
            identifier=endpoint,
            web_auth=keys["auth"],
            web_p256=keys["p256dh"],
        )
        for endpoint in (
            "https://10.1.2.3/push/x",
            "https://169.254.169.254/push/y",
            "https://[::1]:9/push/z",
        )
    ]
    _fine_id, fine = herald.subscribe(sim, CHROME)

    sent = herald.send(included_segments=["Subscribed Users"], contents={"en": "Hi"})
    notification = herald.wait_completed(sent["id"], worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 0, 3)
    errors = dict(Delivery.objects.filter(notification_id=sent["id"]).values_list("player_id", "error"))
    assert {errors[p.pk] for p in smuggled} == {"UnsafeEndpoint"}
    assert Player.objects.filter(pk__in=[p.pk for p in smuggled], invalid_identifier=False).count() == 3
    assert sim.stats()["webpush"]["received"] == 1
    assert len(pushes(sim, fine["endpoint"])) == 1


def test_without_the_allow_list_the_provider_never_connects_to_loopback(herald, sim, settings, tenant):
    """The provider itself (in this process, no allow-list) refuses the simulator's 127.0.0.1."""
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    subscription = sim.webpush_subscription()
    recipient = Recipient(
        player_id=uuid.uuid4(),
        device_type=CHROME,
        identifier=subscription["endpoint"],
        language="en",
        tags={},
        web_auth=subscription["keys"]["auth"],
        web_p256=subscription["keys"]["p256dh"],
    )
    message = RenderedMessage(str(uuid.uuid4()), "T", "C", None, {"contents": {"en": "C"}}, 60)

    [result] = WebPushProvider(tenant.app).send([(recipient, message)])

    assert (result.outcome, result.reason) == (Outcome.ERROR, "UnsafeEndpoint")
    assert sim.stats()["webpush"]["received"] == 0

    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ALLOWED
    ssrf.clear_dns_cache()
    [result] = WebPushProvider(tenant.app).send([(recipient, message)])
    assert result.outcome is Outcome.SENT
    assert sim.stats()["webpush"]["accepted"] == 1


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("chrome_web_image", "https://127.0.0.1/banner.png"),
        ("chrome_web_icon", "http://10.1.2.3/icon.png"),
        ("big_picture", "http://169.254.169.254/latest/meta-data/iam"),
    ],
)
def test_image_urls_pointing_at_private_addresses_are_refused(herald, sim, settings, field, url):
    herald.subscribe(sim, CHROME)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []

    answer = herald.call(
        "POST",
        "/notifications",
        {"app_id": herald.app_id, "included_segments": ["All"], "contents": {"en": "x"}, field: url},
    )

    assert answer.status == 400
    assert answer.body["errors"][0].startswith(f"{field} must not point at a non-public address")
    assert not Notification.objects.exists()
