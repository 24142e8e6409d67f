"""Safari (device type 7) end to end: HTTP -> fan-out -> a real Celery worker -> one simulator
process speaking APNs and Web Push.

Safari 16+ browsers subscribe with standard Web Push (their identifier is the endpoint), older
macOS Safari registered through a push package and holds a legacy APNs token (64 hex characters).
The operator uploads the Safari Website Push ID certificate through ``PUT /apps/{id}``; the worker
sends legacy tokens to APNs with it (topic ``web.…``) and subscriptions to the push service with
the app's VAPID key. Each test compares what the simulator recorded, token by token, with the
players it registered through ``POST /players``, and the counters Herald reports with those records.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator

import pytest

from notifications.models import Delivery
from players.models import Player
from tests.e2e.support import HeraldApi, every_gateway_env, settle, use_every_gateway
from tests.gatewaysim.simulator import Simulator
from tests.notifications.test_apns_provider import p12_for

pytestmark = pytest.mark.e2e

IOS, SAFARI = 0, 7
BUNDLE = "com.example.herald"
WEBSITE_PUSH_ID = "web.com.example.herald"
SAFARI_PASSWORD = "e2e-safari-p12-password"
NOT_CONFIGURED = "Safari legacy push: the app has no safari_apns_p12"


@pytest.fixture(scope="module")
def apns_key(sim) -> tuple[str, str, str]:
    """The iOS app's .p8, for its bundle only: Safari's sends must not use it."""
    return sim.apns_key(topics=[BUNDLE])


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    """Overrides conftest's: the worker sends APNs and Web Push to the simulator."""
    return every_gateway_env(sim, public_url=live_server.url)


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)
    use_every_gateway(settings, sim)
    yield
    settle()


@pytest.fixture
def herald(live_server, tenant, apns_key) -> HeraldApi:
    """The tenant's app with its iOS .p8; Safari's certificate is up to each test."""
    api = HeraldApi(f"{live_server.url}/api/v1", str(tenant.app.pk), tenant.app_key, tenant.user_key)
    key_id, team_id, p8 = apns_key
    answer = api.configure(
        {
            "apns_env": "production",
            "apns_key_id": key_id,
            "apns_team_id": team_id,
            "apns_p8": p8,
            "apns_bundle_id": BUNDLE,
            "site_name": "Example News",
        }
    )
    assert answer.status == 200, answer.body
    return api


def with_safari_certificate(herald: HeraldApi, sim: Simulator) -> None:
    p12 = p12_for(sim, WEBSITE_PUSH_ID, SAFARI_PASSWORD)
    answer = herald.configure({"safari_apns_p12": p12, "safari_apns_p12_password": SAFARI_PASSWORD})
    assert answer.status == 200, answer.body
    assert answer.body["safari_push_id"] == WEBSITE_PUSH_ID
    assert p12 not in answer.text and SAFARI_PASSWORD not in answer.text


def legacy_tokens(count: int) -> list[str]:
    return [secrets.token_hex(32).upper() for _ in range(count)]  # as Safari's permissionData gives


def accepted_once(records: list[dict]) -> Counter:
    return Counter(d["token"] for d in records if d["status"] < 300)


def test_each_safari_player_gets_one_notification_through_its_own_gateway(herald, sim, worker):
    with_safari_certificate(herald, sim)
    modern = dict(herald.subscribe_web(sim, SAFARI) for _ in range(2))  # player id -> subscription
    legacy = {herald.register(SAFARI, token): token for token in legacy_tokens(3)}
    iphone = secrets.token_hex(32)
    herald.register(IOS, iphone)

    notification_id = herald.send(
        included_segments=["Subscribed Users"],
        headings={"en": "Herald"},
        contents={"en": "Issue 7 is out"},
        url="https://example.com/news/7?from=push",
    )
    notification = herald.wait_completed(notification_id, worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (6, 0, 0)
    stats = notification["platform_delivery_stats"]
    assert stats["safari_web_push"]["successful"] == 5 and stats["ios"]["successful"] == 1
    apns = sim.deliveries(platform="apns")
    assert accepted_once(apns) == Counter({**{token: 1 for token in legacy.values()}, iphone: 1})
    for record in apns:
        if record["token"] == iphone:
            assert record["headers"]["apns-topic"] == BUNDLE
            assert record["headers"]["x-sim-auth"] == "token"
            continue
        # Legacy Safari: the Website Push ID certificate, its topic, Apple's website payload.
        assert record["headers"]["apns-topic"] == WEBSITE_PUSH_ID
        assert record["headers"]["x-sim-auth"] == "certificate"
        assert record["headers"]["apns-push-type"] == "alert"
        assert record["payload"]["aps"] == {
            "alert": {"title": "Herald", "body": "Issue 7 is out"},
            "url-args": ["news/7?from=push"],
        }
        assert record["payload"]["custom"] == {"i": notification_id}
    webpush = sim.deliveries(platform="webpush")
    endpoints = {subscription["endpoint"] for subscription in modern.values()}
    assert accepted_once(webpush) == Counter({endpoint: 1 for endpoint in endpoints})
    for record in webpush:  # what the browser decrypts
        assert (record["payload"]["title"], record["payload"]["alert"]) == ("Herald", "Issue 7 is out")
        assert record["payload"]["custom"] == {
            "i": notification_id,
            "u": "https://example.com/news/7?from=push",
        }
    rows = Delivery.objects.filter(notification_id=notification_id, player__device_type=SAFARI)
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_without_the_safari_certificate_legacy_players_end_errored_with_the_reason(herald, sim, worker):
    modern_id, subscription = herald.subscribe_web(sim, SAFARI)
    legacy = {herald.register(SAFARI, token): token for token in legacy_tokens(2)}

    notification_id = herald.send(
        included_segments=["Subscribed Users"], contents={"en": "Hi"}, isSafari=True
    )
    notification = herald.wait_completed(notification_id, worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 0, 2)
    assert notification["platform_delivery_stats"]["safari_web_push"]["errored"] == 2
    assert sim.deliveries(platform="apns") == []
    assert accepted_once(sim.deliveries(platform="webpush")) == Counter({subscription["endpoint"]: 1})
    errors = dict(Delivery.objects.filter(notification_id=notification_id).values_list("player_id", "error"))
    assert {str(player_id): error for player_id, error in errors.items()} == {
        modern_id: "",
        **{player_id: NOT_CONFIGURED for player_id in legacy},
    }
    # Not the players' fault: they stay subscribed for when the certificate is uploaded.
    assert set(Player.objects.filter(pk__in=legacy).values_list("notification_types", flat=True)) == {1}


def test_an_unregistered_legacy_token_unsubscribes_its_player(herald, sim, worker):
    with_safari_certificate(herald, sim)
    live, gone = legacy_tokens(2)
    players = {herald.register(SAFARI, token): token for token in (live, gone)}
    sim.faults("apns", token_errors={gone: "Unregistered"})

    notification_id = herald.send(
        included_segments=["Subscribed Users"], contents={"en": "Hi"}, isSafari=True
    )
    notification = herald.wait_completed(notification_id, worker)

    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 1, 0)
    assert notification["platform_delivery_stats"]["safari_web_push"]["failed"] == 1
    [gone_id] = [player_id for player_id, token in players.items() if token == gone]
    player = herald.call("GET", f"/players/{gone_id}?app_id={herald.app_id}")
    assert player.status == 200
    assert (player.body["invalid_identifier"], player.body["notification_types"]) == (True, -2)
    assert Player.objects.get(pk=gone_id).unsubscribed_reason == "Unregistered"
