"""Observability across processes: a real Celery worker counts deliveries into the Prometheus
multiprocess directory that this process's ``/metrics`` sums, and writes JSON log lines that carry
the task id and the notification and app ids, with no secret in them.

The worker runs with ``PROMETHEUS_MULTIPROC_DIR`` and ``HERALD_LOG_FORMAT=json`` (as ``make run``
and production run it); the directory is fresh for this module, so what a scrape shows is exactly
what the worker counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from core.health import HEARTBEAT_KEY
from notifications.models import Notification
from tests.conftest import ApiClient
from tests.e2e.support import settle
from tests.factories import PlayerFactory

pytestmark = pytest.mark.e2e

SMS = 14
TOKEN = "e2e-metrics-token-0123456789"
COMPLETION_TIMEOUT = 60


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prometheus-multiproc")


@pytest.fixture(scope="module")
def worker_extra_env(metrics_dir) -> dict[str, str]:
    """Overrides conftest's: multiprocess metrics, JSON logs, and the simulator on loopback."""
    return {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "HERALD_LOG_FORMAT": "json",
        "HERALD_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
        "HERALD_WORKER_HEARTBEAT_SECONDS": "1",
    }


@pytest.fixture(autouse=True)
def _settle(transactional_db) -> Iterator[None]:
    yield
    settle()


def scrape(metrics_dir: Path, monkeypatch, settings) -> dict[tuple[str, frozenset], float]:
    """This process's /metrics in multiprocess mode, over the worker's directory."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    settings.HERALD_METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_worker_deliveries_reach_metrics_and_its_json_logs_carry_the_ids(
    tenant, worker, sim, metrics_dir, monkeypatch, settings
):
    sim.reset()
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    app = tenant.app
    app.sms_gateway_json = json.dumps(sim.sms_gateway())
    app.save()
    players = [PlayerFactory(app=app, device_type=SMS, identifier=f"+1555020000{i}") for i in range(4)]
    sim.faults(platform="sms", token_errors={players[0].identifier: "InvalidNumber"})
    log_offset = worker.log_path.stat().st_size

    created = ApiClient("/api/v1").post(
        "/notifications",
        {
            "app_id": str(app.id),
            "contents": {"en": "Hi"},
            "sms_from": "+15550000000",
            "include_player_ids": [str(p.id) for p in players],
        },
        key=tenant.app_key,
    )
    assert created.status_code == 200 and created.json()["recipients"] == 4, created.content
    notification_id = created.json()["id"]
    deadline = time.monotonic() + COMPLETION_TIMEOUT
    while not Notification.objects.filter(pk=notification_id, completed_at__isnull=False).exists():
        assert time.monotonic() < deadline, worker.log_path.read_text()[-4000:]
        time.sleep(0.2)
    assert sim.stats()["sms"]["accepted"] == 3

    # Metrics: counted in the worker process, summed by this one's /metrics.
    samples = scrape(metrics_dir, monkeypatch, settings)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    assert value("herald_deliveries_total", platform="sms", result="successful") == 3
    assert value("herald_deliveries_total", platform="sms", result="failed") == 1
    assert value("herald_unsubscribes_total", reason="InvalidNumber") == 1
    assert value("herald_batch_lag_seconds_count", platform="sms") == 1
    assert value("herald_notifications_in_progress", status="sending") == 0
    assert any(name == "herald_celery_queue_length" for name, _ in samples)

    # Logs: every line the worker wrote during the test that is JSON carries the task context.
    with worker.log_path.open("rb") as log:
        log.seek(log_offset)
        text = log.read().decode(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, text[-4000:]
    fan_out = [line for line in lines if line.get("task_name") == "notifications.fan_out"]
    delivered = [line for line in lines if line.get("task_name") == "notifications.deliver_batch"]
    assert fan_out and delivered, text[-4000:]
    assert {line["notification_id"] for line in fan_out} == {notification_id}
    assert {line["notification_id"] for line in delivered} == {notification_id}
    assert {line["app_id"] for line in delivered} == {str(app.id)}
    assert all(line["task_id"] for line in fan_out + delivered)
    assert tenant.app_key not in text and tenant.user_key not in text


def test_the_running_worker_keeps_healthz_ready_with_its_heartbeat(worker):
    """The real worker's timer writes the heartbeat: deleted, it is back within a few seconds."""
    cache.delete(HEARTBEAT_KEY)
    assert Client().get("/healthz").status_code == 503

    deadline = time.monotonic() + 15
    while (response := Client().get("/healthz")).status_code != 200:
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.2)

    checks = response.json()["checks"]
    assert checks["worker"]["status"] == "ok" and checks["worker"]["age_seconds"] < 3
    assert checks["database"]["status"] == checks["redis"]["status"] == checks["broker"]["status"] == "ok"
