"""Crash tests: parts of the stack die with ``kill -9`` during a large fan-out; nobody is lost.

Each test runs the real stack (``stack.Stack``: Granian, prefork Celery workers, the beat, a Redis
of its own, the gateway simulator) on the test database, posts one notification to an audience of
Android players, kills a part at random points while the notification is being delivered, restarts
it, and waits for ``completed_at``. Then the simulator's records are the evidence: every recipient
reached (``lost == 0``), duplicates counted. Recovery is the pipeline's own: leases that expire and
messages presumed lost are found again in PostgreSQL by the beat's ``dispatch_due``.

The clocks are short (10 s leases, 10 s redelivery grace, a sweep every second) so that recovery
is quick enough to watch; the mechanics are the production ones.

Short forms run in ``make test``; the long forms (200,000 recipients, 10 kills) are ``slow`` and run
by ``make soak``.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from notifications.delivery import record_step
from notifications.models import Delivery, DeliveryBatch
from tests.conftest import make_tenant
from tests.reliability.figures import fcm_notification_of, report, tally
from tests.reliability.stack import (
    FCM_PROJECT_ID,
    PROJECT_DIR,
    PgCluster,
    Stack,
    configure_fcm,
    pipeline_env,
    post_json,
    seed_android_players,
    state,
    wait_for,
)

pytestmark = pytest.mark.e2e

# Duplicates allowed per recipient: the bound (0.1%).
DUPLICATE_BOUND = 0.001


def resends_per_kill(recipients: int, pipeline_overrides: dict) -> int:
    """The design bound: a kill leaves unrecorded at most the step each of the worker's two pool
    processes was sending, and the step depends on the notification's size (``record_step``)."""
    env = pipeline_env(**pipeline_overrides)
    step_settings = ("HERALD_BATCH_SIZE", "HERALD_DELIVERY_RECORD_EVERY", "HERALD_CRASH_RESENDS_PER_MILLION")
    with override_settings(**{name: int(env[name]) for name in step_settings if name in env}):
        return 2 * record_step(recipients)


def send_to_everyone(stack: Stack, tenant, **fields) -> str:
    status, body = post_json(
        f"{stack.web_url}/api/v1/notifications",
        {"app_id": str(tenant.app.pk), "contents": {"en": "Survive"}, "included_segments": ["All"], **fields},
        key=tenant.app_key,
    )
    assert status == 200 and body["id"], body
    return body["id"]


def wait_completed(notification_id: str, timeout: float, stack: Stack) -> float:
    """Wait for ``completed_at``; returns when (monotonic)."""

    def done() -> bool:
        current = state(notification_id)
        return current.completed

    try:
        wait_for(done, timeout=timeout, what=f"notification {notification_id} to complete", interval=0.25)
    except pytest.fail.Exception:
        print(stack.logs("worker")[-6000:])
        raise
    return time.monotonic()


def assert_everyone_reached(notification_id: str, tokens: list[str], figures: dict, count: int) -> None:
    final = state(notification_id)
    assert (final.recipients, final.successful, final.failed, final.errored, final.remaining) == (
        count,
        count,
        0,
        0,
        0,
    ), final
    statuses = Counter(
        Delivery.objects.filter(notification_id=notification_id).values_list("status", flat=True)
    )
    assert statuses == {Delivery.Status.SENT: count}, statuses
    assert set(
        DeliveryBatch.objects.filter(notification_id=notification_id).values_list("status", flat=True)
    ) == {"done"}
    assert figures["lost"] == 0 and figures["distinct_reached"] == count, figures
    assert figures["strangers"] in (0, None), figures
    assert figures["duplicates"] == figures["sim_duplicates"], figures


def run_worker_kills(stack: Stack, sim, *, count: int, kills: int, seed: int, detailed: bool, timeout: float):
    rng = random.Random(seed)
    tenant = make_tenant()
    configure_fcm(tenant.app, sim)
    seeded_at = time.monotonic()
    tokens = seed_android_players(tenant.app, count)
    seed_seconds = time.monotonic() - seeded_at
    stack.start_web()
    stack.start_beat()
    worker = stack.start_worker()

    posted = time.monotonic()
    notification_id = send_to_everyone(stack, tenant)
    targets = sorted(rng.uniform(0.02, 0.9) for _ in range(kills))
    events = []
    last_kill = time.monotonic()
    for target in targets:
        wait_for(
            lambda t=target: (s := state(notification_id)).settled >= t * count or s.completed,
            timeout=timeout,
            what=f"{target:.0%} of the recipients settled",
            interval=0.02,
        )
        time.sleep(rng.uniform(0, 0.25))  # a random point within whatever the worker is doing
        at_kill = state(notification_id)
        if at_kill.completed:
            break
        stack.kill(worker)
        killed = last_kill = time.monotonic()
        in_flight = DeliveryBatch.objects.filter(notification_id=notification_id, status="sending").count()
        worker = stack.start_worker()
        restarted = time.monotonic()
        wait_for(
            lambda a=at_kill: (s := state(notification_id)).settled > a.settled or s.completed,
            timeout=timeout,
            what="progress after the restart",
            interval=0.05,
        )
        events.append(
            {
                "settled_at_kill": at_kill.settled,
                "fanned_out_at_kill": at_kill.recipients,
                "batches_sending_at_kill": in_flight,
                "restart_s": round(restarted - killed, 2),
                "kill_to_progress_s": round(time.monotonic() - killed, 2),
            }
        )
    completed = wait_completed(notification_id, timeout, stack)
    stack.assert_running()
    figures = tally(sim, tokens, detailed=detailed)
    attempts = Counter(
        DeliveryBatch.objects.filter(notification_id=notification_id).values_list("attempts", flat=True)
    )
    record = report(
        "worker_kill",
        pipeline={k: v for k, v in stack.env.items() if k.startswith("HERALD_") and "URL" not in k},
        recipients=count,
        kills=len(events),
        faults_injected=f"kill -9 of the worker's process group x{len(events)}",
        **figures,
        duplicate_rate=round(figures["duplicates"] / count, 5),
        post_to_completed_s=round(completed - posted, 1),
        last_kill_to_completed_s=round(completed - last_kill, 1),
        seed_s=round(seed_seconds, 1),
        batch_attempts=dict(attempts),
        kills_detail=events,
    )
    assert_everyone_reached(notification_id, tokens, figures, count)
    assert len(events) >= min(kills, 2), events
    return record


def test_worker_killed_at_random_points_loses_nobody(stack, sim, pipeline_overrides):
    record = run_worker_kills(stack, sim, count=5000, kills=3, seed=8, detailed=True, timeout=120)
    assert record["duplicates"] <= record["kills"] * resends_per_kill(5000, pipeline_overrides), record


SOAK_PIPELINE = {"HERALD_BATCH_SIZE": 1000, "HERALD_FANOUT_CHUNK": 5000}  # production's sizes


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    "pipeline_overrides",
    [SOAK_PIPELINE, {**SOAK_PIPELINE, "HERALD_DELIVERY_RECORD_EVERY": 200}],
    ids=["default-step", "record-every-200"],
)
def test_soak_worker_killed_ten_times_in_200k_fan_out(stack, sim, pipeline_overrides):
    """A kill resends up to one step per pool process: the design bound. With the default steps
    (``record_step``: 10 at this size) the duplicates must also stay within the issue's 0.1%;
    the former default (200 sends between records) is kept for comparison, bound by design only."""
    record = run_worker_kills(stack, sim, count=200_000, kills=10, seed=2026, detailed=False, timeout=1200)
    assert record["duplicates"] <= record["kills"] * resends_per_kill(200_000, pipeline_overrides), record
    if "HERALD_DELIVERY_RECORD_EVERY" not in pipeline_overrides:
        assert record["duplicates"] <= 200_000 * DUPLICATE_BOUND, record


# --- the beat (scheduler and sweeper) killed --------------------------------------------------------


def run_beat_kills(
    stack: Stack, sim, *, count: int, rate: int, beat_kills: int, worker_kills: int, seed: int, timeout
):
    """A scheduled, throttled notification while the beat is killed at random points, the first
    before the notification is due. Only the beat releases it, and (``HERALD_ETA_HORIZON_SECONDS``
    0 in this test) each throttled batch when its second comes; the worker is killed too, so that
    recovering its leases is also the (killed and restarted) beat's work."""
    rng = random.Random(seed)
    tenant = make_tenant()
    configure_fcm(tenant.app, sim)
    tokens = seed_android_players(tenant.app, count)
    stack.start_web()
    beat = stack.start_beat()
    worker = stack.start_worker()
    send_after = timezone.now() + timedelta(seconds=4)
    posted = time.monotonic()
    notification_id = send_to_everyone(
        stack, tenant, send_after=send_after.isoformat(), throttle_rate_per_minute=rate
    )
    time.sleep(rng.uniform(0.5, 2.5))
    stack.kill(beat)  # before the notification is due: nobody releases it until the beat is back
    beat = stack.start_beat()
    kills = [("beat", 0.0)]
    plan = [("beat", rng.uniform(0.05, 0.9)) for _ in range(beat_kills - 1)]
    plan += [("worker", rng.uniform(0.1, 0.8)) for _ in range(worker_kills)]
    for part, target in sorted(plan, key=lambda item: item[1]):
        wait_for(
            lambda t=target: (s := state(notification_id)).settled >= t * count or s.completed,
            timeout=timeout,
            what=f"{target:.0%} settled",
            interval=0.02,
        )
        time.sleep(rng.uniform(0, 0.5))
        if state(notification_id).completed:
            break
        if part == "beat":
            stack.kill(beat)
            beat = stack.start_beat()
        else:
            stack.kill(worker)
            worker = stack.start_worker()
        kills.append((part, round(state(notification_id).settled / count, 3)))
    completed = wait_completed(notification_id, timeout, stack)
    stack.assert_running()
    figures = tally(sim, tokens, detailed=count <= 20_000)
    record = report(
        "beat_kill",
        recipients=count,
        faults_injected=f"kill -9 of the beat x{sum(p == 'beat' for p, _ in kills)}, "
        f"of the worker x{sum(p == 'worker' for p, _ in kills)}",
        kills_at_settled_fraction=kills,
        **figures,
        duplicate_rate=round(figures["duplicates"] / count, 5),
        post_to_completed_s=round(completed - posted, 1),
    )
    assert_everyone_reached(notification_id, tokens, figures, count)
    return record


BEAT_PIPELINE = {"HERALD_ETA_HORIZON_SECONDS": 0}  # every batch not due yet waits for the beat


@pytest.mark.parametrize("pipeline_overrides", [BEAT_PIPELINE])
def test_beat_killed_at_random_points_loses_nobody(stack, sim, pipeline_overrides):
    record = run_beat_kills(
        stack, sim, count=3000, rate=12_000, beat_kills=3, worker_kills=1, seed=3, timeout=120
    )
    assert record["kills_at_settled_fraction"][-1][1] < 1.0, record  # the kills landed mid-way
    assert record["duplicates"] <= resends_per_kill(3000, pipeline_overrides), record


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("pipeline_overrides", [{**SOAK_PIPELINE, **BEAT_PIPELINE}])
def test_soak_beat_killed_ten_times_in_200k_fan_out(stack, sim):
    run_beat_kills(
        stack, sim, count=200_000, rate=120_000, beat_kills=10, worker_kills=2, seed=10, timeout=1500
    )


# --- the web killed between commit and enqueue --------------------------------------------------


def run_web_kills(
    stack: Stack, sim, monkeypatch, *, players: int, silent: int, posters: int, seconds: float, timeout=120
):
    """Two ways the web dies after the notification committed and before its fan-out was enqueued.

    1. Simulated exactly: ``silent`` notifications are created by the service with the enqueue
       removed (the process "died" right after COMMIT). Only the sweeper can start them.
    2. For real: ``posters`` clients post notifications in a loop while the web server is killed -9 and
       restarted. Every notification the API acknowledged, and every one it stored without
       answering, must be delivered to everybody.
    """
    import notifications.services as services

    tenant = make_tenant()
    configure_fcm(tenant.app, sim)
    tokens = seed_android_players(tenant.app, players)
    body = {"app_id": str(tenant.app.pk), "contents": {"en": "Committed"}, "included_segments": ["All"]}
    with monkeypatch.context() as patch:
        patch.setattr(services, "notification_enqueue", lambda notification: None)
        silent_ids = [
            services.notification_create(app=tenant.app, body=dict(body))[0]["id"] for _ in range(silent)
        ]
    committed = time.monotonic()
    web = stack.start_web()
    stack.start_beat()
    stack.start_worker()

    answered: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def post_loop() -> None:
        while not stop.is_set():
            try:
                status, answer = post_json(
                    f"{stack.web_url}/api/v1/notifications", body, key=tenant.app_key, timeout=10
                )
            except OSError as error:  # the web died under this request
                failures.append(type(error).__name__)
                time.sleep(0.1)
                continue
            if status == 200:
                answered.append(answer["id"])
            else:
                failures.append(str(status))
            time.sleep(0.05)

    threads = [threading.Thread(target=post_loop) for _ in range(posters)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 2)
    stack.kill(web)
    killed = time.monotonic()
    stack.start_web()
    restarted = time.monotonic()
    time.sleep(seconds / 2)
    stop.set()
    for thread in threads:
        thread.join()

    silent_done = [wait_completed(notification_id, timeout, stack) for notification_id in silent_ids]
    from notifications.models import Notification

    stored = [str(pk) for pk in Notification.objects.filter(app=tenant.app).values_list("pk", flat=True)]
    for notification_id in stored:
        wait_completed(notification_id, timeout, stack)
    stack.assert_running()
    pairs = Counter(
        (d["token"], fcm_notification_of(d)) for d in sim.deliveries(platform="fcm") if d["status"] == 200
    )
    wanted = {(token, notification_id) for token in tokens for notification_id in stored}
    record = report(
        "web_kill",
        faults_injected=f"{silent} notifications committed with no enqueue; web server (Granian) kill -9 x1 "
        f"under {posters} posting clients",
        players=players,
        silent_recovered_after_s=[round(done - committed, 1) for done in silent_done],
        answered_200=len(answered),
        failed_requests=Counter(failures),
        stored=len(stored),
        stored_unanswered=len(set(stored) - set(answered) - set(silent_ids)),
        web_restart_s=round(restarted - killed, 1),
        lost=len(wanted - set(pairs)),
        duplicates=sum(n - 1 for n in pairs.values()),
    )
    assert set(answered) | set(silent_ids) <= set(stored)
    assert record["lost"] == 0 and not set(pairs) - wanted, record
    for notification_id in stored:
        final = state(notification_id)
        assert (final.successful, final.remaining) == (players, 0), (notification_id, final)
    grace = int(stack.env["HERALD_REDELIVERY_GRACE_SECONDS"])
    assert all(done - committed >= grace for done in silent_done), record  # only the sweeper started them
    return record


def test_web_killed_between_commit_and_enqueue_loses_nothing(stack, sim, monkeypatch):
    record = run_web_kills(stack, sim, monkeypatch, players=100, silent=2, posters=3, seconds=4)
    assert record["answered_200"] > 0 and record["duplicates"] == 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_web_killed_between_commit_and_enqueue(stack, sim, monkeypatch):
    run_web_kills(stack, sim, monkeypatch, players=200, silent=10, posters=4, seconds=20, timeout=900)


# --- PostgreSQL restarted mid-fan-out ---------------------------------------------------------------


def run_postgres_restart(
    stack: Stack, sim, tmp_path, *, count: int, restarts: int, down_seconds: float, timeout
):
    """The whole stack on a PostgreSQL cluster of the test's own, stopped with ``-m immediate`` (a
    crash: connections cut, WAL replayed) and started again mid-fan-out."""
    cluster = PgCluster()
    cluster.init()
    try:
        cluster.sql("CREATE DATABASE herald", database="postgres", autocommit=True)
        env = {**stack.env, "DATABASE_URL": cluster.url()}
        stack.env = env
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=PROJECT_DIR,
            env=env,
            check=True,
            timeout=300,
        )
        account = tmp_path / "account.json"
        account.write_text(json.dumps(sim.fcm_service_account(FCM_PROJECT_ID)))
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.reliability.pg_driver", str(count), str(account)],
            cwd=PROJECT_DIR,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        tenant = json.loads(seeded.stdout.strip().splitlines()[-1])
        tokens = tenant["tokens"]
        stack.start_web()
        stack.start_beat()
        stack.start_worker()

        def current(notification_id: str) -> tuple:
            try:
                return cluster.sql(
                    "SELECT successful + failed + errored, completed_at IS NOT NULL, successful, remaining "
                    "FROM notifications_notification WHERE id = %s",
                    notification_id,
                )[0]
            except Exception:  # the server is down right now
                return (-1, False, -1, -1)

        status, body = post_json(
            f"{stack.web_url}/api/v1/notifications",
            {"app_id": tenant["app_id"], "contents": {"en": "Restart"}, "included_segments": ["All"]},
            key=tenant["app_key"],
        )
        assert status == 200, body
        notification_id = body["id"]
        posted = time.monotonic()
        events = []
        for n in range(restarts):
            target = (n + 1) / (restarts + 2)
            wait_for(
                lambda t=target: current(notification_id)[0] >= t * count, timeout=timeout, what="progress"
            )
            settled = current(notification_id)[0]
            cluster.stop("immediate")
            stopped = time.monotonic()
            time.sleep(down_seconds)
            cluster.start()
            wait_for(
                lambda s=settled: current(notification_id)[0] > s or current(notification_id)[1],
                timeout=timeout,
                what="progress after PostgreSQL came back",
            )
            events.append(
                {"settled_at_stop": settled, "stop_to_progress_s": round(time.monotonic() - stopped, 1)}
            )
        wait_for(lambda: current(notification_id)[1], timeout=timeout, what="completion", interval=0.25)
        completed = time.monotonic()
        stack.assert_running()
        figures = tally(sim, tokens, detailed=count <= 20_000)
        _, _, successful, remaining = current(notification_id)
        statuses = dict(
            cluster.sql(
                "SELECT status, count(*) FROM notifications_delivery WHERE notification_id = %s "
                "GROUP BY status",
                notification_id,
            )
        )
        record = report(
            "postgres_restart",
            recipients=count,
            faults_injected=f"pg_ctl stop -m immediate, {down_seconds:.0f} s down, start; "
            f"x{restarts} mid-fan-out",
            restarts=events,
            **figures,
            duplicate_rate=round(figures["duplicates"] / count, 5),
            post_to_completed_s=round(completed - posted, 1),
        )
        assert (successful, remaining) == (count, 0)
        assert statuses == {1: count}, statuses  # every delivery row sent
        assert figures["lost"] == 0 and figures["distinct_reached"] == count, figures
        return record
    finally:
        stack.close()
        cluster.remove()


def test_postgres_restarted_mid_fan_out_loses_nobody(stack, sim, tmp_path, pipeline_overrides):
    record = run_postgres_restart(stack, sim, tmp_path, count=3000, restarts=1, down_seconds=2, timeout=180)
    assert record["duplicates"] <= resends_per_kill(3000, pipeline_overrides), record


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("pipeline_overrides", [SOAK_PIPELINE])
def test_soak_postgres_restarted_three_times_in_200k_fan_out(stack, sim, tmp_path):
    run_postgres_restart(stack, sim, tmp_path, count=200_000, restarts=3, down_seconds=10, timeout=1800)
