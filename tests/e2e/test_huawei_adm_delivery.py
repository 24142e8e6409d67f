"""Huawei Push Kit and Amazon Device Messaging end to end: HTTP -> fan-out -> a real Celery worker
-> the real simulators.

The app gets its Huawei and ADM credentials through ``PUT /apps/{id}`` (User key), and the
simulators check them (``register_hms_app``, ``register_adm_client``). The module's worker takes
its access tokens from the simulators' OAuth endpoints and sends to their APIs
(``HERALD_HMS_*``, ``HERALD_ADM_*``). Each test compares what the simulator recorded, token by
token, with the players it created, and the notification's counters and delivery rows with those
records.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from notifications.models import Delivery, DeliveryBatch
from players.models import Player
from tests.e2e.support import call as http
from tests.e2e.support import settle
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.e2e

HUAWEI, AMAZON = 13, 2
PLATFORM = {HUAWEI: "hms", AMAZON: "adm"}
FLAG = {HUAWEI: "isHuawei", AMAZON: "isAdm"}
PIPELINE = {
    "HERALD_BATCH_SIZE": 10,
    "HERALD_FANOUT_CHUNK": 50,
    "HERALD_MAX_DELIVERY_ATTEMPTS": 6,
    "HERALD_BATCH_LEASE_SECONDS": 60,
}
RETRY_BASE_MS = 200
COMPLETION_TIMEOUT = 90
HMS_SECRET = "e2e-huawei-app-secret"
ADM_SECRET = "e2e-adm-client-secret"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker_extra_env(sim) -> dict[str, str]:
    """Overrides conftest's: the worker gets its tokens from, and sends to, the simulators."""
    return {
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_HMS_TOKEN_URL": sim.hms_token_url,
        "HERALD_HMS_BASE_URL": sim.hms_url,
        "HERALD_ADM_TOKEN_URL": sim.adm_token_url,
        "HERALD_ADM_BASE_URL": sim.adm_url,
        "HERALD_RETRY_BASE_MS": str(RETRY_BASE_MS),
        **{name: str(value) for name, value in PIPELINE.items()},
    }


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)  # the worker's cached access tokens stay valid across tests
    settings.HERALD_RETRY_BASE_SECONDS = RETRY_BASE_MS / 1000
    for name, value in PIPELINE.items():
        setattr(settings, name, value)
    yield
    settle()


@dataclass
class Herald:
    root: str
    app_id: str
    app_key: str

    def send(self, **fields) -> str:
        response = http(
            "POST", f"{self.root}/notifications", {"app_id": self.app_id, **fields}, key=self.app_key
        )
        assert response.status == 200 and response.body["id"], response.body
        return response.body["id"]

    def wait_completed(self, notification_id: str, worker) -> dict:
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        while True:
            response = http(
                "GET", f"{self.root}/notifications/{notification_id}?app_id={self.app_id}", key=self.app_key
            )
            assert response.status == 200, response.body
            if response.body["completed_at"] is not None:
                return response.body
            if worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{worker.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"not completed after {COMPLETION_TIMEOUT}s: {response.body}\n"
                    f"{worker.log_path.read_text()[-5000:]}"
                )
            time.sleep(0.25)


@pytest.fixture
def herald(live_server, tenant, sim) -> Herald:
    """The tenant's app given Huawei and ADM credentials through PUT /apps/{id}, as an operator would."""
    root = f"{live_server.url}/api/v1"
    huawei_app_id = str(10**8 + tenant.app.pk.int % 10**8)
    adm_client_id = f"amzn1.application-oa2-client.{tenant.app.pk.hex}"
    sim.register_hms_app(huawei_app_id, HMS_SECRET)
    sim.register_adm_client(adm_client_id, ADM_SECRET)
    credentials = {
        "huawei_app_id": huawei_app_id,
        "huawei_app_secret": HMS_SECRET,
        "adm_client_id": adm_client_id,
        "adm_client_secret": ADM_SECRET,
    }
    response = http("PUT", f"{root}/apps/{tenant.app.pk}", credentials, key=tenant.user_key)
    assert response.status == 200, response.body
    assert HMS_SECRET not in response.text and ADM_SECRET not in response.text
    return Herald(root, str(tenant.app.pk), tenant.app_key)


def make_players(app_id: str, device_type: int, identifiers: list[str], **fields) -> list[Player]:
    return Player.objects.bulk_create(
        [Player(app_id=app_id, device_type=device_type, identifier=i, **fields) for i in identifiers]
    )


def identifiers_for(sim: Simulator, device_type: int, count: int, prefix: str = "hms") -> list[str]:
    if device_type == AMAZON:
        return sim.adm_registration_ids(count)
    return [f"{prefix}-token-{i:03d}-AFcSAHhhnxdrMCYBxth2QOG9IgY2" for i in range(count)]


def accepted_once(records: list[dict]) -> Counter:
    return Counter(d["token"] for d in records if d["status"] < 300)


def assert_counts(notification: dict, *, successful: int, failed: int = 0, errored: int = 0) -> None:
    assert notification["completed_at"] is not None and notification["remaining"] == 0
    assert (notification["successful"], notification["failed"], notification["errored"]) == (
        successful,
        failed,
        errored,
    )


def delivery_rows(notification_id: str) -> dict[str, tuple[int, str]]:
    rows = Delivery.objects.filter(notification_id=notification_id)
    return {
        identifier: (status, error)
        for identifier, status, error in rows.values_list("player__identifier", "status", "error")
    }


# --- success --------------------------------------------------------------------------------------


def test_huawei_players_get_one_push_kit_notification_each(herald, sim, worker):
    tokens = identifiers_for(sim, HUAWEI, 12)
    make_players(herald.app_id, HUAWEI, tokens)
    make_players(herald.app_id, AMAZON, sim.adm_registration_ids(2))  # not targeted: isHuawei only
    notification_id = herald.send(
        included_segments=["Subscribed Users"],
        isHuawei=True,
        headings={"en": "Herald"},
        contents={"en": "Your order shipped"},
        url="https://example.com/orders/1",
        huawei_channel_id="orders",
        collapse_id="order-1",
    )
    notification = herald.wait_completed(notification_id, worker)
    assert_counts(notification, successful=12)
    assert notification["platform_delivery_stats"]["android"]["successful"] == 12

    records = sim.deliveries(platform="hms")
    assert accepted_once(records) == Counter({token: 1 for token in tokens})
    assert sim.deliveries(platform="adm") == []
    # Ten tokens per batch, and one Push Kit request per batch: two requests in all.
    assert sorted(Counter(d["received_at"] for d in records).values()) == [2, 10]
    payload = records[0]["payload"]
    notification_payload = payload["android"]["notification"]
    assert notification_payload["title"] == "Herald" and notification_payload["body"] == "Your order shipped"
    assert notification_payload["click_action"] == {"type": 3}
    assert notification_payload["channel_id"] == "orders" and notification_payload["tag"] == "order-1"
    custom = json.loads(json.loads(payload["data"])["custom"])
    assert custom == {"i": notification_id, "u": "https://example.com/orders/1"}
    assert {status for status, _ in delivery_rows(notification_id).values()} == {Delivery.Status.SENT}


def test_fire_players_get_one_adm_message_each(herald, sim, worker):
    registration_ids = identifiers_for(sim, AMAZON, 6)
    make_players(herald.app_id, AMAZON, registration_ids, language="fr")
    notification_id = herald.send(
        include_amazon_reg_ids=registration_ids,
        headings={"en": "Herald", "fr": "Herald FR"},
        contents={"en": "Your order shipped", "fr": "Votre commande est partie"},
        data={"order": 1},
        collapse_id="orders",
        adm_sound="ding",
    )
    assert_counts(herald.wait_completed(notification_id, worker), successful=6)
    records = sim.deliveries(platform="adm")
    assert accepted_once(records) == Counter({rid: 1 for rid in registration_ids})
    payload = records[0]["payload"]
    assert payload["consolidationKey"] == "orders" and 60 <= payload["expiresAfter"] <= 259_200
    data = payload["data"]
    assert (data["title"], data["alert"], data["sound"]) == ("Herald FR", "Votre commande est partie", "ding")
    assert json.loads(data["custom"]) == {"i": notification_id, "a": {"order": 1}}
    assert records[0]["headers"]["x-amzn-type-version"] == "com.amazon.device.messaging.ADMMessage@1.0"


# --- permanent errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [HUAWEI, AMAZON])
def test_a_dead_token_unsubscribes_the_player_and_is_never_retried(herald, sim, worker, device_type):
    identifiers = identifiers_for(sim, device_type, 5, prefix="perm")
    dead = identifiers[2]
    if device_type == HUAWEI:
        sim.invalidate_hms_tokens(dead)  # Push Kit answers 80100000 with it in illegal_tokens
        reason = "InvalidToken"
    else:
        sim.unregister_adm(dead)  # ADM answers 410 Unregistered
        reason = "Unregistered"
    players = {p.identifier: p for p in make_players(herald.app_id, device_type, identifiers)}
    notification_id = herald.send(
        included_segments=["Subscribed Users"], contents={"en": "Hello"}, **{FLAG[device_type]: True}
    )
    assert_counts(herald.wait_completed(notification_id, worker), successful=4, failed=1)

    records = sim.deliveries(platform=PLATFORM[device_type])
    assert accepted_once(records) == Counter({i: 1 for i in identifiers if i != dead})
    assert [d["status"] for d in records if d["token"] == dead] == [400 if device_type == HUAWEI else 410]
    gone = Player.objects.get(pk=players[dead].pk)
    assert (gone.invalid_identifier, gone.notification_types, gone.unsubscribed_reason) == (True, -2, reason)
    assert delivery_rows(notification_id)[dead] == (Delivery.Status.FAILED, reason)
    assert Player.objects.filter(app_id=herald.app_id, notification_types=1).count() == 4
    # The player API shows it, as OneSignal's does.
    player = http("GET", f"{herald.root}/players/{gone.pk}?app_id={herald.app_id}", key=herald.app_key)
    assert player.status == 200 and player.body["invalid_identifier"] is True
    assert player.body["notification_types"] == -2

    # The next notification does not try it again.
    sim.reset(keep_tokens=True)
    again = herald.send(
        included_segments=["Subscribed Users"], contents={"en": "Again"}, **{FLAG[device_type]: True}
    )
    assert_counts(herald.wait_completed(again, worker), successful=4)
    assert dead not in {d["token"] for d in sim.deliveries(platform=PLATFORM[device_type])}


def test_an_invalid_adm_registration_id_unsubscribes_with_its_reason(herald, sim, worker):
    [good] = sim.adm_registration_ids(1)
    bad = "not-an-adm-registration-id"
    players = {p.identifier: p for p in make_players(herald.app_id, AMAZON, [good, bad])}
    notification_id = herald.send(
        include_player_ids=[str(p.pk) for p in players.values()], contents={"en": "Hi"}
    )
    assert_counts(herald.wait_completed(notification_id, worker), successful=1, failed=1)
    gone = Player.objects.get(pk=players[bad].pk)
    assert (gone.invalid_identifier, gone.notification_types, gone.unsubscribed_reason) == (
        True,
        -2,
        "InvalidRegistrationId",
    )


# --- canonical registration ids -------------------------------------------------------------------


def test_adms_canonical_registration_id_becomes_the_players_identifier(herald, sim, worker):
    rotated, kept = sim.adm_registration_ids(2)
    players = {p.identifier: p for p in make_players(herald.app_id, AMAZON, [rotated, kept])}
    canonical = sim.rotate_adm(rotated)[rotated]  # ADM answers this id for messages to `rotated`

    first = herald.send(included_segments=["Subscribed Users"], contents={"en": "One"}, isAdm=True)
    assert_counts(herald.wait_completed(first, worker), successful=2)
    assert accepted_once(sim.deliveries(platform="adm")) == Counter({rotated: 1, kept: 1})

    moved = Player.objects.get(pk=players[rotated].pk)
    assert (moved.identifier, moved.notification_types, moved.invalid_identifier) == (canonical, 1, False)
    assert Player.objects.get(pk=players[kept].pk).identifier == kept
    player = http("GET", f"{herald.root}/players/{moved.pk}?app_id={herald.app_id}", key=herald.app_key)
    assert player.status == 200 and player.body["identifier"] == canonical

    # The next notification goes to the canonical id, and the old one is never used again.
    sim.reset(keep_tokens=True)
    second = herald.send(included_segments=["Subscribed Users"], contents={"en": "Two"}, isAdm=True)
    assert_counts(herald.wait_completed(second, worker), successful=2)
    assert accepted_once(sim.deliveries(platform="adm")) == Counter({canonical: 1, kept: 1})


# --- token refresh --------------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [HUAWEI, AMAZON])
def test_an_expired_access_token_is_refreshed_and_the_batch_still_sent_at_once(
    herald, sim, worker, device_type
):
    platform, flag = PLATFORM[device_type], FLAG[device_type]
    identifiers = identifiers_for(sim, device_type, 4, prefix="refresh")
    make_players(herald.app_id, device_type, identifiers)
    first = herald.send(included_segments=["Subscribed Users"], contents={"en": "One"}, **{flag: True})
    assert_counts(herald.wait_completed(first, worker), successful=4)  # the worker now holds a token

    assert sim.expire_access_tokens(platform) >= 1  # as if the hour had passed
    sim.reset(keep_tokens=True)
    second = herald.send(included_segments=["Subscribed Users"], contents={"en": "Two"}, **{flag: True})
    assert_counts(herald.wait_completed(second, worker), successful=4)

    records = sim.deliveries(platform=platform)
    assert accepted_once(records) == Counter({i: 1 for i in identifiers})
    assert {d["status"] for d in records if d["status"] >= 300} == {401}  # the expired token, once
    assert Counter(d["token"] for d in records if d["status"] == 401) == Counter({i: 1 for i in identifiers})
    assert sim.access_tokens_issued(platform) == 1  # one refresh (counted since the reset)
    # Refreshed inside the same attempt: no batch went back to the queue for it.
    assert list(DeliveryBatch.objects.filter(notification_id=second).values_list("attempts", flat=True)) == [
        1
    ]


# --- transient faults -----------------------------------------------------------------------------

FAULTS = {
    HUAWEI: {"error_rates": {"81000001": 0.2, "TrafficControl": 0.15}, "retry_after": 0, "seed": 21},
    AMAZON: {
        "error_rates": {"ServiceUnavailable": 0.15, "MaxRateExceeded": 0.1},
        "retry_after": 0,
        "seed": 22,
    },
}
PERMANENT = {HUAWEI: "80300007", AMAZON: "Unregistered"}
FAILED_REASON = {HUAWEI: "InvalidToken", AMAZON: "Unregistered"}


@pytest.mark.parametrize("device_type", [HUAWEI, AMAZON])
def test_transient_faults_are_retried_without_loss(herald, sim, worker, device_type):
    platform = PLATFORM[device_type]
    identifiers = identifiers_for(sim, device_type, 40, prefix="fault")
    make_players(herald.app_id, device_type, identifiers)
    broken = identifiers[7]
    sim.faults(
        platform=platform,
        fail_first={"81000001" if device_type == HUAWEI else "InternalServerError": 1},
        token_errors={broken: PERMANENT[device_type]},
        **FAULTS[device_type],
    )
    notification_id = herald.send(
        included_segments=["Subscribed Users"], contents={"en": "Fault run"}, **{FLAG[device_type]: True}
    )
    notification = herald.wait_completed(notification_id, worker)

    records = sim.deliveries(platform=platform)
    accepted = accepted_once(records)
    stats = sim.stats()[platform]
    # Nothing lost, nothing twice: every recipient settled, each accepted token accepted once.
    assert notification["successful"] + notification["failed"] + notification["errored"] == len(identifiers)
    assert set(accepted.values()) == {1} and stats["duplicates"] == 0
    assert notification["successful"] == len(accepted) == stats["accepted"]
    assert notification["failed"] == 1 and broken not in accepted
    # Transient faults really happened and were retried to success (or, rarely, ran out of attempts).
    transient = [d for d in records if d["status"] >= 300 and d["token"] != broken]
    assert transient, "the fault plan injected no transient error"
    never_accepted = {d["token"] for d in transient} - set(accepted)
    assert notification["errored"] == len(never_accepted)
    retried = [d["token"] for d in transient if d["token"] in accepted]
    assert retried, "no recipient was delivered after a transient fault"
    # The database agrees with the simulator, recipient by recipient.
    rows = delivery_rows(notification_id)
    assert {i for i, (status, _) in rows.items() if status == Delivery.Status.SENT} == set(accepted)
    assert rows[broken] == (Delivery.Status.FAILED, FAILED_REASON[device_type])
    failed = Player.objects.get(app_id=herald.app_id, identifier=broken)
    assert (failed.notification_types, failed.unsubscribed_reason) == (-2, FAILED_REASON[device_type])
