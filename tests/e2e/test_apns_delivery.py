"""APNs end to end: HTTP -> validation -> fan-out -> a real Celery worker -> two APNs simulators.

Two simulator processes stand in for api.push.apple.com and api.sandbox.push.apple.com (they
share one CA). The module's worker (conftest's ``celery_worker``) reads both URLs, the CA and fast
retries from its environment; this process is configured the same way through ``settings``. The
app authenticates with a .p8 key registered with both simulators with ``strict_token_updates``, so
a JWT renewed within 20 minutes of the previous one would be refused (TooManyProviderTokenUpdates).
Every test compares what the simulators recorded, token by token, with the players it created.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.models import App
from notifications.models import Notification
from players.models import Player
from tests.e2e.support import settle
from tests.gatewaysim.simulator import Simulator, running_simulator

pytestmark = pytest.mark.e2e

BUNDLE = "com.example.herald"
IOS, MACOS = 0, 9
RETRY_BASE_MS = 200
PIPELINE = {
    "HERALD_BATCH_SIZE": 100,
    "HERALD_FANOUT_CHUNK": 500,
    "HERALD_MAX_DELIVERY_ATTEMPTS": 6,
    "HERALD_BATCH_LEASE_SECONDS": 60,
}
COMPLETION_TIMEOUT = 90


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class Gateways:
    production: Simulator
    sandbox: Simulator
    key: tuple[str, str, str]  # (key id, team id, .p8 PEM), registered with both

    @property
    def both(self) -> tuple[Simulator, Simulator]:
        return self.production, self.sandbox


@pytest.fixture(scope="module")
def gateways(tmp_path_factory) -> Iterator[Gateways]:
    state = tmp_path_factory.mktemp("apns-sims")
    # Started one after the other in one state directory: the second reuses the first one's CA.
    with running_simulator(state) as production, running_simulator(state) as sandbox:
        key = production.apns_key(topics=[BUNDLE], strict_token_updates=True)
        sandbox.apns_key(key[0], key[1], topics=[BUNDLE], strict_token_updates=True, private_key_pem=key[2])
        yield Gateways(production, sandbox, key)


@pytest.fixture(scope="module")
def worker_extra_env(gateways: Gateways) -> dict[str, str]:
    """Overrides conftest's: the module's worker sends to the simulators, in small batches."""
    return {
        "HERALD_APNS_PRODUCTION_URL": gateways.production.apns_url,
        "HERALD_APNS_SANDBOX_URL": gateways.sandbox.apns_url,
        "HERALD_GATEWAY_CA_FILE": str(gateways.production.ca_path),
        "HERALD_RETRY_BASE_MS": str(RETRY_BASE_MS),
        **{name: str(value) for name, value in PIPELINE.items()},
    }


@pytest.fixture(autouse=True)
def pipeline(gateways: Gateways, settings, transactional_db) -> Iterator[None]:
    for sim in gateways.both:
        sim.reset()
    settings.HERALD_APNS_PRODUCTION_URL = gateways.production.apns_url
    settings.HERALD_APNS_SANDBOX_URL = gateways.sandbox.apns_url
    settings.HERALD_GATEWAY_CA_FILE = str(gateways.production.ca_path)
    settings.HERALD_RETRY_BASE_SECONDS = RETRY_BASE_MS / 1000
    for name, value in PIPELINE.items():
        setattr(settings, name, value)
    yield
    settle()


@dataclass
class Response:
    status: int
    body: Any


@dataclass
class Herald:
    root: str
    app: App
    key: str

    @property
    def app_id(self) -> str:
        return str(self.app.pk)

    def call(self, method: str, path: str, body: Any = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.root + path, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Key {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json; charset=UTF-8")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - the live server
                return Response(answer.status, json.loads(answer.read() or b"null"))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, json.loads(exc.read() or b"null"))

    def post_notification(self, **fields) -> Response:
        return self.call("POST", "/notifications", {"app_id": self.app_id, **fields})

    def send(self, **fields) -> str:
        response = self.post_notification(**{"included_segments": ["Subscribed Users"], **fields})
        assert response.status == 200, response.body
        assert response.body["id"], response.body
        return response.body["id"]

    def wait_completed(self, notification_id: str, worker) -> dict:
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        while True:
            response = self.call("GET", f"/notifications/{notification_id}?app_id={self.app_id}")
            assert response.status == 200, response.body
            if response.body["completed_at"] is not None:
                return response.body
            if worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{worker.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"not completed after {COMPLETION_TIMEOUT}s: {response.body}\n"
                    f"worker log:\n{worker.log_path.read_text()[-5000:]}"
                )
            time.sleep(0.25)

    def deliver(self, worker, **fields) -> dict:
        """Send to every subscribed player and wait until the notification completed."""
        return self.wait_completed(self.send(**fields), worker)


@pytest.fixture
def herald(live_server, tenant, gateways: Gateways) -> Herald:
    key_id, team_id, p8 = gateways.key
    app = tenant.app
    app.apns_env = App.ApnsEnv.PRODUCTION
    app.apns_key_id, app.apns_team_id, app.apns_p8, app.apns_bundle_id = key_id, team_id, p8, BUNDLE
    app.save()
    return Herald(f"{live_server.url}/api/v1", app, tenant.app_key)


def create_players(app: App, count: int, *, device_type: int = IOS, **fields) -> list[Player]:
    players = [
        Player(app=app, device_type=device_type, identifier=secrets.token_hex(32), **fields)
        for _ in range(count)
    ]
    return Player.objects.bulk_create(players)


# --- what the simulators saw ---------------------------------------------------------------------


def accepted(sim: Simulator, notification_id: str) -> list[dict]:
    return [
        d
        for d in sim.deliveries(platform="apns")
        if d["status"] == 200 and d["payload"]["custom"]["i"] == notification_id
    ]


def accepted_tokens(sim: Simulator, notification_id: str) -> Counter:
    return Counter(d["token"] for d in accepted(sim, notification_id))


def assert_counters(notification: dict, *, successful: int, failed: int = 0, errored: int = 0) -> None:
    assert notification["completed_at"] is not None
    assert (notification["successful"], notification["failed"], notification["errored"]) == (
        successful,
        failed,
        errored,
    )
    assert notification["remaining"] == 0
    row = Notification.objects.get(pk=notification["id"])
    assert successful + failed + errored == row.recipients


def assert_each_once(sim: Simulator, notification_id: str, players: list[Player]) -> None:
    tokens = accepted_tokens(sim, notification_id)
    assert set(tokens) == {p.identifier for p in players}
    assert set(tokens.values()) == {1}


# --- payload and headers -------------------------------------------------------------------------


def test_the_aps_payload_and_headers_arrive_as_apns_expects(herald, gateways, worker):
    english = create_players(herald.app, 2, language="en", badge_count=4)
    spanish = create_players(herald.app, 1, language="es", badge_count=0)
    mac = create_players(herald.app, 1, device_type=MACOS, language="en", badge_count=1)
    sent_at = time.time()

    notification = herald.deliver(
        worker,
        headings={"en": "Sale", "es": "Oferta"},
        contents={"en": "50% off today", "es": "50% hoy"},
        subtitle={"en": "Members only"},
        ios_badgeType="Increase",
        ios_badgeCount=2,
        ios_sound="chime.caf",
        thread_id="sales",
        ios_category="offer",
        ios_interruption_level="time-sensitive",
        ios_relevance_score=0.8,
        collapse_id="sale-1",
        url="https://example.com/sale",
        data={"sku": "A-1"},
        ios_attachments={"banner": "https://example.com/banner.png"},
        buttons=[{"id": "buy", "text": "Buy"}],
        ttl=7200,
    )

    assert_counters(notification, successful=4)
    assert notification["platform_delivery_stats"]["ios"]["successful"] == 3
    production = gateways.production
    assert_each_once(production, notification["id"], english + spanish + mac)
    by_token = {d["token"]: d for d in accepted(production, notification["id"])}
    for player in english + spanish + mac:
        delivery = by_token[player.identifier]
        spanish_player = player.language == "es"
        assert delivery["payload"] == {
            "aps": {
                "alert": {
                    "title": "Oferta" if spanish_player else "Sale",
                    "subtitle": "Members only",
                    "body": "50% hoy" if spanish_player else "50% off today",
                },
                "sound": "chime.caf",
                "badge": player.badge_count + 2,
                "thread-id": "sales",
                "category": "offer",
                "interruption-level": "time-sensitive",
                "relevance-score": 0.8,
                "mutable-content": 1,
            },
            "custom": {"i": notification["id"], "u": "https://example.com/sale", "a": {"sku": "A-1"}},
            "att": {"banner": "https://example.com/banner.png"},
            "buttons": [{"i": "buy", "n": "Buy"}],
        }
        headers = delivery["headers"]
        assert headers["apns-topic"] == BUNDLE
        assert headers["apns-push-type"] == "alert"
        assert headers["apns-priority"] == "10"
        assert headers["apns-collapse-id"] == "sale-1"
        assert sent_at + 7200 - 60 <= int(headers["apns-expiration"]) <= time.time() + 7200
        assert headers["authorization"] == "bearer [redacted]"
        assert headers["x-sim-auth"] == "token"
    assert gateways.sandbox.stats()["apns"]["received"] == 0


def test_background_and_voip_pushes_get_their_push_type_priority_and_topic(herald, gateways, worker):
    players = create_players(herald.app, 2)

    background = herald.deliver(worker, content_available=True, data={"sync": "1"})
    voip = herald.deliver(
        worker, contents={"en": "Incoming call"}, apns_push_type_override="voip", priority=10
    )

    assert_counters(background, successful=2)
    assert_counters(voip, successful=2)
    for delivery in accepted(gateways.production, background["id"]):
        assert delivery["headers"]["apns-push-type"] == "background"
        assert delivery["headers"]["apns-priority"] == "5"
        assert delivery["headers"]["apns-topic"] == BUNDLE
        assert delivery["payload"] == {
            "aps": {"content-available": 1},
            "custom": {"i": background["id"], "a": {"sync": "1"}},
        }
    for delivery in accepted(gateways.production, voip["id"]):
        assert delivery["headers"]["apns-push-type"] == "voip"
        assert delivery["headers"]["apns-priority"] == "10"
        assert delivery["headers"]["apns-topic"] == f"{BUNDLE}.voip"
    assert_each_once(gateways.production, voip["id"], players)


# --- the provider token -------------------------------------------------------------------------


def jwt_digests(deliveries: list[dict]) -> Counter:
    return Counter(d["headers"]["x-sim-jwt"] for d in deliveries)


def key_state(sim: Simulator, key_id: str) -> dict:
    return next(k for k in sim.control("GET", "/_sim/apns/keys").body["keys"] if k["key_id"] == key_id)


def test_the_jwt_is_reused_then_renewed_once_after_expired_provider_token(herald, gateways, worker):
    players = create_players(herald.app, 150)
    production = gateways.production

    first = herald.deliver(worker, contents={"en": "one"})
    [(reused, uses)] = jwt_digests(accepted(production, first["id"])).items()
    assert uses == 150  # one token string on every request of both batches

    production.faults("apns", fail_first={"ExpiredProviderToken": 1})
    second = herald.deliver(worker, contents={"en": "two"})

    assert_counters(first, successful=150)
    assert_counters(second, successful=150)
    assert_each_once(production, second["id"], players)
    refused = [d for d in production.deliveries(platform="apns") if d["status"] == 403]
    assert refused and {d["headers"]["x-sim-reason"] for d in refused} == {"ExpiredProviderToken"}
    assert set(jwt_digests(refused)) == {reused}
    [(renewed, _)] = jwt_digests(accepted(production, second["id"])).items()
    assert renewed != reused
    state = key_state(production, gateways.key[0])
    assert state["tokens_seen"] == 2  # renewed once, however many sends were refused
    assert state["refused_updates"] == 0  # TooManyProviderTokenUpdates never triggered
    assert production.stats()["apns"]["duplicates"] == 0


# --- permanent failures -------------------------------------------------------------------------


def test_unregistered_bad_and_foreign_tokens_unsubscribe_their_players(herald, gateways, worker):
    gone, bad, foreign, *fine = create_players(herald.app, 5)
    reasons = {gone: "Unregistered", bad: "BadDeviceToken", foreign: "DeviceTokenNotForTopic"}
    gateways.production.faults(
        "apns", token_errors={player.identifier: reason for player, reason in reasons.items()}
    )

    notification = herald.deliver(worker, contents={"en": "hello"})

    assert_counters(notification, successful=2, failed=3)
    assert_each_once(gateways.production, notification["id"], fine)
    for player, reason in reasons.items():
        player.refresh_from_db()
        assert (player.invalid_identifier, player.notification_types, player.unsubscribed_reason) == (
            True,
            -2,
            reason,
        )
        shown = herald.call("GET", f"/players/{player.pk}?app_id={herald.app_id}").body
        assert shown["invalid_identifier"] is True and shown["notification_types"] == -2
    gone_record = gateways.production.deliveries(token=gone.identifier)[0]
    assert (gone_record["status"], gone_record["headers"]["x-sim-reason"]) == (410, "Unregistered")

    # They are never sent to again.
    gateways.production.reset()
    later = herald.deliver(worker, contents={"en": "again"})
    assert_counters(later, successful=2)
    assert set(accepted_tokens(gateways.production, later["id"])) == {p.identifier for p in fine}


# --- connections ------------------------------------------------------------------------------


def test_a_stream_limit_of_one_still_delivers_everything(herald, gateways, worker):
    players = create_players(herald.app, 200)
    production = gateways.production
    production.faults("apns", max_concurrent_streams=1, latency_ms=2)

    # The new limit reaches each open connection as a SETTINGS frame with its next stream; until
    # the worker's libcurl has read it, it may still send what the old limit allowed (RFC 9113
    # 6.5.3), and so may the first flight on a new connection. This first send makes the worker's
    # connections learn the limit, under which the second one is sent.
    warm_up = herald.deliver(worker, contents={"en": "learn the limit"})
    production.reset(keep_tokens=True)
    production.faults("apns", max_concurrent_streams=1, latency_ms=2)
    notification = herald.deliver(worker, contents={"en": "one at a time"})

    assert_counters(warm_up, successful=200)
    assert_counters(notification, successful=200)
    assert_each_once(production, notification["id"], players)
    connections = production.control("GET", "/_sim/apns/connections").body
    assert connections["max_concurrent_streams"] == 1
    assert connections["refused"] == 0
    # One stream at a time on each of the worker's (at most two) connections.
    assert connections["peak_in_flight"] <= 2
    assert production.stats()["apns"] == {"received": 200, "accepted": 200, "rejected": 0, "duplicates": 0}


def test_a_goaway_mid_batch_loses_nothing(herald, gateways, worker):
    players = create_players(herald.app, 200)
    gateways.production.faults("apns", goaway_after=30)

    notification = herald.deliver(worker, contents={"en": "through goaways"})

    assert_counters(notification, successful=200)
    assert gateways.production.control("GET", "/_sim/apns/connections").body["goaway"] >= 200 // 30
    stats = gateways.production.stats()["apns"]
    # Nothing is lost. Streams above a GOAWAY's last_stream_id are resent; a stream the server
    # processed whose answer was cut off with the connection is resent too, so a rare duplicate
    # is possible (seen: 1 in 200 under load). It is counted and bounded, never silent.
    tokens = {d["token"] for d in gateways.production.deliveries() if d["status"] == 200}
    assert tokens == {p.identifier for p in players}
    print(f"GOAWAY run: {stats['duplicates']} duplicate(s) of 200")
    assert stats["rejected"] == 0 and stats["accepted"] == 200 + stats["duplicates"]
    assert stats["duplicates"] <= 5


# --- environments -------------------------------------------------------------------------------


def test_test_players_go_to_the_sandbox_and_a_sandbox_app_sends_everything_there(herald, gateways, worker):
    store = create_players(herald.app, 2)
    development = create_players(herald.app, 1, test_type=1)
    ad_hoc = create_players(herald.app, 1, test_type=2)

    mixed = herald.deliver(worker, contents={"en": "mixed"})

    assert_counters(mixed, successful=4)
    assert_each_once(gateways.production, mixed["id"], store)
    assert_each_once(gateways.sandbox, mixed["id"], development + ad_hoc)
    for sim in gateways.both:
        hosts = {d["headers"]["host"] for d in sim.deliveries(platform="apns")}
        assert hosts == {urlsplit(sim.apns_url).netloc}

    herald.app.apns_env = App.ApnsEnv.SANDBOX
    herald.app.save()
    sandboxed = herald.deliver(worker, contents={"en": "sandbox"})

    assert_counters(sandboxed, successful=4)
    assert_each_once(gateways.sandbox, sandboxed["id"], store + development + ad_hoc)
    assert accepted(gateways.production, sandboxed["id"]) == []


# --- the API ------------------------------------------------------------------------------------


def test_an_oversized_apns_payload_is_a_400_at_the_api(herald, gateways, worker):
    create_players(herald.app, 2)
    before = Notification.objects.count()

    # 2100 quotes: under the 3500-byte metadata check, 4200 bytes once JSON-escaped for APNs.
    response = herald.post_notification(included_segments=["All"], isIos=True, contents={"en": '"' * 2100})
    voip = herald.post_notification(
        included_segments=["All"], isIos=True, contents={"en": '"' * 2100}, apns_push_type_override="voip"
    )

    assert response.status == 400
    [error] = response.body["errors"]
    assert "APNs" in error and "4096" in error
    assert Notification.objects.count() == before + 1  # only the VoIP one, which may take 5120 bytes
    assert voip.status == 200 and voip.body["recipients"] == 2
    herald.wait_completed(voip.body["id"], worker)
    assert gateways.production.stats()["apns"]["accepted"] == 2
