"""/metrics: who may scrape it, and that its counters move by exactly what happened.

Counters live in this test process (single-process mode), so every check compares two scrapes.
The delivery check sends real SMS through the gateway simulator, in-process (fan-out and the
delivery service, no worker); the multiprocess check writes counters from separate processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import QueueDepthCollector
from notifications.models import DeliveryBatch, Notification
from notifications.pipeline import notification_fan_out
from notifications.tasks import deliver_batch_task
from notifications.unsubscribe import unsubscribe_url
from players.models import DeviceType, Player
from tests.factories import PlayerFactory
from tests.gatewaysim.simulator import Simulator, running_simulator

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scraper(settings):
    settings.HERALD_METRICS_TOKEN = TOKEN
    settings.HERALD_METRICS_ALLOWED_NETWORKS = []
    client = Client()

    def scrape() -> Samples:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        return parse(response.content.decode())

    return scrape


# --- access -------------------------------------------------------------------------------------


def test_metrics_are_closed_when_neither_a_token_nor_a_network_is_configured(settings):
    settings.HERALD_METRICS_TOKEN = ""
    settings.HERALD_METRICS_ALLOWED_NETWORKS = []
    response = Client().get("/metrics")
    assert response.status_code == 403
    assert b"herald_" not in response.content


def test_the_token_is_required_and_compared_exactly(settings):
    settings.HERALD_METRICS_TOKEN = TOKEN
    settings.HERALD_METRICS_ALLOWED_NETWORKS = []
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Key {TOKEN}", "Bearer "):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401, header
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert answer.status_code == 200
    assert b"# TYPE herald_http_requests_total counter" in answer.content


def test_an_allowed_network_may_scrape_without_the_token_and_others_may_not(settings):
    settings.HERALD_METRICS_TOKEN = ""
    settings.HERALD_METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16", "::1/128"]
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200  # IPv4-mapped
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    # A forged X-Forwarded-For changes nothing: only the peer address counts.
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403
    assert client.post("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 405


def test_openmetrics_is_served_when_asked_for(scraper, settings):
    response = Client().get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text"
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


# --- HTTP requests ------------------------------------------------------------------------------


def test_requests_are_counted_by_route_pattern_and_status(api, own, scraper):
    players = PlayerFactory.create_batch(3, app=own.app)
    route = "api/v1/players/<str:player_id>"
    before = scraper()
    for player in players:
        assert api.get(f"/players/{player.id}?app_id={own.app.id}", key=own.app_key).status_code == 200
    assert api.get(f"/players/{players[0].id}/?app_id={own.app.id}", key="wrong").status_code == 400
    assert Client().get("/no/such/path/12345").status_code == 404
    after = scraper()
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("herald_http_requests_total", method="GET", route=route, status="200") == 3
    # The trailing-slash variant of the route counts under the same label.
    assert delta("herald_http_requests_total", method="GET", route=route, status="400") == 1
    assert delta("herald_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert delta("herald_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert delta("herald_http_request_duration_seconds_sum", method="GET", route=route) > 0
    # The previous scrape counted itself.
    assert delta("herald_http_requests_total", method="GET", route="metrics", status="200") == 1
    # Raw paths never become labels: no player id and no unknown path is in the exposition.
    assert all(str(player.id) not in text for player in players)
    assert "no/such/path" not in text


# --- deliveries ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[Simulator]:
    with running_simulator(tmp_path_factory.mktemp("metrics")) as simulator:
        yield simulator


def test_a_real_delivery_moves_the_delivery_unsubscribe_lag_and_progress_metrics(
    api, own, scraper, sim, settings
):
    """Three SMS recipients through the simulator: two accepted, one refused as an invalid number."""
    sim.reset()
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    own.app.sms_gateway_json = json.dumps(sim.sms_gateway())
    own.app.save()
    players = [
        PlayerFactory(app=own.app, device_type=DeviceType.SMS, identifier=f"+1555010000{i}") for i in range(3)
    ]
    sim.faults(platform="sms", token_errors={players[0].identifier: "InvalidNumber"})
    before = scraper()
    created = api.post(
        "/notifications",
        {
            "app_id": str(own.app.id),
            "contents": {"en": "Hi"},
            "sms_from": "+15550000000",
            "include_player_ids": [str(p.id) for p in players],
        },
        key=own.app_key,
    )
    assert created.status_code == 200 and created.json()["recipients"] == 3, created.content
    queued = scraper()
    assert value(queued, "herald_notifications_in_progress", status="queued") == 1
    notification_fan_out(notification_id=created.json()["id"])
    sending = scraper()
    assert value(sending, "herald_notifications_in_progress", status="sending") == 1
    assert value(sending, "herald_notification_recipients_remaining") == 3
    for batch_id in DeliveryBatch.objects.values_list("pk", flat=True):
        deliver_batch_task.apply(args=(batch_id,))  # runs the task (and its signals) in-process
    after = scraper()

    notification = Notification.objects.get(pk=created.json()["id"])
    assert (notification.successful, notification.failed, notification.status) == (2, 1, "completed")
    assert sim.stats()["sms"]["accepted"] == 2

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("herald_deliveries_total", platform="sms", result="successful") == 2
    assert delta("herald_deliveries_total", platform="sms", result="failed") == 1
    assert delta("herald_deliveries_total", platform="sms", result="errored") == 0
    assert delta("herald_unsubscribes_total", reason="InvalidNumber") == 1
    assert Player.objects.get(pk=players[0].pk).unsubscribed_reason == "InvalidNumber"
    assert delta("herald_batch_lag_seconds_count", platform="sms") == 1
    assert delta("herald_batch_lag_seconds_sum", platform="sms") > 0
    assert value(after, "herald_notifications_in_progress", status="sending") == 0
    assert value(after, "herald_notification_recipients_remaining") == 0


def test_an_email_unsubscribe_is_counted_once(own, scraper):
    player = PlayerFactory(app=own.app, device_type=DeviceType.EMAIL, identifier="a@example.com")
    path = unsubscribe_url(own.app.id, player.id, base_url="http://testserver").removeprefix(
        "http://testserver"
    )
    before = scraper()
    assert Client().post(path).status_code == 200
    assert Client().post(path).status_code == 200  # already unsubscribed: not counted again
    after = scraper()
    reason = ("herald_unsubscribes_total", frozenset({("reason", "unsubscribed")}))
    assert after.get(reason, 0) - before.get(reason, 0) == 1


# --- queue depth --------------------------------------------------------------------------------


def test_queue_depth_reads_redis_lists_including_priority_lists(scraper):
    queue = f"herald-metrics-test-{uuid.uuid4().hex[:8]}"
    broker = django_settings.CELERY_BROKER_URL
    try:
        deliver_batch_task.apply_async((0,), queue=queue)
        deliver_batch_task.apply_async((0,), queue=queue)
        deliver_batch_task.apply_async((0,), queue=queue, priority=9)
        lengths = QueueDepthCollector(broker, [queue, "celery"]).lengths()
        assert lengths[queue] == 3
    finally:
        client = redis.Redis.from_url(broker)
        for key in client.scan_iter(match=f"*{queue}*"):  # the lists and kombu's binding set
            client.delete(key)
    assert QueueDepthCollector(broker, [queue]).lengths() == {queue: 0}
    # The served metric covers the default queue.
    assert any(
        name == "herald_celery_queue_length" and ("queue", "celery") in labels for name, labels in scraper()
    )


def test_queue_depth_reads_the_embedded_sqlite_broker(tmp_path):
    path = tmp_path / "celery-broker.sqlite3"
    url = f"sqla+sqlite:///{path}"
    assert QueueDepthCollector(url, ["celery"]).lengths() == {"celery": 0}  # no file yet
    with Connection(url) as connection:
        queue = connection.SimpleQueue("celery")
        for n in range(4):
            queue.put({"n": n})
        queue.close()
    assert QueueDepthCollector(url, ["celery", "other"]).lengths() == {"celery": 4, "other": 0}


def test_an_unreachable_broker_gives_no_sample_and_no_error():
    collector = QueueDepthCollector("redis://127.0.0.1:1/0", ["celery"])
    [family] = list(collector.collect())
    assert family.name == "herald_celery_queue_length" and family.samples == []
    assert QueueDepthCollector("amqp://localhost//", ["celery"]).lengths() == {}


# --- multiprocess -------------------------------------------------------------------------------


def test_multiprocess_mode_sums_every_process(tmp_path, monkeypatch, settings):
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a scrape of this one sums them."""
    settings.HERALD_METRICS_TOKEN = TOKEN
    script = (
        "from core.metrics import DELIVERIES, record_unsubscribe\n"
        "DELIVERIES.labels(platform='apns', result='successful').inc(5)\n"
        "record_unsubscribe('Unregistered', 2)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert value(samples, "herald_deliveries_total", platform="apns", result="successful") == 10
    assert value(samples, "herald_unsubscribes_total", reason="Unregistered") == 4
    # The collectors still run in multiprocess mode.
    assert ("herald_notification_recipients_remaining", frozenset()) in samples
