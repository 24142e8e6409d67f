"""Fan-out: one notification to N players, from POST to ``completed_at``, through real Celery
workers and the FCM simulator, compared in the same run with a raw client sending the same
requests to the same simulator with no database or queue.

    python -m bench fanout --players 100000 --mix android
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench import stack

MIX_DEVICE_TYPES = {"android": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--mix", default="android", help="comma-separated platforms (android for now)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--timeout", type=float, default=1800)


def machine() -> dict:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
    }


def seed_players(app_id: uuid.UUID, count: int, device_types: list[int]) -> None:
    """COPY, not the ORM: a million rows in seconds."""
    from django.db import connection

    now = datetime.now(UTC).isoformat()
    columns = (
        "id, app_id, device_type, identifier, language, tags, session_count, playtime, amount_spent, "
        "badge_count, notification_types, invalid_identifier, location_meta, created_at, last_active"
    )
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY players_player ({columns}) FROM STDIN") as copy,
    ):
        for i in range(count):
            copy.write_row(
                (
                    uuid.uuid4(),
                    app_id,
                    device_types[i % len(device_types)],
                    f"bench-token-{i:09d}",
                    "en",
                    f'{{"level": "{i % 50}"}}',
                    1,
                    0,
                    0,
                    0,
                    1,
                    False,
                    "{}",
                    now,
                    now,
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE players_player")


def raw_baseline(app, count: int) -> float:
    """Requests per second of the bare HTTP/2 client against the same simulator: the ceiling
    Herald's pipeline is measured against (no database, no queue, one pre-built body)."""
    import orjson

    from notifications.providers.base import Recipient, RenderedMessage
    from notifications.providers.fcm import _access_token, build_message
    from notifications.providers.http2 import Http2Client, HttpRequest

    token = _access_token(app.fcm_service_account_json)
    url = f"{os.environ['HERALD_FCM_BASE_URL']}/v1/projects/{app.fcm_project_id}/messages:send"
    message = RenderedMessage(
        notification_id=str(uuid.uuid4()), heading=None, content="Hello", subtitle=None, body={}
    )
    client = Http2Client(ca_file=os.environ["HERALD_GATEWAY_CA_FILE"], max_in_flight=200)
    headers = [f"authorization: Bearer {token}", "content-type: application/json"]
    requests = [
        HttpRequest(
            url=url,
            headers=headers,
            body=orjson.dumps(
                {
                    "message": build_message(
                        Recipient(
                            player_id=uuid.uuid4(),
                            device_type=1,
                            identifier=f"raw-{i}",
                            language="en",
                            tags={},
                        ),
                        message,
                    )
                }
            ),
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, 1000):
        responses = client.send_all(requests[start : start + 1000])
        assert all(r.status == 200 for r in responses), responses[0]
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    name = f"herald_bench_{os.getpid()}"
    with stack.fresh_database(args.database_url, name) as database_url, stack.simulator(work / "sim") as sim:
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "HERALD_VAR_DIR": str(work / "var"),
            "HERALD_FCM_BASE_URL": sim.fcm_url,
            "HERALD_GATEWAY_CA_FILE": sim.ca_path,
            "HERALD_LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        return _measure(args, sim, work, env)


def _measure(args, sim, work: Path, env: dict) -> int:
    from django.test import Client

    from apps.demo import simulator_service_account
    from apps.services import app_create, organization_create
    from notifications.models import Notification

    organization = organization_create(name="bench")
    app, app_key = app_create(organization=organization, data={"name": "bench"})
    app.fcm_service_account_json, app.fcm_project_id = simulator_service_account(), "bench"
    app.save()
    device_types = [MIX_DEVICE_TYPES[m] for m in args.mix.split(",")]
    seed_started = time.perf_counter()
    seed_players(app.id, args.players, device_types)
    seed_seconds = time.perf_counter() - seed_started

    raw_rate = raw_baseline(app, min(args.players, 50_000))
    _reset(sim)

    log = work / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            "bench@%h",
        ],
        cwd=stack.ROOT,
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        stack.wait_for_log(log, "ready.")
        worker_pids = stack.process_tree(worker.pid)
        cpu_before = stack.cpu_seconds(worker_pids)
        first_delivery: list[float] = []
        done = threading.Event()
        threading.Thread(target=_watch_first_delivery, args=(sim, first_delivery, done), daemon=True).start()

        client = Client()
        # Warm the process (imports, URL resolver, connection) so post_ms is the request's own cost.
        client.get(f"/api/v1/notifications?app_id={app.id}", HTTP_AUTHORIZATION=f"Key {app_key}")
        posted = time.perf_counter()
        response = client.post(
            "/api/v1/notifications",
            data=json.dumps(
                {
                    "app_id": str(app.id),
                    "included_segments": ["Subscribed Users"],
                    "contents": {"en": "Hello"},
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Key {app_key}",
        )
        post_seconds = time.perf_counter() - posted
        assert response.status_code == 200, response.content
        notification_id = response.json()["id"]
        deadline = posted + args.timeout
        while time.perf_counter() < deadline:
            notification = Notification.objects.get(pk=notification_id)
            if notification.completed_at:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - posted
        done.set()
        worker_pids = stack.process_tree(worker.pid)
        cpu = stack.cpu_seconds(worker_pids) - cpu_before
        peak_rss = max(stack.peak_rss_mb(pid) for pid in worker_pids)
        stats = _stats(sim)["fcm"]
    finally:
        stack.stop(worker)
    rate = notification.successful / elapsed if notification.completed_at else 0.0
    result = {
        "benchmark": "fanout",
        "players": args.players,
        "mix": args.mix,
        "worker_processes": args.concurrency,
        "completed": bool(notification.completed_at),
        "successful": notification.successful,
        "failed": notification.failed,
        "errored": notification.errored,
        "simulator_accepted": stats["accepted"],
        "simulator_duplicates": stats["duplicates"],
        "post_ms": round(post_seconds * 1000, 1),
        "seconds_post_to_completed": round(elapsed, 2),
        "deliveries_per_second": round(rate),
        "time_to_first_delivery_ms": round(first_delivery[0] * 1000) if first_delivery else None,
        "cpu_seconds_per_1000": round(cpu / max(1, notification.successful) * 1000, 3),
        "peak_worker_rss_mb": round(peak_rss, 1),
        "raw_baseline_per_second": round(raw_rate),
        "ratio_to_raw_baseline": round(rate / raw_rate, 3) if raw_rate else None,
        "seed_seconds": round(seed_seconds, 1),
        "machine": machine(),
    }
    print(json.dumps(result))
    return 0 if result["completed"] else 1


def _control(sim, path: str, body: dict | None = None) -> dict:
    import urllib.request

    request = urllib.request.Request(
        sim.control_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def _stats(sim) -> dict:
    return _control(sim, "/_sim/stats")


def _reset(sim) -> None:
    _control(sim, "/_sim/reset", {})


def _watch_first_delivery(sim, found: list[float], done: threading.Event) -> None:
    started = time.perf_counter()
    while not done.is_set():
        if _stats(sim)["fcm"]["accepted"] > 0:
            found.append(time.perf_counter() - started)
            return
        time.sleep(0.02)
