"""``GET /healthz`` (readiness: database, Redis, broker, worker heartbeat) and ``/healthz/live``.

The Redis cases run against a redis-server of their own on a free port, which the test stops:
never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from core.health import HEARTBEAT_KEY, record_worker_heartbeat
from tests.reliability.stack import RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(tmp_path, settings) -> Iterator[RedisServer]:
    """This process's cache and broker on a redis-server the test may stop."""
    server = RedisServer(tmp_path)
    server.start()
    settings.REDIS_URL = server.url(0)
    settings.CELERY_BROKER_URL = server.url(1)
    backend = "core.cache.RedisCache"
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": server.url(0)}}
    try:
        yield server
    finally:
        server.stop()


def test_ready_when_the_database_redis_broker_and_a_worker_are_up(client):
    record_worker_heartbeat("celery@test")

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "broker", "worker"}
    assert all(check["status"] == "ok" for check in body["checks"].values()), body
    assert 0 <= body["checks"]["worker"]["age_seconds"] < 5
    assert response["Cache-Control"].startswith("max-age=0")


def test_unready_without_any_worker_heartbeat(client):
    cache.delete(HEARTBEAT_KEY)

    response = client.get("/healthz/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["checks"]["worker"] == {
        "status": "error",
        "error": "no heartbeat",
        "ms": response.json()["checks"]["worker"]["ms"],
    }
    assert response.json()["checks"]["database"]["status"] == "ok"


def test_unready_when_the_newest_heartbeat_is_too_old(client, settings):
    settings.HERALD_WORKER_HEARTBEAT_MAX_AGE_SECONDS = 30
    cache.set(HEARTBEAT_KEY, {"at": time.time() - 45, "worker": "celery@gone"})

    response = client.get("/healthz")

    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker["error"] == "stale heartbeat" and 44 <= worker["age_seconds"] <= 50


def test_unready_when_redis_is_stopped_and_ready_again_when_it_is_back(client, own_redis):
    record_worker_heartbeat("celery@test")
    assert client.get("/healthz").status_code == 200

    own_redis.stop()
    response = client.get("/healthz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["redis"]["status"] == "error" and checks["redis"]["error"] == "ConnectionError"
    assert checks["broker"]["status"] == "error"
    assert checks["worker"]["status"] == "error"  # the heartbeat lives in Redis
    assert client.get("/healthz/live").status_code == 200  # alive: a restart would not bring Redis back

    own_redis.start()
    record_worker_heartbeat("celery@test")
    assert client.get("/healthz").status_code == 200


def test_the_body_names_no_host_or_url(client, own_redis):
    own_redis.stop()

    text = client.get("/healthz").content.decode()

    assert str(own_redis.port) not in text and "127.0.0.1" not in text and "redis://" not in text


def test_liveness_needs_nothing(client):
    response = client.get("/healthz/live")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_only_get(client):
    assert client.post("/healthz").status_code == 405
