"""The django-push-notifications peer baseline (bench/peer.py) at a tiny size, so that it cannot
rot: for Android (FCM), iOS (APNs) and Chrome Web Push, the library's own bulk path delivers every
identity to a real gateway simulator, through the redirected gateway hosts. Nothing is timed.

The peer's tables go to a database of this test's own (created and dropped here); the App is
made in the test database by ``bootstrap_demo`` and rolled back with the test.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg import sql

from bench import stack
from bench.peer import peer_baseline
from players.seeding import PLATFORMS, identities

pytestmark = pytest.mark.e2e

COUNT = 30
BODY = {"included_segments": ["Subscribed Users"], "contents": {"en": "Hello"}}


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    """bench.stack's simulator: the object the benchmarks pass (urls, ca_path, cpu_seconds)."""
    with stack.simulator(tmp_path_factory.mktemp("peer-sim")) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def peer_database_url(django_db_setup):
    from tests.e2e.conftest import _test_database_url

    server = _test_database_url().rsplit("/", 1)[0]
    name = f"herald_peer_test_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app(db, settings, sink):
    from apps.demo import bootstrap_demo
    from apps.models import App
    from apps.vapid import ensure_vapid_keys

    # What `make run` and the benchmarks wire: every channel at the simulator.
    settings.HERALD_FCM_BASE_URL = sink.urls["fcm"]
    settings.HERALD_GATEWAYSIM_CONTROL_URL = sink.control_url
    credentials = bootstrap_demo(org_name="peer")
    app = ensure_vapid_keys(App.objects.get(pk=credentials.app_id))
    assert app.fcm_service_account_json and app.apns_p8 and app.vapid_private_key
    return app


@pytest.mark.parametrize("name", ["android", "ios", "web"])
def test_peer_delivers_every_identity(app, sink, peer_database_url, name):
    platform = PLATFORMS[name]
    people = identities(platform, COUNT, sink, app.vapid_public_key, prefix="peer")
    before = sink.stats()[platform.simulator]

    # A small chunk, so that the bulk path is called more than once.
    result = peer_baseline(platform, app, people, BODY, sink, database_url=peer_database_url, chunk=12)

    after = sink.stats()[platform.simulator]
    assert result.platform == name and result.requests == COUNT
    assert result.seconds > 0 and result.sink_cpu_seconds >= 0
    assert after["accepted"] - before["accepted"] == COUNT
    assert after["rejected"] == before["rejected"]
    with psycopg.connect(peer_database_url) as conn:
        table = {"android": "gcmdevice", "ios": "apnsdevice", "web": "webpushdevice"}[name]
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"push_notifications_{table}"))
        [(left,)] = conn.execute(query).fetchall()
    assert left == 0  # the child deletes the devices it inserted


def test_other_platforms_have_no_peer(app, sink, peer_database_url):
    with pytest.raises(ValueError, match="no django-push-notifications peer"):
        peer_baseline(PLATFORMS["email"], app, [], BODY, sink, database_url=peer_database_url)
