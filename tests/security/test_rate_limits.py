"""Rate limits (issue 8 §6): per key, per client address for keyless device calls, and the
dashboard login lockout (django-axes)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.models import App
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def call(method: str, path: str, body=None, *, key: str | None = None, address="203.0.113.5", **meta):
    extra = {"REMOTE_ADDR": address, **meta}
    if key:
        extra["HTTP_AUTHORIZATION"] = f"Key {key}"
    data = json.dumps(body) if body is not None else ""
    return Client().generic(method, path, data=data, content_type="application/json", **extra)


def register(app_id, n: int, **kw):
    body = {"app_id": str(app_id), "device_type": 1, "identifier": f"rate-{n}"}
    return call("POST", "/api/v1/players", body, **kw)


# --- per key --------------------------------------------------------------------------------------


def test_a_key_over_its_limit_is_429_and_other_keys_are_not(own, outsider, settings):
    settings.HERALD_RATE_LIMITS = {**settings.HERALD_RATE_LIMITS, "players_read": "2/h"}
    for tenant in (own, own):
        assert call("GET", f"/api/v1/players?app_id={tenant.app.id}", key=tenant.app_key).status_code == 200
    limited = call("GET", f"/players?app_id={own.app.id}", key=own.app_key)
    assert limited.status_code == 429
    assert limited.json() == {"errors": ["API rate limit exceeded."], "limit": "players_read"}
    assert 1 <= int(limited["Retry-After"]) <= 3600
    # Another organization's key has its own counter.
    assert call("GET", f"/players?app_id={outsider.app.id}", key=outsider.app_key).status_code == 200


# --- per client address, keyless device calls ------------------------------------------------------


@pytest.fixture
def three_per_window(settings):
    """Three keyless calls per address. Hourly windows: a fixed window that rolled over in the
    middle of a test (a minute boundary) would reset the count it checks."""
    settings.HERALD_RATE_LIMITS = {**settings.HERALD_RATE_LIMITS, "device_ip": "3/h"}


def test_keyless_device_calls_are_limited_per_client_address(own, three_per_window):
    for n in range(3):
        assert register(own.app.id, n).status_code == 200
    limited = register(own.app.id, 3)
    assert limited.status_code == 429
    assert limited.json() == {"errors": ["API rate limit exceeded."], "limit": "device_ip"}
    assert int(limited["Retry-After"]) >= 1
    assert own.app.players.filter(identifier="rate-3").count() == 0
    # Another address is not affected, and neither is the app's server calling with its key.
    assert register(own.app.id, 4, address="198.51.100.9").status_code == 200
    assert register(own.app.id, 5, key=own.app_key).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/players/{player}/on_session", {"app_id": "{app}"}),
        ("PUT", "/players/{player}", {"app_id": "{app}", "tags": {"a": "1"}}),
        ("POST", "/players/{player}/on_focus", {"app_id": "{app}", "state": "ping", "active_time": 5}),
        ("POST", "/outcomes/measure", {"app_id": "{app}", "id": "os__click", "device_type": 1}),
        ("GET", "/apps/{app}/web_push_public_key", None),
    ],
)
def test_every_keyless_device_endpoint_shares_the_address_limit(own, three_per_window, method, path, body):
    player = PlayerFactory(app=own.app)
    fill = {"app": str(own.app.id), "player": str(player.id)}
    path = path.format(**fill)
    body = json.loads(json.dumps(body).replace("{app}", fill["app"])) if body else None
    statuses = [call(method, path, body).status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429, statuses


def test_probing_app_ids_counts_against_the_limit(db, three_per_window):
    """Unknown app ids are counted too: the limit is checked before the app is looked up."""
    unknown = "00000000-0000-4000-8000-000000000000"
    statuses = [register(unknown, n).status_code for n in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_forwarded_for_is_trusted_only_through_the_configured_proxies(own, three_per_window, settings):
    # Behind one proxy, the client is the last X-Forwarded-For entry; what the client wrote
    # before it (a spoofed address that changes on every request) does not reset the count.
    settings.HERALD_TRUSTED_PROXY_COUNT = 1
    statuses = [
        register(
            own.app.id, n, address="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.7"
        ).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    # Another client behind the same proxy has its own count.
    other = register(own.app.id, 9, address="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 200
    # Without trusted proxies the header is ignored: the TCP peer is the client.
    settings.HERALD_TRUSTED_PROXY_COUNT = 0
    statuses = [
        register(own.app.id, 20 + n, address="192.0.2.50", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_an_app_that_requires_keys_refuses_keyless_calls_before_counting_players(own, three_per_window):
    App.objects.filter(pk=own.app.pk).update(allow_unauthenticated_device_calls=False)
    assert register(own.app.id, 0).status_code == 400  # legacy root: OneSignal's key error


# --- dashboard login lockout -----------------------------------------------------------------------


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_user("operator", password="right-pw", is_staff=True)


def login(username: str, password: str, address: str = "203.0.113.5"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response


def test_five_failures_lock_the_user_and_address_out(operator, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert login("operator", "wrong").status_code == 200  # the form again, with its error
    locked = login("operator", "wrong")
    assert locked.status_code == 429
    assert b"too many login attempts" in locked.content
    # Locked: even the right password is refused from this address.
    assert login("operator", "right-pw").status_code == 429
    # The lockout is for this user from this address: the same user elsewhere, and another user
    # from this address, still log in.
    assert login("operator", "right-pw", address="198.51.100.9").status_code == 302
    get_user_model().objects.create_user("colleague", password="their-pw", is_staff=True)
    assert login("colleague", "their-pw").status_code == 302
    attempt = AccessAttempt.objects.get(username="operator", ip_address="203.0.113.5")
    assert attempt.failures_since_start >= 5


def test_the_lockout_ends_after_the_cooloff(operator, settings):
    for _ in range(5):
        login("operator", "wrong")
    assert login("operator", "right-pw").status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert login("operator", "right-pw").status_code == 302


def test_a_success_resets_the_failure_count(operator):
    for _ in range(4):
        login("operator", "wrong")
    assert login("operator", "right-pw").status_code == 302
    for _ in range(4):
        assert login("operator", "wrong").status_code == 200
    assert login("operator", "right-pw").status_code == 302
