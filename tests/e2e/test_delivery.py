"""Delivery end to end: HTTP -> validation -> fan-out -> batches -> a real worker -> the FCM simulator.

The live server (in this process) accepts notifications; a real ``celery worker`` process (the
module's ``celery_worker``, see conftest.py) fans them out and delivers them over HTTP/2 to a real
gateway simulator subprocess (gatewaysim), which records every request it accepted. Each test
compares those records, token by token, with a reference computed here from the players the test
created, by a small pure-Python evaluator that shares no code with Herald's SQL.

The pipeline runs with small batches and fast retries (``PIPELINE``), in the worker (its
environment) and in this process (``settings``), because the API counts audiences and
``dispatch_due`` runs here when a test moves the clock. Tests move the clock by calling
``dispatch_due(now=...)``; they never sleep for hours.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import secrets
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_zone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from apps.models import App
from notifications.models import Delivery, DeliveryBatch, Notification
from notifications.pipeline import dispatch_due
from notifications.tasks import deliver_batch_task, fan_out_task
from players.models import Player
from tests.e2e.conftest import start_worker, stop_worker, worker_env
from tests.e2e.support import Answer, call, settle
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.e2e

PROJECT_ID = "herald-test"
ANDROID, IOS = 1, 0
BATCH_SIZE = 50
FANOUT_CHUNK = 200
RETRY_BASE_MS = 200
MAX_ATTEMPTS = 5
LEASE_SECONDS = 60
# What the worker reads from its environment, and what this process sets through ``settings``.
PIPELINE = {
    "HERALD_BATCH_SIZE": BATCH_SIZE,
    "HERALD_FANOUT_CHUNK": FANOUT_CHUNK,
    "HERALD_MAX_DELIVERY_ATTEMPTS": MAX_ATTEMPTS,
    "HERALD_BATCH_LEASE_SECONDS": LEASE_SECONDS,
}
COMPLETION_TIMEOUT = 60
QUEUE_APP = "tests.e2e.queue_worker_app"
NOT_SUBSCRIBED = {"id": "", "recipients": 0, "errors": ["All included players are not subscribed"]}
BERLIN = (52.52, 13.405)


# --- fixtures -----------------------------------------------------------------------------------


def gateway_env(sim: Simulator) -> dict[str, str]:
    return {
        "HERALD_FCM_BASE_URL": sim.fcm_url,
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_RETRY_BASE_MS": str(RETRY_BASE_MS),
        **{name: str(value) for name, value in PIPELINE.items()},
    }


@pytest.fixture(scope="module")
def worker_extra_env(sim) -> dict[str, str]:
    """Overrides conftest's: the module's worker sends to the simulator, in small batches."""
    return gateway_env(sim)


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    """This process configured as the worker is; the simulator fresh; nothing left running after."""
    sim.reset()
    settings.HERALD_FCM_BASE_URL = sim.fcm_url
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_RETRY_BASE_SECONDS = RETRY_BASE_MS / 1000
    for name, value in PIPELINE.items():
        setattr(settings, name, value)
    yield
    settle()


@dataclass
class Herald:
    """The live server's API as an app's backend (App key) and its devices (no key) call it."""

    root: str
    app: App
    key: str

    @property
    def app_id(self) -> str:
        return str(self.app.pk)

    def call(self, method: str, path: str, body: Any = None, *, keyed: bool = True) -> Answer:
        return call(method, self.root + path, body, key=self.key if keyed else None)

    def post_notification(self, **fields) -> Answer:
        return self.call("POST", "/notifications", {"app_id": self.app_id, **fields})

    def send(self, **fields) -> dict:
        """POST /notifications that must be accepted with an id."""
        response = self.post_notification(**fields)
        assert response.status == 200, response.body
        assert response.body["id"], response.body
        return response.body

    def notification(self, notification_id: str) -> dict:
        response = self.call("GET", f"/notifications/{notification_id}?app_id={self.app_id}")
        assert response.status == 200, response.body
        return response.body

    def cancel(self, notification_id: str) -> Answer:
        return self.call("DELETE", f"/notifications/{notification_id}?app_id={self.app_id}")

    def wait_completed(
        self, notification_id: str, *, timeout: float = COMPLETION_TIMEOUT, worker=None
    ) -> dict:
        """GET until ``completed_at`` is set (the read model's end of delivery)."""
        deadline = time.monotonic() + timeout
        while True:
            notification = self.notification(notification_id)
            if notification["completed_at"] is not None:
                return notification
            if worker is not None and worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{worker.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                log = worker.log_path.read_text()[-5000:] if worker is not None else ""
                pytest.fail(f"not completed after {timeout}s: {notification}\nworker log:\n{log}")
            time.sleep(0.25)

    def create_segment(self, name: str, filters: list[dict]) -> str:
        response = self.call("POST", f"/apps/{self.app_id}/segments", {"name": name, "filters": filters})
        assert response.status == 201, response.body
        assert response.body["success"] is True
        return response.body["id"]


@pytest.fixture
def herald(live_server, tenant, sim) -> Herald:
    """The tenant's app with FCM credentials whose token endpoint is the simulator's."""
    app = tenant.app
    app.fcm_service_account_json = json.dumps(sim.fcm_service_account(PROJECT_ID))
    app.fcm_project_id = PROJECT_ID
    app.save()
    return Herald(f"{live_server.url}/api/v1", app, tenant.app_key)


# --- players and the reference evaluator ------------------------------------------------------


@dataclass
class Spec:
    """A player as the test defines it; ``create_players`` fills ``identifier`` and ``id``."""

    name: str
    device_type: int = ANDROID
    notification_types: int = 1
    invalid_identifier: bool = False
    has_token: bool = True
    language: str | None = "en"
    tags: dict[str, str] = field(default_factory=dict)
    hours_since_session: float = 1.0
    session_count: int = 1
    lat: float | None = None
    long: float | None = None
    external_user_id: str | None = None
    timezone: int | None = 0
    timezone_id: str | None = None
    identifier: str | None = None
    id: str = ""

    @property
    def subscribed(self) -> bool:
        return self.notification_types > 0 and not self.invalid_identifier and bool(self.identifier)


def create_players(app, specs: list[Spec], now: datetime) -> dict[str, Spec]:
    players = []
    for spec in specs:
        if spec.has_token:
            spec.identifier = (
                secrets.token_hex(32) if spec.device_type == IOS else f"fcm:{secrets.token_urlsafe(48)}"
            )
        players.append(
            Player(
                app=app,
                device_type=spec.device_type,
                identifier=spec.identifier,
                notification_types=spec.notification_types,
                invalid_identifier=spec.invalid_identifier,
                language=spec.language,
                tags=spec.tags,
                session_count=spec.session_count,
                lat=spec.lat,
                long=spec.long,
                external_user_id=spec.external_user_id,
                timezone=spec.timezone,
                timezone_id=spec.timezone_id,
                created_at=now - timedelta(days=60),
                last_active=now - timedelta(hours=spec.hours_since_session),
            )
        )
    for spec, player in zip(specs, Player.objects.bulk_create(players), strict=True):
        spec.id = str(player.pk)
    return {spec.name: spec for spec in specs}


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")


def _number(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None and _NUMBER.fullmatch(text) else None


def _compare(left, relation: str, right) -> bool:
    return {">": left > right, "<": left < right, "=": left == right, "!=": left != right}[relation]


def _metres(lat1: float, long1: float, lat2: float, long2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(long2 - long1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def filter_matches(entry: dict, spec: Spec, now: datetime) -> bool:
    """One filter, as onesignal-api.md §6.4 words it."""
    name, relation = entry["field"], entry.get("relation")
    if name == "tag":
        value = spec.tags.get(entry["key"])
        if value is None:
            return relation == "not_exists"
        if relation in ("exists", "not_exists"):
            return relation == "exists"
        if relation in ("time_elapsed_gt", "time_elapsed_lt"):
            stamp = _number(value)
            if stamp is None:
                return False
            elapsed = Decimal(repr(now.timestamp())) - stamp
            limit = Decimal(entry["value"])
            return elapsed > limit if relation == "time_elapsed_gt" else elapsed < limit
        left, right = _number(value), _number(entry["value"])
        if left is None or right is None:  # not both numbers: code-point order
            left, right = value, entry["value"]
        return _compare(left, relation, right)
    if name == "last_session":
        hours = Decimal(entry["hours_ago"])
        return _compare(Decimal(repr(spec.hours_since_session)), relation, hours)
    if name == "session_count":
        return _compare(spec.session_count, relation, int(entry["value"]))
    if name == "location":
        if spec.lat is None or spec.long is None:
            return False
        return _metres(spec.lat, spec.long, entry["lat"], entry["long"]) <= entry["radius"]
    if name == "language":
        return spec.language is not None and _compare(spec.language, relation, entry["value"])
    raise AssertionError(f"the reference evaluator does not know {name}")


def filters_match(filters: list[dict], spec: Spec, now: datetime) -> bool:
    """AND within a group, OR between groups (§6.3)."""
    groups: list[list[dict]] = [[]]
    for entry in filters:
        if entry.get("operator") == "OR":
            groups.append([])
        elif entry.get("operator") is None:
            groups[-1].append(entry)
    return any(all(filter_matches(entry, spec, now) for entry in group) for group in groups)


ACTIVE = {"field": "last_session", "relation": "<", "hours_ago": "168"}
BUILTIN_SEGMENTS = {
    "Subscribed Users": [],
    "All": [],
    "Active Users": [ACTIVE],
    "Engaged Users": [{"field": "session_count", "relation": ">", "value": "10"}, ACTIVE],
    "Inactive Users": [{"field": "last_session", "relation": ">", "hours_ago": "168"}],
}


def segment_audience(
    specs: dict[str, Spec], included: list[str], excluded: list[str], custom: dict[str, list[dict]], now
) -> set[str]:
    definitions = {**BUILTIN_SEGMENTS, **custom}

    def member(spec: Spec, segment: str) -> bool:
        return filters_match(definitions[segment], spec, now)

    return {
        spec.name
        for spec in specs.values()
        if spec.subscribed
        and any(member(spec, s) for s in included)
        and not any(member(spec, s) for s in excluded)
    }


# --- what the simulator saw ------------------------------------------------------------------


def notification_of(delivery: dict) -> str:
    """OneSignal's Android convention: ``data.custom`` is JSON whose ``i`` is the notification id."""
    return json.loads(delivery["payload"]["data"]["custom"])["i"]


def accepted(sim: Simulator) -> list[dict]:
    return [d for d in sim.deliveries(platform="fcm") if d["status"] == 200]


def accepted_tokens(sim: Simulator, notification_id: str) -> Counter:
    """How many accepted sends each token got for this notification."""
    return Counter(d["token"] for d in accepted(sim) if notification_of(d) == notification_id)


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_fanned_out(notification_id: str, timeout: float = 30) -> Notification:
    return wait_for(
        lambda: Notification.objects.filter(pk=notification_id, fanout_done=True).first(),
        timeout=timeout,
        what=f"the fan-out of {notification_id}",
    )


def assert_delivered(sim: Simulator, notification: dict, expected: set[str], specs: dict[str, Spec]) -> None:
    """Completed; Android recipients accepted once each at the simulator, iOS ones errored (no APNs
    provider yet); counters and per-platform stats consistent with that; nobody else reached."""
    android = {specs[n].identifier for n in expected if specs[n].device_type == ANDROID}
    ios = {n for n in expected if specs[n].device_type == IOS}
    row = Notification.objects.get(pk=notification["id"])
    assert notification["completed_at"] is not None and notification["remaining"] == 0
    assert row.recipients == len(expected)
    assert (notification["successful"], notification["failed"], notification["errored"]) == (
        len(android),
        0,
        len(ios),
    )
    assert notification["successful"] + notification["failed"] + notification["errored"] == row.recipients
    tokens = accepted_tokens(sim, notification["id"])
    assert set(tokens) == android
    assert set(tokens.values()) <= {1}
    stats = notification["platform_delivery_stats"]
    if android:
        assert stats["android"] == {
            "successful": len(android),
            "failed": 0,
            "errored": 0,
            "converted": 0,
            "received": 0,
        }
    if ios:
        assert stats["ios"] == {
            "successful": 0,
            "failed": 0,
            "errored": len(ios),
            "converted": 0,
            "received": 0,
        }
    assert set(stats) == {key for key, present in (("android", android), ("ios", ios)) if present}
    outcomes = {
        (device_type, status, bool(error))
        for device_type, status, error in Delivery.objects.filter(
            notification_id=notification["id"]
        ).values_list("player__device_type", "status", "error")
    }
    # Android sent; iOS errored with the reason (the app has no APNs credentials or provider).
    assert outcomes <= {(ANDROID, Delivery.Status.SENT, False), (IOS, Delivery.Status.ERRORED, True)}


def assert_never_reached(sim: Simulator, specs: dict[str, Spec]) -> None:
    unreachable = {s.identifier for s in specs.values() if not s.subscribed and s.identifier}
    assert unreachable, "the roster has unsubscribed players with tokens"
    assert not unreachable & {d["token"] for d in sim.deliveries(platform="fcm")}


# --- 1. targeting -----------------------------------------------------------------------------


WHALES = [{"field": "tag", "key": "level", "relation": ">", "value": "10"}]


def roster(app, now: datetime) -> dict[str, Spec]:
    """Android and iOS players with tags, sessions, places and external ids; three can't receive."""
    bought = str(int((now - timedelta(days=2)).timestamp()))
    recently = str(int((now - timedelta(hours=1)).timestamp()))
    return create_players(
        app,
        [
            Spec(
                "alice",
                tags={"level": "10", "last_purchase": bought},
                hours_since_session=2,
                session_count=12,
                lat=BERLIN[0],
                long=BERLIN[1],
                external_user_id="user-a",
            ),
            Spec(
                "bob", tags={"level": "9"}, hours_since_session=30, session_count=3, external_user_id="user-b"
            ),
            Spec("carol", tags={"level": "100"}, hours_since_session=200, session_count=20),
            Spec("dave", tags={"level": "abc"}, hours_since_session=1, session_count=2),
            Spec(
                "erin",
                tags={"level": "9.5"},
                hours_since_session=5,
                lat=52.39,
                long=13.06,
                external_user_id="user-a",
            ),
            Spec("frank", tags={"last_purchase": recently}, hours_since_session=10, lat=52.53, long=13.41),
            Spec("gina", hours_since_session=300, external_user_id="user-g"),
            Spec("hank", tags={"level": "11"}, hours_since_session=50, session_count=15),
            Spec("ivy", language="es", tags={"level": "-5", "last_purchase": "soon"}, hours_since_session=2),
            Spec(
                "ios-1", device_type=IOS, tags={"level": "20"}, session_count=11, external_user_id="user-ios"
            ),
            Spec("ios-2", device_type=IOS, hours_since_session=400, lat=BERLIN[0], long=BERLIN[1]),
            Spec(
                "unsub",
                notification_types=-2,
                tags={"level": "50"},
                session_count=30,
                lat=BERLIN[0],
                long=BERLIN[1],
                external_user_id="user-u",
            ),
            Spec(
                "invalid",
                invalid_identifier=True,
                tags={"level": "50"},
                session_count=30,
                lat=BERLIN[0],
                long=BERLIN[1],
                external_user_id="user-i",
            ),
            Spec("tokenless", has_token=False, tags={"level": "50"}, lat=BERLIN[0], long=BERLIN[1]),
        ],
        now,
    )


def test_segments_and_filters_reach_exactly_the_reference_audience(herald, sim, worker):
    now = timezone.now()
    specs = roster(herald.app, now)
    herald.create_segment("Whales", WHALES)
    filters = [
        {"field": "tag", "key": "level", "relation": ">", "value": "9"},
        {"field": "last_session", "relation": "<", "hours_ago": "24"},
        {"operator": "OR"},
        {"field": "tag", "key": "last_purchase", "relation": "time_elapsed_gt", "value": "86400"},
        {"operator": "OR"},
        {"field": "location", "radius": 5000, "lat": BERLIN[0], "long": BERLIN[1]},
    ]
    custom = {"Whales": WHALES}
    cases = {
        "whales-or-inactive-but-not-engaged": (
            {"included_segments": ["Whales", "Inactive Users"], "excluded_segments": ["Engaged Users"]},
            segment_audience(specs, ["Whales", "Inactive Users"], ["Engaged Users"], custom, now),
            {"carol", "dave", "gina", "ios-2"},
        ),
        "active-but-not-whales": (
            {"included_segments": ["Active Users"], "excluded_segments": ["Whales"]},
            segment_audience(specs, ["Active Users"], ["Whales"], custom, now),
            {"alice", "bob", "erin", "frank", "ivy"},
        ),
        "all-but-inactive": (
            {"included_segments": ["All"], "excluded_segments": ["Inactive Users"]},
            segment_audience(specs, ["All"], ["Inactive Users"], custom, now),
            {"alice", "bob", "dave", "erin", "frank", "hank", "ivy", "ios-1"},
        ),
        "filters": (
            {"filters": filters},
            {name for name, spec in specs.items() if spec.subscribed and filters_match(filters, spec, now)},
            {"alice", "dave", "erin", "frank", "ios-1", "ios-2"},
        ),
    }
    sent = {}
    for case, (targeting, expected, by_hand) in cases.items():
        # The evaluator agrees with the audience worked out by hand from the roster.
        assert expected == by_hand, case
        body = herald.send(contents={"en": f"case {case}"}, **targeting)
        assert body["recipients"] == len(expected), (case, body)
        assert "errors" not in body
        sent[case] = body["id"]
    for case, notification_id in sent.items():
        notification = herald.wait_completed(notification_id, worker=worker)
        assert_delivered(sim, notification, cases[case][1], specs)
    assert_never_reached(sim, specs)


def test_id_lists_reach_only_subscribed_players_and_report_what_missed(herald, sim, worker):
    specs = roster(herald.app, timezone.now())
    unknown_id = str(uuid.uuid4())
    cases = {
        "player_ids": (
            {"include_player_ids": [specs["alice"].id, specs["bob"].id, specs["unsub"].id, unknown_id]},
            {"alice", "bob"},
            {"invalid_player_ids": [specs["unsub"].id, unknown_id]},
        ),
        "external_user_ids": (
            {"include_external_user_ids": ["user-a", "user-u", "user-missing"]},
            {"alice", "erin"},
            {"invalid_external_user_ids": ["user-u", "user-missing"]},
        ),
        "aliases": (
            {"include_aliases": {"external_id": ["user-g", "user-ios", "nobody"]}, "target_channel": "push"},
            {"gina", "ios-1"},
            {"invalid_aliases": {"external_id": ["nobody"]}},
        ),
        "android_reg_ids": (
            {
                "include_android_reg_ids": [
                    specs["alice"].identifier,
                    specs["invalid"].identifier,
                    "fcm:unknown",
                ]
            },
            {"alice"},
            {"invalid_player_ids": [specs["invalid"].identifier, "fcm:unknown"]},
        ),
    }
    sent = {}
    for case, (targeting, expected, errors) in cases.items():
        body = herald.send(contents={"en": f"case {case}"}, **targeting)
        assert body == {"id": body["id"], "recipients": len(expected), "external_id": None, "errors": errors}
        sent[case] = body["id"]
    for case, notification_id in sent.items():
        notification = herald.wait_completed(notification_id, worker=worker)
        assert_delivered(sim, notification, cases[case][1], specs)

    # Nobody reachable: nothing is created, whichever mode.
    for targeting in (
        {"include_player_ids": [specs["unsub"].id, specs["invalid"].id, specs["tokenless"].id]},
        {"include_external_user_ids": ["user-u", "user-i"]},
        {"include_android_reg_ids": [specs["invalid"].identifier]},
    ):
        response = herald.post_notification(contents={"en": "nobody"}, **targeting)
        assert (response.status, response.body) == (200, NOT_SUBSCRIBED)
    assert Notification.objects.count() == len(cases)
    assert_never_reached(sim, specs)


def test_platform_switches_narrow_the_audience_and_ios_errors_without_a_provider(herald, sim, worker):
    specs = roster(herald.app, timezone.now())
    subscribed = {name for name, spec in specs.items() if spec.subscribed}
    android = {name for name in subscribed if specs[name].device_type == ANDROID}
    ios = subscribed - android
    assert (len(android), len(ios)) == (9, 2)
    cases = {
        "isAndroid": ({"isAndroid": True}, android),
        "isIos-false": ({"isIos": False}, android),
        "isIos": ({"isIos": True}, ios),
        "no-flags": ({}, subscribed),
    }
    sent = {}
    for case, (flags, expected) in cases.items():
        body = herald.send(contents={"en": case}, included_segments=["Subscribed Users"], **flags)
        assert body["recipients"] == len(expected), case
        sent[case] = body["id"]
    for case, notification_id in sent.items():
        notification = herald.wait_completed(notification_id, worker=worker)
        assert_delivered(sim, notification, cases[case][1], specs)
    # With isAndroid only Android tokens got anything; iOS recipients end errored, never sent.
    ios_notification = Notification.objects.get(pk=sent["isIos"])
    assert (ios_notification.successful, ios_notification.errored) == (0, 2)
    assert not accepted_tokens(sim, sent["isIos"])
    assert_never_reached(sim, specs)


# --- 2. content -------------------------------------------------------------------------------


def test_language_fallback_and_tag_personalisation_reach_the_device(herald, sim, worker):
    specs = create_players(
        herald.app,
        [
            Spec("es-ana", language="es", tags={"first_name": "Ana", "city": "Madrid"}),
            Spec("es-untagged", language="es"),
            Spec("fr", language="fr"),  # no French content: English
            Spec("en-bob", language="en", tags={"first_name": "Bob"}),
            Spec("no-language", language=None, tags={"first_name": ""}),  # an empty tag takes the default
        ],
        timezone.now(),
    )
    body = herald.send(
        included_segments=["Subscribed Users"],
        contents={"en": 'Hi {{ first_name | default: "friend" }}!', "es": "Hola {{first_name}}"},
        headings={
            "en": "News for {{ city | default: 'you' }}",
            "es": 'Noticias de {{ city | default: "tu ciudad" }}',
        },
        data={"order": "42"},
        url="https://shop.example/orders/42",
    )
    herald.wait_completed(body["id"], worker=worker)
    expected = {  # name -> (alert / notification.body, title / notification.title)
        "es-ana": ("Hola Ana", "Noticias de Madrid"),
        "es-untagged": ("Hola ", "Noticias de tu ciudad"),
        "fr": ("Hi friend!", "News for you"),
        "en-bob": ("Hi Bob!", "News for you"),
        "no-language": ("Hi friend!", "News for you"),
    }
    for name, (alert, title) in expected.items():
        [delivery] = sim.deliveries(token=specs[name].identifier)
        assert delivery["status"] == 200
        message = delivery["payload"]
        assert message["token"] == specs[name].identifier
        assert (message["data"]["alert"], message["data"]["title"]) == (alert, title), name
        assert message["notification"] == {"title": title, "body": alert}, name
        assert json.loads(message["data"]["custom"]) == {
            "i": body["id"],
            "u": "https://shop.example/orders/42",
            "a": {"order": "42"},
        }
        assert message["android"]["priority"] == "HIGH"
    assert sim.stats()["fcm"] == {"received": 5, "accepted": 5, "rejected": 0, "duplicates": 0}


# --- 3. idempotency ---------------------------------------------------------------------------


def test_an_idempotency_key_sends_once_even_when_posted_concurrently(herald, sim, worker):
    specs = create_players(herald.app, [Spec(f"p{n}") for n in range(4)], timezone.now())
    request = {"contents": {"en": "Once"}, "included_segments": ["Subscribed Users"]}

    # Twice in a row: the replay answers the original body, marked as replayed.
    first_key = str(uuid.uuid4())
    first = herald.post_notification(idempotency_key=first_key, **request)
    again = herald.post_notification(idempotency_key=first_key, **request)
    assert first.status == again.status == 200
    assert first.body == again.body == {"id": first.body["id"], "recipients": 4, "external_id": first_key}
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"

    # Five at once with a new key: one notification, the same answer for all.
    second_key = str(uuid.uuid4())
    barrier = threading.Barrier(5)
    responses: list[Answer] = []

    def post() -> None:
        barrier.wait()
        responses.append(herald.post_notification(idempotency_key=second_key, **request))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(responses) == 5
    assert {r.status for r in responses} == {200}, [r.body for r in responses]
    bodies = {json.dumps(r.body, sort_keys=True) for r in responses}
    assert len(bodies) == 1, bodies
    second_id = responses[0].body["id"]
    assert responses[0].body == {"id": second_id, "recipients": 4, "external_id": second_key}
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1

    assert Notification.objects.filter(idempotency_key=first_key).count() == 1
    assert Notification.objects.filter(idempotency_key=second_key).count() == 1
    assert Notification.objects.count() == 2
    for notification_id in (first.body["id"], second_id):
        herald.wait_completed(notification_id, worker=worker)
        tokens = accepted_tokens(sim, notification_id)
        assert tokens == Counter({spec.identifier: 1 for spec in specs.values()})
    assert sim.stats()["fcm"] == {"received": 8, "accepted": 8, "rejected": 0, "duplicates": 0}


# --- 4. scheduling ----------------------------------------------------------------------------


def test_send_after_holds_the_notification_until_the_clock_reaches_it(herald, sim, worker):
    specs = create_players(herald.app, [Spec(f"p{n}") for n in range(3)], timezone.now())
    send_after = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    pacific = send_after.astimezone(fixed_zone(timedelta(hours=-7)))
    body = herald.send(
        contents={"en": "Later"},
        included_segments=["Subscribed Users"],
        send_after=pacific.strftime("%Y-%m-%d %H:%M:%S GMT-0700"),  # one of OneSignal's documented forms
    )
    assert body["recipients"] == 3
    notification = herald.notification(body["id"])
    assert notification["send_after"] == int(send_after.timestamp())
    assert (notification["completed_at"], notification["remaining"], notification["canceled"]) == (
        None,
        3,
        False,
    )

    time.sleep(3)  # the worker is idle: nothing may go out before send_after
    assert not accepted(sim)
    row = Notification.objects.get(pk=body["id"])
    assert row.status == Notification.Status.SCHEDULED and not DeliveryBatch.objects.exists()
    assert dispatch_due(now=send_after - timedelta(seconds=5))["notifications"] == 0

    # The clock reaches send_after: the notification is released and fanned out into batches due
    # at send_after, which the dispatcher then releases too (the beat would, every few seconds).
    assert dispatch_due(now=send_after + timedelta(seconds=1))["notifications"] == 1
    wait_fanned_out(body["id"])
    [batch] = DeliveryBatch.objects.filter(notification_id=body["id"])
    assert (batch.size, batch.available_at, batch.enqueued_at) == (3, send_after, None)
    time.sleep(1)
    assert not accepted(sim)
    assert dispatch_due(now=send_after + timedelta(seconds=1))["batches"] == 1
    notification = herald.wait_completed(body["id"], worker=worker)
    assert (notification["successful"], notification["failed"], notification["errored"]) == (3, 0, 0)
    assert accepted_tokens(sim, body["id"]) == Counter({spec.identifier: 1 for spec in specs.values()})


def local_due(base: datetime, hour: int, minute: int, zone) -> datetime:
    """The first instant at or after ``base`` when a clock in ``zone`` shows hour:minute."""
    local = base.astimezone(zone)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due < local:
        due = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due.astimezone(UTC)


def test_timezone_delivery_releases_each_player_at_their_local_time(herald, sim, worker):
    # name -> (timezone offset, timezone_id); where both are known, the IANA id wins.
    zones = {
        "utc": (0, None),
        "no-zone": (None, None),  # UTC as well
        "plus3": (3 * 3600, None),
        "minus7": (-7 * 3600, None),
        "kolkata": (-8 * 3600, "Asia/Kolkata"),
        "new-york": (3600, "America/New_York"),
    }
    specs = create_players(
        herald.app,
        [Spec(name, timezone=offset, timezone_id=zone_id) for name, (offset, zone_id) in zones.items()],
        timezone.now(),
    )
    # 2 h 7 min ahead on a UTC clock: every player's local time is more than the ETA horizon
    # away, so no batch is sent by countdown; only dispatch_due releases them.
    at = timezone.now().astimezone(UTC) + timedelta(hours=2, minutes=7)
    body = herald.send(
        contents={"en": "Good morning"},
        included_segments=["Subscribed Users"],
        delayed_option="timezone",
        delivery_time_of_day=f"{at.hour}:{at.minute:02d}",
    )
    row = wait_fanned_out(body["id"])
    base = row.queued_at

    def zone_of(name: str):
        offset, zone_id = zones[name]
        if zone_id:
            return ZoneInfo(zone_id)
        return fixed_zone(timedelta(seconds=offset or 0))

    expected = {name: local_due(base, at.hour, at.minute, zone_of(name)) for name in zones}
    assert min(expected.values()) > timezone.now() + timedelta(minutes=10)
    steps = sorted(set(expected.values()))
    assert len(steps) == 5  # utc and no-zone share one
    for name, spec in specs.items():
        batch = (
            Delivery.objects.select_related("batch").get(notification_id=body["id"], player_id=spec.id).batch
        )
        assert (batch.available_at, batch.enqueued_at) == (expected[name], None), name
    notification = herald.notification(body["id"])
    assert (notification["delayed_option"], notification["remaining"]) == ("timezone", 6)

    assert dispatch_due(now=steps[0] - timedelta(minutes=1))["batches"] == 0
    time.sleep(1)
    assert not accepted(sim)
    for step, due in enumerate(steps):
        assert dispatch_due(now=due + timedelta(seconds=1))["batches"] == 1
        reached = {specs[name].identifier for name, when in expected.items() if when <= due}
        wait_for(
            lambda reached=reached: (
                set(accepted_tokens(sim, body["id"])) == reached
                and not DeliveryBatch.objects.filter(notification_id=body["id"], status="sending").exists()
            ),
            timeout=30,
            what=f"step {step}: {sorted(n for n, w in expected.items() if w <= due)}",
        )
        # The others are still held (nothing ahead of its local time) until the clock moves on.
        assert set(accepted_tokens(sim, body["id"])) == reached
        notification = herald.notification(body["id"])
        assert notification["remaining"] == 6 - len(reached)
        assert (notification["completed_at"] is None) == (step < len(steps) - 1)
    notification = herald.wait_completed(body["id"], worker=worker)
    assert (notification["successful"], notification["remaining"]) == (6, 0)
    assert sim.stats()["fcm"]["duplicates"] == 0


# --- 5. cancel --------------------------------------------------------------------------------


def test_cancel_mid_way_stops_the_batches_not_yet_sent(herald, sim, worker):
    specs = create_players(herald.app, [Spec(f"p{n:02d}") for n in range(20)], timezone.now())
    tokens = {spec.identifier for spec in specs.values()}
    # 120 a minute: batches of 2, one a second, over ten seconds.
    body = herald.send(
        contents={"en": "Slowly"}, included_segments=["Subscribed Users"], throttle_rate_per_minute=120
    )
    assert body["recipients"] == 20
    wait_for(lambda: accepted_tokens(sim, body["id"]), timeout=15, what="the first deliveries", interval=0.05)
    response = herald.cancel(body["id"])
    assert (response.status, response.body) == (200, {"success": True})
    canceled_at = time.monotonic()

    # A batch already claimed may finish; nothing else goes out, now or later.
    wait_for(
        lambda: not DeliveryBatch.objects.filter(notification_id=body["id"], status="sending").exists(),
        timeout=15,
        what="the batch in flight to finish",
    )
    sent = accepted_tokens(sim, body["id"])
    time.sleep(max(0.0, 4 - (time.monotonic() - canceled_at)))
    assert accepted_tokens(sim, body["id"]) == sent
    assert set(sent) < tokens and set(sent.values()) == {1}
    assert len(sent) <= 3 * 2, sent  # the first batch, and at most two more that were claimed meanwhile

    notification = herald.notification(body["id"])
    never_attempted = Delivery.objects.filter(notification_id=body["id"], status=Delivery.Status.CANCELED)
    assert notification["canceled"] is True and notification["completed_at"] is None
    assert (notification["successful"], notification["failed"], notification["errored"]) == (len(sent), 0, 0)
    assert notification["remaining"] == 20 - len(sent) == never_attempted.count()
    assert {d.player.identifier for d in never_attempted.select_related("player")} == tokens - set(sent)
    assert not DeliveryBatch.objects.filter(notification_id=body["id"], status="pending").exists()
    # Cancelling again is fine; the notification never completes.
    assert herald.cancel(body["id"]).status == 200
    assert herald.notification(body["id"])["remaining"] == 20 - len(sent)


# --- 6. throttling ----------------------------------------------------------------------------


def test_throttle_rate_spreads_the_sends_over_time(herald, sim, worker):
    specs = create_players(herald.app, [Spec(f"p{n}") for n in range(10)], timezone.now())
    body = herald.send(
        contents={"en": "Two a second"}, included_segments=["Subscribed Users"], throttle_rate_per_minute=120
    )
    notification = herald.wait_completed(body["id"], worker=worker)
    # Not in the read model (see notification_output); the rate is kept on the row.
    assert "throttle_rate_per_minute" not in notification
    assert Notification.objects.get(pk=body["id"]).throttle_rate_per_minute == 120
    assert (notification["successful"], notification["remaining"]) == (10, 0)
    start = Notification.objects.get(pk=body["id"]).queued_at.timestamp()
    received = sorted(
        d["received_at"] for d in accepted(sim) if d["token"] in {s.identifier for s in specs.values()}
    )
    assert len(received) == 10
    span = received[-1] - received[0]
    per_second = Counter(math.floor(at - start) for at in received)
    print(f"throttled: span {span:.2f}s, per second {sorted(per_second.items())}")
    # Never ahead of the rate: the n-th pair goes out no earlier than n seconds after the start...
    for position, at in enumerate(received):
        assert at >= start + position // 2 - 0.05, (position, at - start)
    # ... so the sends span 10 / 2 - 1 seconds, less the lag of the first pair behind the start
    # (the fan-out runs after the request; the first batch is due at once, the others on time).
    assert span >= 10 / 2 - 1 - 1, received
    # ... and however late a batch runs, no second carries more than a batch and a half.
    assert max(per_second.values()) <= 3, per_second


# --- 8. gateway faults ------------------------------------------------------------------------


def test_gateway_faults_are_retried_and_every_recipient_ends_settled(herald, sim, worker):
    specs = create_players(herald.app, [Spec(f"p{n:02d}") for n in range(60)], timezone.now())
    gone = [specs["p07"], specs["p51"]]  # one in each batch
    sim.faults(
        fail_first={"UNAVAILABLE": 3},
        error_rates={"QUOTA_EXCEEDED": 0.2},
        retry_after=1,
        token_errors={spec.identifier: "UNREGISTERED" for spec in gone},
        seed=20240601,
    )
    body = herald.send(contents={"en": "Bumpy"}, included_segments=["Subscribed Users"])
    notification = herald.wait_completed(body["id"], worker=worker)

    requests = [d for d in sim.deliveries(platform="fcm") if notification_of(d) == body["id"]]
    by_status = Counter(d["status"] for d in requests)
    sends_per_token = Counter(d["token"] for d in requests)
    delivered = {d["token"] for d in requests if d["status"] == 200}
    print(
        f"gateway answers {dict(by_status)}; batch attempts",
        list(DeliveryBatch.objects.filter(notification_id=body["id"]).values_list("attempts", flat=True)),
    )
    assert by_status[503] == 3 and by_status[429] > 0 and by_status[404] >= 2
    assert notification["successful"] + notification["failed"] + notification["errored"] == 60
    assert notification["remaining"] == 0
    assert notification["successful"] == len(delivered)
    assert notification["failed"] == 2
    assert notification["errored"] == 60 - 2 - len(delivered)  # only retries that ran out
    # Each recipient is settled: sent once, failed (gone) or errored; nothing retried forever.
    assert sim.stats()["fcm"]["duplicates"] == 0
    assert max(sends_per_token.values()) <= MAX_ATTEMPTS
    assert set(DeliveryBatch.objects.filter(notification_id=body["id"]).values_list("status", flat=True)) == {
        "done"
    }
    assert max(
        DeliveryBatch.objects.filter(notification_id=body["id"]).values_list("attempts", flat=True)
    ) <= (MAX_ATTEMPTS)
    outcomes = dict(Delivery.objects.filter(notification_id=body["id"]).values_list("player_id", "status"))
    assert set(outcomes.values()) <= {Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.ERRORED}
    for spec in gone:
        assert outcomes[uuid.UUID(spec.id)] == Delivery.Status.FAILED
        assert Delivery.objects.get(notification_id=body["id"], player_id=spec.id).error == "UNREGISTERED"
        assert sends_per_token[spec.identifier] >= 1 and spec.identifier not in delivered
    # The unregistered tokens unsubscribed their players (invalid_identifier), and only them.
    invalid = set(Player.objects.filter(app=herald.app, invalid_identifier=True).values_list("pk", flat=True))
    assert invalid == {uuid.UUID(spec.id) for spec in gone}
    assert notification["platform_delivery_stats"]["android"]["failed"] == 2

    # The next send no longer counts them, and does not reach them.
    sim.faults()
    again = herald.send(contents={"en": "Again"}, included_segments=["Subscribed Users"])
    assert again["recipients"] == 58
    herald.wait_completed(again["id"], worker=worker)
    assert set(accepted_tokens(sim, again["id"])) == {s.identifier for s in specs.values()} - {
        s.identifier for s in gone
    }


# --- 9. opens and receipts --------------------------------------------------------------------


def test_opens_and_receipts_are_counted_once_per_player(herald, sim, worker):
    specs = create_players(herald.app, [Spec("reader"), Spec("other")], timezone.now())
    body = herald.send(contents={"en": "Read me"}, included_segments=["Subscribed Users"])
    herald.wait_completed(body["id"], worker=worker)
    reader = specs["reader"].id
    path = f"/notifications/{body['id']}"
    for _ in range(2):
        opened = herald.call(
            "PUT",
            path,
            {"app_id": herald.app_id, "player_id": reader, "opened": True, "device_type": 1},
            keyed=False,
        )
        assert (opened.status, opened.body) == (200, {"success": True})
        received = herald.call(
            "PUT",
            f"{path}/report_received",
            {"app_id": herald.app_id, "player_id": reader, "device_type": 1},
            keyed=False,
        )
        assert (received.status, received.body) == (200, {"success": True})
    stranger = herald.call(
        "PUT", path, {"app_id": herald.app_id, "player_id": str(uuid.uuid4()), "opened": True}, keyed=False
    )
    assert stranger.status == 400

    notification = herald.notification(body["id"])
    assert (notification["converted"], notification["received"], notification["successful"]) == (1, 1, 2)
    assert notification["platform_delivery_stats"] == {
        "android": {"successful": 2, "failed": 0, "errored": 0, "converted": 1, "received": 1}
    }
    delivery = Delivery.objects.get(notification_id=body["id"], player_id=reader)
    assert delivery.opened_at is not None and delivery.received_at is not None


# --- 7. recovery from a killed worker ---------------------------------------------------------

RECOVERY_PLAYERS = 3000


@pytest.fixture
def private_queue(monkeypatch) -> Iterator[str]:
    """A broker queue of this test's own, so that only the workers it starts (on
    ``tests.e2e.queue_worker_app``) run its tasks, never the module's shared worker.

    This process sends the pipeline's tasks there too (the API's fan-out, ``dispatch_due``'s
    batches). Afterwards the queue, its binding and any message a killed worker had taken (left
    in the broker's unacked set) are removed.
    """
    queue = f"e2e-recovery-{uuid.uuid4().hex[:8]}"
    for task in (fan_out_task, deliver_batch_task):
        monkeypatch.setattr(task, "apply_async", functools.partial(task.apply_async, queue=queue))
    yield queue
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.delete(queue, f"_kombu.binding.{queue}")
    for tag, raw in broker.hgetall("unacked").items():
        try:
            _, exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            continue
        if queue in (exchange, routing_key):
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes of group ``pgid`` that still run (zombies excluded), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_group(process) -> None:
    """SIGKILL the worker and its pool's children (its own process group), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def seed_android_players(app, count: int) -> list[str]:
    tokens = [f"fcm:recovery-{n:05d}-{secrets.token_hex(8)}" for n in range(count)]
    Player.objects.bulk_create(
        [Player(app=app, device_type=ANDROID, identifier=token) for token in tokens], batch_size=1000
    )
    return tokens


def test_a_worker_killed_mid_fan_out_loses_nobody(herald, sim, private_queue, e2e_media_root, tmp_path):
    tokens = set(seed_android_players(herald.app, RECOVERY_PLAYERS))
    sim.faults(latency_ms=20)  # slower sends: the kill lands with a batch in flight
    env = worker_env(e2e_media_root, {**gateway_env(sim), "HERALD_E2E_QUEUE": private_queue})
    options = {"app": QUEUE_APP, "pool": "prefork", "concurrency": 2, "new_session": True}
    started = []
    try:
        first = start_worker(tmp_path / "first-worker.log", env, **options)
        started.append(first)
        assert len(live_group_members(first.pid)) == 3  # the worker and its pool's two children
        body = herald.send(contents={"en": "Survive"}, included_segments=["Subscribed Users"])
        assert body["recipients"] == RECOVERY_PLAYERS
        notification_id = body["id"]
        batches = DeliveryBatch.objects.filter(notification_id=notification_id)

        # One child fans out while the other sends the first batches: kill -9 both, mid-way.
        def mid_fan_out() -> bool:
            row = Notification.objects.only("fanout_cursor", "fanout_done", "recipients").get(
                pk=notification_id
            )
            if row.fanout_done:
                pytest.fail("the fan-out finished before the test could kill the worker")
            return (
                row.fanout_cursor is not None
                and row.recipients >= 4 * FANOUT_CHUNK
                and batches.filter(status="sending").exists()
            )

        wait_for(mid_fan_out, timeout=60, what="the fan-out and delivery to get going", interval=0.01)
        kill_group(first)
        wait_for(lambda: not live_group_members(first.pid), timeout=10, what="the worker's children to die")
        at_kill = Notification.objects.get(pk=notification_id)
        # The batch being sent when the worker died (rarely none: the kill fell between two batches).
        sending = batches.filter(status="sending")
        in_flight = set(
            Delivery.objects.filter(batch__in=sending).values_list("player__identifier", flat=True)
        )
        print(
            f"killed mid-fan-out: {at_kill.recipients}/{RECOVERY_PLAYERS} fanned out, batches "
            f"{dict(Counter(batches.values_list('status', flat=True)))}, {at_kill.successful} recorded sent, "
            f"{sim.stats()['fcm']['accepted']} accepted at the simulator"
        )
        assert not at_kill.fanout_done and at_kill.recipients < RECOVERY_PLAYERS
        assert sending.count() <= 1 and len(in_flight) <= BATCH_SIZE
        leases_to_expire = sending.count()

        # Recovery as the beat would do it once leases and the redelivery grace have run out: the
        # stalled fan-out and the dead worker's batches (in flight, or taken from the queue and
        # lost with it) are queued again; a new worker takes them.
        # (The dead worker's database session may hold the notification's row lock a moment longer,
        # and dispatch_due skips locked rows: call it until it has taken the fan-out, as the beat would.)
        counts = Counter()
        wait_for(
            lambda: (
                counts.update(dispatch_due(now=timezone.now() + timedelta(seconds=120)))
                or counts["notifications"]
            ),
            timeout=15,
            what="dispatch_due to find the stalled fan-out",
            interval=0.2,
        )
        assert (counts["notifications"], counts["expired_leases"]) == (1, leases_to_expire), counts
        second = start_worker(tmp_path / "second-worker.log", env, **options)
        started.append(second)
        redispatches = 0
        deadline = time.monotonic() + 90
        progress, progress_at = None, time.monotonic()
        while (notification := herald.notification(notification_id))["completed_at"] is None:
            if second.poll() is not None:
                pytest.fail(f"the second worker died:\n{second.log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not recovered: {notification}\n{second.log_path.read_text()[-5000:]}")
            state = Notification.objects.values_list("recipients", "remaining").get(pk=notification_id)
            if state != progress:
                progress, progress_at = state, time.monotonic()
            elif time.monotonic() - progress_at > 15:  # stuck: let the dispatcher look again
                dispatch_due(now=timezone.now() + timedelta(seconds=120))
                redispatches += 1
                progress_at = time.monotonic()
            time.sleep(0.5)
        stop_worker(second)
        log = second.log_path.read_text()
        assert "Traceback" not in log and " ERROR " not in log, log[-5000:]
    finally:
        for process in started:
            kill_group(process)

    # Nobody lost: every player has its delivery row, sent, and got the message at least once.
    assert notification["remaining"] == 0 and notification["canceled"] is False
    assert (notification["successful"], notification["failed"], notification["errored"]) == (
        RECOVERY_PLAYERS,
        0,
        0,
    )
    row = Notification.objects.get(pk=notification_id)
    assert row.recipients == RECOVERY_PLAYERS and row.fanout_done
    statuses = Counter(
        Delivery.objects.filter(notification_id=notification_id).values_list("status", flat=True)
    )
    assert statuses == {Delivery.Status.SENT: RECOVERY_PLAYERS}
    assert set(batches.values_list("status", flat=True)) == {"done"}
    assert sum(batches.values_list("size", flat=True)) == RECOVERY_PLAYERS
    received = accepted_tokens(sim, notification_id)
    assert set(received) == tokens
    # Duplicates come only from the batch that was in flight when the worker died.
    duplicates = sum(received.values()) - len(received)
    print(
        f"recovery: {duplicates} duplicate sends (batch size {BATCH_SIZE}), {redispatches} extra dispatches"
    )
    assert sim.stats()["fcm"]["duplicates"] == duplicates
    assert {token for token, count in received.items() if count > 1} <= in_flight
    assert duplicates <= BATCH_SIZE


# --- 10. the official client ------------------------------------------------------------------


def test_official_python_client_5_18_sends_reads_cancels_and_manages_segments(
    live_server, herald, sim, worker, run_client
):
    specs = create_players(
        herald.app, [Spec("high", tags={"level": "9"}), Spec("low", tags={"level": "2"})], timezone.now()
    )
    segment_name = f"Level over 5 {uuid.uuid4().hex[:6]}"
    key = str(uuid.uuid4())
    send_after = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    created = run_client(
        "os518",
        "os518_notifications.py",
        "create",
        live_server.url,
        herald.key,
        herald.app_id,
        extra={"segment_name": segment_name, "idempotency_key": key, "send_after": send_after.isoformat()},
    )
    assert created["client_version"] == "5.18.0"
    segment_id = created["segment"]["id"]
    assert created["segment"] == {"success": True, "id": segment_id, "_type": "CreateSegmentSuccessResponse"}
    listed = created["segments"]
    assert (listed["_type"], listed["total_count"]) == ("GetSegmentsSuccessResponse", 6)
    assert [s["name"] for s in listed["segments"]][-1] == segment_name
    sent = created["sent"]
    assert sent == {
        "id": sent["id"],
        "recipients": 1,
        "external_id": key,
        "_type": "CreateNotificationSuccessResponse",
    }
    scheduled_id = created["scheduled"]["id"]
    before, after = created["scheduled_before"], created["scheduled_after"]
    assert before["_type"] == after["_type"] == "NotificationWithMeta"
    assert before["send_after"] == after["send_after"] == int(send_after.timestamp())
    assert (before["canceled"], before["remaining"], before["completed_at"]) == (False, 2, None)
    assert created["canceled"] == {"success": True, "_type": "GenericSuccessBoolResponse"}
    assert (after["canceled"], after["remaining"], after["completed_at"]) == (True, 2, None)
    assert created["get_unknown"]["status"] == 404
    assert created["get_unknown"]["body"] == {"errors": ["Notification not found"]}

    # The immediate one is delivered to the segment's member only; the cancelled one never goes.
    herald.wait_completed(sent["id"], worker=worker)
    assert dispatch_due(now=send_after + timedelta(seconds=1))["notifications"] == 0
    assert set(accepted_tokens(sim, sent["id"])) == {specs["high"].identifier}
    assert not accepted_tokens(sim, scheduled_id)

    read = run_client(
        "os518",
        "os518_notifications.py",
        "read",
        live_server.url,
        herald.key,
        herald.app_id,
        extra={"notification_id": sent["id"], "segment_id": segment_id},
    )
    notification = read["notification"]
    assert notification["_type"] == "NotificationWithMeta"
    assert (notification["successful"], notification["failed"], notification["errored"]) == (1, 0, 0)
    assert notification["remaining"] == 0 and notification["completed_at"] >= notification["queued_at"]
    assert notification["contents"] == {"en": "Hello from 5.18", "es": "Hola desde 5.18"}
    assert notification["included_segments"] == [segment_name]
    assert notification["platform_delivery_stats"]["android"]["successful"] == 1
    page = read["page"]
    assert (page["_type"], page["total_count"]) == ("NotificationSlice", 2)
    assert [n["id"] for n in page["notifications"]] == [scheduled_id, sent["id"]]  # newest first
    assert read["deleted"] == {"success": True, "_type": "GenericSuccessBoolResponse"}
    assert (read["deleted_again"]["status"], read["deleted_again"]["body"]) == (404, {"success": False})
    assert read["segments"]["total_count"] == 5
    assert segment_name not in [s["name"] for s in read["segments"]["segments"]]


def test_official_python_client_5_18_reads_a_throttled_notification(live_server, herald, run_client):
    create_players(herald.app, [Spec("p")], timezone.now())
    send_after = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    result = run_client(
        "os518",
        "os518_notifications.py",
        "throttled",
        live_server.url,
        herald.key,
        herald.app_id,
        extra={"send_after": send_after.isoformat()},
    )
    assert result["fetched"]["_type"] == "NotificationWithMeta"
