"""Prometheus metrics (prometheus_client), served at ``/metrics`` by ``core.metrics_views``.

Counted where things happen (in web and worker processes):

- ``herald_http_requests_total{method,route,status}`` and
  ``herald_http_request_duration_seconds{method,route}``: every request, labelled with the
  resolved URL pattern (``api/v1/players/<str:player_id>``), never the raw path, so the number
  of series is bounded by the URL conf;
- ``herald_deliveries_total{platform,result}``: recipients whose delivery ended, per gateway
  (``apns``, ``fcm``, ``webpush``, ...) and result (``successful``, ``failed``, ``errored``);
- ``herald_unsubscribes_total{reason}``: players Herald unsubscribed (a gateway refused the
  token, an email one-click unsubscribe), by reason;
- ``herald_batch_lag_seconds{platform}``: from a delivery batch being due (``available_at``:
  its creation for an immediate send, its slot for throttled or timezone sends, its retry time
  after a transient failure) to its outcomes being recorded.

Read at scrape time (custom collectors, so every scrape is current and no process has to keep
them up to date):

- ``herald_celery_queue_length{queue}``: messages waiting in each broker queue (Redis list
  lengths, every priority list summed; the embedded SQLite broker's visible messages);
- ``herald_notifications_in_progress{status}`` and ``herald_notification_recipients_remaining``:
  from the database.

Multi-process: gunicorn runs several web workers and Celery workers are separate processes. When
``PROMETHEUS_MULTIPROC_DIR`` is set in their environment (before they start: prometheus_client
chooses its storage at import), each process writes its counters to files there and a scrape of
any web worker sums them all. No gauge is kept per process, so files of dead processes can stay:
they hold totals that counters must keep.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "herald_http_requests",
    "HTTP requests served, by method, resolved URL route and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and resolved URL route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DELIVERIES = Counter(
    "herald_deliveries",
    "Recipients whose delivery ended, by gateway platform and result (successful, failed, errored).",
    ["platform", "result"],
)
UNSUBSCRIBES = Counter(
    "herald_unsubscribes",
    "Players Herald unsubscribed (invalid token, email unsubscribe link), by reason.",
    ["reason"],
)
BATCH_LAG = Histogram(
    "herald_batch_lag_seconds",
    "Time from a delivery batch being due (created, or its scheduled or retry time) to being sent.",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)

# Delivery.Status values -> the result label (the OneSignal counter names).
RESULTS = {1: "successful", 2: "failed", 3: "errored"}
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _label(value: Any) -> str:
    """Reasons come from gateways: keep label values short and plain."""
    return _LABEL_UNSAFE.sub("_", str(value))[:64] or "unknown"


def platform_label(device_type: int) -> str:
    from notifications.platforms import PROVIDER_FOR_DEVICE_TYPE

    return PROVIDER_FOR_DEVICE_TYPE.get(device_type) or f"device_type_{int(device_type)}"


def record_batch(
    batch: Any, totals: dict[int, int], unsubscribed: dict[str, list[Any]], *, now: datetime, finished: bool
) -> None:
    """One delivery batch's outcomes, once committed (``notifications.delivery._record``).

    ``totals`` maps Delivery statuses to recipient counts; ``unsubscribed`` maps reasons to the
    players unsubscribed for that reason. The lag is observed once the batch is finished (not
    going back for a retry), from ``available_at`` as it was when the batch was claimed.
    """
    platform = platform_label(batch.device_type)
    for status, count in totals.items():
        if count and status in RESULTS:
            DELIVERIES.labels(platform=platform, result=RESULTS[status]).inc(count)
    for reason, players in unsubscribed.items():
        if players:
            UNSUBSCRIBES.labels(reason=_label(reason)).inc(len(players))
    if finished and batch.available_at is not None:
        BATCH_LAG.labels(platform=platform).observe(max(0.0, (now - batch.available_at).total_seconds()))


def record_unsubscribe(reason: str, count: int = 1) -> None:
    if count:
        UNSUBSCRIBES.labels(reason=_label(reason)).inc(count)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)


# --- read at scrape time ----------------------------------------------------------------------


class QueueDepthCollector:
    """``herald_celery_queue_length{queue}``: messages waiting in the broker, read per scrape.

    Redis: the length of each queue's list, plus its priority lists (kombu keeps priorities
    3, 6 and 9 in ``<queue>\\x06\\x16<priority>``). The embedded SQLite broker (``sqla+sqlite``):
    the visible rows of kombu's message table, read-only. Any other broker, or a broker that does
    not answer within a second, yields no sample (and the scrape still succeeds).
    """

    def __init__(self, broker_url: str, queues: Iterable[str]):
        self.broker_url = broker_url
        self.queues = sorted(set(queues))

    def describe(self) -> list:
        return []  # nothing is read when the collector is registered, only when scraped

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "herald_celery_queue_length", "Messages waiting in each Celery broker queue.", labels=["queue"]
        )
        try:
            lengths = self.lengths()
        except Exception as exc:  # a broker outage must not break the scrape
            logger.warning("queue depth unavailable: %s", type(exc).__name__)
            lengths = {}
        for queue, length in sorted(lengths.items()):
            family.add_metric([queue], length)
        yield family

    def lengths(self) -> dict[str, int]:
        url = self.broker_url
        if url.startswith(("redis://", "rediss://", "unix://")):
            return self._redis_lengths()
        if url.startswith("sqla+sqlite:///"):
            return self._sqlite_lengths(url.removeprefix("sqla+sqlite:///"))
        return {}

    def _redis_lengths(self) -> dict[str, int]:
        import redis

        client = redis.Redis.from_url(self.broker_url, socket_timeout=1, socket_connect_timeout=1)
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for key in _priority_keys(queue):
                        pipe.llen(key)
                counts = pipe.execute()
        finally:
            client.close()
        per_queue = len(_priority_keys(""))
        return {
            queue: sum(counts[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(self.queues)
        }

    def _sqlite_lengths(self, path: str) -> dict[str, int]:
        if not os.path.exists(path):
            return dict.fromkeys(self.queues, 0)  # no message was ever sent
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as connection:
            try:
                rows = connection.execute(
                    "SELECT q.name, COUNT(m.id) FROM kombu_queue q "
                    "LEFT JOIN kombu_message m ON m.queue_id = q.id AND m.visible "
                    "GROUP BY q.name"
                ).fetchall()
            except sqlite3.OperationalError:  # tables not created yet
                rows = []
        found = {name: count for name, count in rows}
        return {queue: found.get(queue, 0) for queue in self.queues}


def _priority_keys(queue: str) -> list[str]:
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    return [queue if step == 0 else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS]


class DatabaseCollector:
    """Notifications in progress, read from the database per scrape (two indexed queries)."""

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Sum

        from notifications.models import Notification

        in_progress = GaugeMetricFamily(
            "herald_notifications_in_progress",
            "Notifications not yet completed or canceled, by status.",
            labels=["status"],
        )
        remaining = GaugeMetricFamily(
            "herald_notification_recipients_remaining",
            "Recipients not yet delivered to, over notifications that are sending.",
        )
        statuses = [Notification.Status.SCHEDULED, Notification.Status.QUEUED, Notification.Status.SENDING]
        try:
            counts = dict(
                Notification.objects.filter(status__in=statuses)
                .values_list("status")
                .annotate(n=Count("pk"))
                .order_by()
            )
            left = Notification.objects.filter(status=Notification.Status.SENDING).aggregate(
                n=Sum("remaining")
            )["n"]
        except Exception as exc:  # a database outage must not break the scrape
            logger.warning("notification metrics unavailable: %s", type(exc).__name__)
            return
        for status in statuses:
            in_progress.add_metric([status.value], counts.get(status.value, 0))
        remaining.add_metric([], left or 0)
        yield in_progress
        yield remaining


# --- exposition -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def broker_queues() -> set[str]:
    from config.celery import app

    queues = {app.conf.task_default_queue or "celery"}
    queues.update(queue.name for queue in app.conf.task_queues or ())
    return queues


def scrape(accept: str = "") -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when ``accept`` asks for it) and its
    content type: this process's metrics (every process's, in multiprocess mode) plus what the
    collectors read now."""
    from django.conf import settings

    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # this process's metrics, plus process_* and python_* ones
    registry.register(QueueDepthCollector(settings.CELERY_BROKER_URL, broker_queues()))
    registry.register(DatabaseCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
