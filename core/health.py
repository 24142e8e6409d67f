"""Health of a Herald deployment: ``GET /healthz`` (readiness) and ``GET /healthz/live`` (liveness).

Liveness answers 200 whenever this process serves requests: an orchestrator restarts the process
only when it stops answering, never because PostgreSQL or Redis is away (a restart would not fix
them). Readiness checks what sending needs:
- the database (``SELECT 1``);
- Redis, when one is configured (``PING``: the cache, the rate limits and the broker live there);
- the broker, through Celery's own connection;
- a worker heartbeat: every worker writes one into the cache every
  ``HERALD_WORKER_HEARTBEAT_SECONDS`` (``config/celery.py``), and the newest must be at most
  ``HERALD_WORKER_HEARTBEAT_MAX_AGE_SECONDS`` old. Without it notifications are accepted and
  never sent.

Both are unauthenticated, like every probe, so the body names checks and their states only: never
a host, a URL or an error message (which could carry either).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "herald:worker-heartbeat"
CHECK_TIMEOUT_SECONDS = 2


def record_worker_heartbeat(hostname: str) -> None:
    """Called by every worker on a timer: the newest heartbeat is what readiness reads."""
    cache.set(HEARTBEAT_KEY, {"at": time.time(), "worker": hostname}, timeout=24 * 3600)


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _redis() -> dict:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _broker() -> dict:
    with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
    return {}


class StaleHeartbeat(Exception):
    pass


def _worker() -> dict:
    heartbeat = cache.get(HEARTBEAT_KEY)
    if not heartbeat:
        raise StaleHeartbeat
    age = round(time.time() - heartbeat["at"], 1)
    if age > settings.HERALD_WORKER_HEARTBEAT_MAX_AGE_SECONDS:
        return {"status": "error", "error": "stale heartbeat", "age_seconds": age}
    return {"age_seconds": age}


def _checks() -> list[tuple[str, Callable[[], dict]]]:
    checks = [("database", _database)]
    if settings.REDIS_URL:
        checks.append(("redis", _redis))
    return [*checks, ("broker", _broker), ("worker", _worker)]


def _run(name: str, check: Callable[[], dict]) -> dict:
    started = time.monotonic()
    try:
        result = {"status": "ok", **check()}
    except StaleHeartbeat:
        result = {"status": "error", "error": "no heartbeat"}
    except Exception as exc:  # a failing dependency is reported, never raised
        logger.warning("health check %s failed: %s", name, type(exc).__name__)
        result = {"status": "error", "error": type(exc).__name__}
    result["ms"] = round(1000 * (time.monotonic() - started), 1)
    return result


@never_cache
@require_GET
def readiness_view(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(name, check) for name, check in _checks()}
    healthy = all(result["status"] == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def liveness_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
