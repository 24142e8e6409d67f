"""Crash tests: parts of the stack die with ``kill -9`` during a large fan-out; nobody is lost.

Each test runs the real stack (``stack.Stack``: gunicorn, prefork Celery workers, the beat, a Redis
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

import random
import time
from collections import Counter

import pytest
from django.conf import settings

from notifications.models import Delivery, DeliveryBatch
from tests.conftest import make_tenant
from tests.reliability.figures import report, tally
from tests.reliability.stack import (
    Stack,
    configure_fcm,
    post_json,
    seed_android_players,
    state,
    wait_for,
)

pytestmark = pytest.mark.e2e

# Duplicates allowed per recipient: the bound (0.1%).
DUPLICATE_BOUND = 0.001


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


def test_worker_killed_at_random_points_loses_nobody(stack, sim):
    record = run_worker_kills(stack, sim, count=5000, kills=3, seed=8, detailed=True, timeout=120)
    # A kill leaves unrecorded only the step each pool process was sending (HERALD_DELIVERY_RECORD_EVERY).
    assert record["duplicates"] <= record["kills"] * 2 * settings.HERALD_DELIVERY_RECORD_EVERY, record


SOAK_PIPELINE = {"HERALD_BATCH_SIZE": 1000, "HERALD_FANOUT_CHUNK": 5000}  # production's sizes


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("pipeline_overrides", [SOAK_PIPELINE])
def test_soak_worker_killed_ten_times_in_200k_fan_out(stack, sim):
    record = run_worker_kills(stack, sim, count=200_000, kills=10, seed=2026, detailed=False, timeout=1200)
    assert record["duplicates"] <= 200_000 * DUPLICATE_BOUND, record
