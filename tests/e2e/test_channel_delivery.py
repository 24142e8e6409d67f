"""Email, SMS and WNS end to end: HTTP -> fan-out -> a real Celery worker -> the real simulators.

The app is configured through ``PUT /apps/{id}`` (User key) with the simulator's SMTP server, HTTP
SMS gateway and WNS credentials; the module's worker (its environment: ``worker_extra_env``)
trusts the simulator's CA, takes its WNS token from the simulator and may reach loopback
(``HERALD_ALLOWED_PRIVATE_NETWORKS``). Each test compares what the simulators recorded, address by
address, with the players it created, and the notification's counters with those records.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from notifications.models import Delivery
from players.models import Player
from tests.e2e.support import settle
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.e2e

EMAIL, SMS, WNS = 11, 14, 6
PIPELINE = {
    "HERALD_BATCH_SIZE": 10,
    "HERALD_FANOUT_CHUNK": 50,
    "HERALD_MAX_DELIVERY_ATTEMPTS": 6,
    "HERALD_BATCH_LEASE_SECONDS": 60,
}
RETRY_BASE_MS = 200
COMPLETION_TIMEOUT = 90
WNS_SECRET = "wns-client-secret-e2e"
BODY = (
    '<html><body><h1>Hi {{ first_name | default: "there" }}</h1><p>News for you.</p>'
    '<p><a href="[unsubscribe_url]">Unsubscribe</a></p></body></html>'
)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    """Overrides conftest's: the worker sends to the simulators and links back to the live server."""
    return {
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_WNS_TOKEN_URL": sim.wns_token_url,
        "HERALD_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
        "HERALD_UNSUBSCRIBE_BASE_URL": live_server.url,
        "HERALD_RETRY_BASE_MS": str(RETRY_BASE_MS),
        **{name: str(value) for name, value in PIPELINE.items()},
    }


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)  # the worker's cached WNS token stays valid across tests
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    settings.HERALD_RETRY_BASE_SECONDS = RETRY_BASE_MS / 1000
    for name, value in PIPELINE.items():
        setattr(settings, name, value)
    yield
    settle()


@dataclass
class Response:
    status: int
    body: Any
    text: str = ""


def http(method: str, url: str, body: Any = None, *, key: str | None = None) -> Response:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the live server
    if key:
        request.add_header("Authorization", f"Key {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            raw = answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    text = raw.decode("utf-8", "replace")
    try:
        return Response(status, json.loads(raw or b"null"), text)
    except ValueError:
        return Response(status, None, text)


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
    """The tenant's app wired to the simulators through PUT /apps/{id}, as an operator would."""
    root = f"{live_server.url}/api/v1"
    sid = f"ms-app://s-1-15-2-{tenant.app.pk.int % 10**10}"
    sim.register_wns_app(sid, WNS_SECRET)
    credentials = {
        "smtp_host": sim.smtp_host,
        "smtp_port": sim.smtp_port,
        "smtp_username": "herald",
        "smtp_password": "smtp-secret-e2e",
        "email_from_address": "news@herald.test",
        "email_from_name": "Herald News",
        "sms_gateway": sim.sms_gateway("/cgi-bin/sendsms"),
        "wns_package_sid": sid,
        "wns_client_secret": WNS_SECRET,
    }
    response = http("PUT", f"{root}/apps/{tenant.app.pk}", credentials, key=tenant.user_key)
    assert response.status == 200, response.body
    for secret in ("smtp-secret-e2e", WNS_SECRET, "sim-key"):
        assert secret not in response.text
    return Herald(root, str(tenant.app.pk), tenant.app_key)


def make_players(app_id: str, device_type: int, identifiers: list[str], **fields) -> list[Player]:
    return Player.objects.bulk_create(
        [Player(app_id=app_id, device_type=device_type, identifier=i, **fields) for i in identifiers]
    )


def deliveries(sim: Simulator, platform: str) -> list[dict]:
    return sim.deliveries(platform=platform)


def accepted_once(records: list[dict]) -> Counter:
    return Counter(d["token"] for d in records if d["status"] < 300)


def assert_counts(notification: dict, *, successful: int, failed: int = 0, errored: int = 0) -> None:
    assert notification["completed_at"] is not None and notification["remaining"] == 0
    assert (notification["successful"], notification["failed"], notification["errored"]) == (
        successful,
        failed,
        errored,
    )


# --- email ----------------------------------------------------------------------------------------


def test_email_players_get_one_personalised_email_each_with_a_working_unsubscribe_link(
    herald, sim, worker, live_server
):
    names = {"ada@example.com": "Ada", "bob@example.com": "Bob", "cy@example.com": None}
    players = {
        p.identifier: p
        for address, name in names.items()
        for p in make_players(herald.app_id, EMAIL, [address], tags={"first_name": name} if name else {})
    }
    make_players(herald.app_id, EMAIL, ["gone@example.com"], notification_types=-2)
    make_players(herald.app_id, 1, ["fcm:not-an-email-recipient"])
    notification_id = herald.send(
        included_segments=["Subscribed Users"],
        email_subject='Hello {{ first_name | default: "friend" }}',
        email_body=BODY,
        email_preheader="This week at Herald",
        email_reply_to_address="support@herald.test",
    )
    notification = herald.wait_completed(notification_id, worker)
    assert_counts(notification, successful=3)

    records = deliveries(sim, "email")
    assert accepted_once(records) == Counter({address: 1 for address in names})
    by_address = {d["token"]: d["payload"] for d in records}
    assert by_address["ada@example.com"]["subject"] == "Hello Ada"
    assert by_address["cy@example.com"]["subject"] == "Hello friend"
    assert "<h1>Hi Bob</h1>" in by_address["bob@example.com"]["html"]
    mail = by_address["ada@example.com"]
    assert mail["from"] == "Herald News <news@herald.test>"
    assert mail["headers"]["reply-to"] == "support@herald.test"
    assert mail["headers"]["x-herald-notification-id"] == notification_id
    assert "This week at Herald" in mail["html"] and "[unsubscribe_url]" not in mail["html"]
    assert records[0]["headers"]["x-smtp-auth-user"] == "herald"

    # A person clicks the link in Ada's email: a page, and Ada is unsubscribed.
    link = mail["headers"]["list-unsubscribe"].strip("<>")
    assert link.startswith(f"{live_server.url}/email/unsubscribe/") and f'href="{link}"' in mail["html"]
    page = http("GET", link)
    assert page.status == 200 and "unsubscribed" in page.text
    ada = Player.objects.get(pk=players["ada@example.com"].pk)
    assert (ada.notification_types, ada.unsubscribed_reason, ada.invalid_identifier) == (
        -2,
        "unsubscribed",
        False,
    )
    # Bob's mail client uses the RFC 8058 one-click POST.
    bob_link = by_address["bob@example.com"]["headers"]["list-unsubscribe"].strip("<>")
    assert http("POST", bob_link).status == 200
    assert Player.objects.get(pk=players["bob@example.com"].pk).notification_types == -2
    # The player API shows it.
    player = http("GET", f"{herald.root}/players/{ada.pk}?app_id={herald.app_id}", key=herald.app_key)
    assert player.status == 200 and player.body["notification_types"] == -2

    # The next campaign skips them; include_unsubscribed (transactional mail) reaches them again.
    sim.reset(keep_tokens=True)
    second = herald.send(included_segments=["Subscribed Users"], email_subject="Again", email_body=BODY)
    assert_counts(herald.wait_completed(second, worker), successful=1)
    assert set(accepted_once(deliveries(sim, "email"))) == {"cy@example.com"}
    sim.reset(keep_tokens=True)
    receipt = herald.send(
        email_to=list(names), email_subject="Your receipt", email_body=BODY, include_unsubscribed=True
    )
    assert_counts(herald.wait_completed(receipt, worker), successful=3)
    assert set(accepted_once(deliveries(sim, "email"))) == set(names)


def test_a_bounce_unsubscribes_the_email_player_with_reason_bounced(herald, sim, worker):
    addresses = [f"user{i}@example.com" for i in range(5)]
    players = {p.identifier: p for p in make_players(herald.app_id, EMAIL, addresses)}
    sim.faults(platform="email", token_errors={"user3@example.com": "Bounce"})
    notification_id = herald.send(email_to=addresses, email_subject="Hi", email_body=BODY)
    notification = herald.wait_completed(notification_id, worker)
    assert_counts(notification, successful=4, failed=1)
    records = deliveries(sim, "email")
    assert [d["status"] for d in records if d["token"] == "user3@example.com"] == [550]  # never retried
    bounced = Player.objects.get(pk=players["user3@example.com"].pk)
    assert (bounced.notification_types, bounced.invalid_identifier, bounced.unsubscribed_reason) == (
        -2,
        True,
        "Bounced",
    )
    row = Delivery.objects.get(notification_id=notification_id, player=bounced)
    assert (row.status, row.error) == (Delivery.Status.FAILED, "Bounced")
    assert Player.objects.filter(app_id=herald.app_id, notification_types=1).count() == 4


# --- SMS ------------------------------------------------------------------------------------------


def test_sms_players_get_the_substituted_text_in_their_language(herald, sim, worker):
    numbers = {"+15551230001": ("en", "Ann"), "+15551230002": ("fr", "Jean"), "+15551230003": ("de", None)}
    for number, (language, name) in numbers.items():
        make_players(herald.app_id, SMS, [number], language=language, tags={"name": name} if name else {})
    notification_id = herald.send(
        include_phone_numbers=list(numbers),
        contents={"en": 'Hi {{ name | default: "you" }} & welcome', "fr": "Salut {{ name }}"},
        sms_from="+15550009999",
        name="sms-campaign",
    )
    assert_counts(herald.wait_completed(notification_id, worker), successful=3)
    records = deliveries(sim, "sms")
    assert accepted_once(records) == Counter({number: 1 for number in numbers})
    texts = {d["token"]: d["payload"]["message"] for d in records}
    assert texts == {
        "+15551230001": "Hi Ann & welcome",
        "+15551230002": "Salut Jean",
        "+15551230003": "Hi you & welcome",
    }
    payload = records[0]["payload"]
    assert payload["path"] == "/cgi-bin/sendsms" and payload["method"] == "GET"
    assert payload["params"]["apiKey"] == "sim-key"


# --- WNS ------------------------------------------------------------------------------------------


def test_wns_players_get_a_toast_and_expired_channels_unsubscribe(herald, sim, worker):
    live = sim.wns_channels(4)
    [expired] = sim.wns_channels(1, expired=True)
    players = {p.identifier: p for p in make_players(herald.app_id, WNS, [*live, expired])}
    notification_id = herald.send(
        included_segments=["Subscribed Users"],
        isWP_WNS=True,
        headings={"en": "Herald"},
        contents={"en": "Your order shipped"},
        url="https://example.com/orders/1",
    )
    assert_counts(herald.wait_completed(notification_id, worker), successful=4, failed=1)
    records = deliveries(sim, "wns")
    assert accepted_once(records) == Counter({uri: 1 for uri in live})
    for record in records:
        if record["status"] == 200:
            assert record["headers"]["x-wns-type"] == "wns/toast"
            assert record["headers"]["x-wns-cache-policy"] == "cache"
            assert record["payload"]["texts"] == ["Herald", "Your order shipped"]
            launch = json.loads(record["payload"]["launch"])
            assert launch == {"i": notification_id, "u": "https://example.com/orders/1"}
    gone = Player.objects.get(pk=players[expired].pk)
    assert (gone.notification_types, gone.unsubscribed_reason) == (-2, "ChannelExpired")


# --- faults on every channel --------------------------------------------------------------------

FAULTS = {
    "email": {"error_rates": {"TempFail": 0.25}, "latency_ms": 2, "seed": 11},
    "sms": {"error_rates": {"Unavailable": 0.15, "TooManyRequests": 0.1}, "retry_after": 0, "seed": 12},
    "wns": {"error_rates": {"ServiceUnavailable": 0.15, "Throttled": 0.1}, "seed": 13},
}
PERMANENT = {"email": "Bounce", "sms": "InvalidNumber", "wns": "ChannelExpired"}
FAILED_REASON = {"email": "Bounced", "sms": "InvalidNumber", "wns": "ChannelExpired"}


def _audience(herald: Herald, sim: Simulator, channel: str, count: int) -> tuple[list[str], dict]:
    if channel == "email":
        identifiers = [f"f{i}@example.com" for i in range(count)]
        make_players(herald.app_id, EMAIL, identifiers)
        return identifiers, {"email_to": identifiers, "email_subject": "Fault run", "email_body": BODY}
    if channel == "sms":
        identifiers = [f"+1555200{i:04d}" for i in range(count)]
        make_players(herald.app_id, SMS, identifiers)
        return identifiers, {"include_phone_numbers": identifiers, "contents": {"en": "Fault run"}}
    identifiers = sim.wns_channels(count)
    make_players(herald.app_id, WNS, identifiers)
    return identifiers, {"included_segments": ["All"], "isWP_WNS": True, "contents": {"en": "Fault run"}}


@pytest.mark.parametrize("channel", ["email", "sms", "wns"])
def test_faults_are_retried_and_the_counters_match_the_simulator(herald, sim, worker, channel):
    identifiers, request = _audience(herald, sim, channel, 40)
    broken = identifiers[7]
    sim.faults(platform=channel, token_errors={broken: PERMANENT[channel]}, **FAULTS[channel])
    notification_id = herald.send(**request)
    notification = herald.wait_completed(notification_id, worker)

    records = deliveries(sim, channel)
    accepted = accepted_once(records)
    stats = sim.stats()[channel]
    # Nothing lost, nothing twice: every recipient settled, each accepted address accepted once.
    assert notification["successful"] + notification["failed"] + notification["errored"] == len(identifiers)
    assert set(accepted.values()) == {1} and stats["duplicates"] == 0
    assert notification["successful"] == len(accepted) == stats["accepted"]
    assert notification["failed"] == 1 and broken not in accepted
    # Transient faults really happened and were retried to success (or, rarely, ran out of attempts).
    transient = [d for d in records if d["status"] >= 300 and d["token"] != broken]
    assert transient, "the fault plan injected no transient error"
    never_accepted = {d["token"] for d in transient} - set(accepted)
    assert notification["errored"] == len(never_accepted)
    assert stats["rejected"] == len(transient) + 1
    # The database agrees with the simulator, recipient by recipient.
    rows = dict(
        Delivery.objects.filter(notification_id=notification_id).values_list("player__identifier", "status")
    )
    assert {i for i, s in rows.items() if s == Delivery.Status.SENT} == set(accepted)
    assert rows[broken] == Delivery.Status.FAILED
    failed = Player.objects.get(app_id=herald.app_id, identifier=broken)
    assert (failed.notification_types, failed.unsubscribed_reason) == (-2, FAILED_REASON[channel])
