"""Broker loss: the stack's Redis dies mid-fan-out and comes back empty, or stays down a while.

PostgreSQL is the source of truth; Redis only carries ids. When Redis loses its data, every queued
message is gone, and the beat's ``dispatch_due`` finds the work again in PostgreSQL (pending batches
whose message was lost, a fan-out whose heartbeat stopped, leases that ran out). While Redis is
down, ``POST /notifications`` still answers: the notification is committed and its enqueue, which
fails, is left to the same sweeper once Redis is back.

The Redis killed here is the stack's own ``redis-server`` (``stack.RedisServer``), started with no
persistence, so a restart is a restart with its data lost.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from notifications.models import Notification
from tests.conftest import make_tenant
from tests.reliability.figures import fcm_notification_of, report, tally
from tests.reliability.stack import configure_fcm, post_json, seed_android_players, state, wait_for
from tests.reliability.test_crash import assert_everyone_reached, send_to_everyone, wait_completed

pytestmark = pytest.mark.e2e


def run_redis_restart(stack, sim, redis_server, *, count: int, timeout: float) -> dict:
    tenant = make_tenant()
    configure_fcm(tenant.app, sim)
    tokens = seed_android_players(tenant.app, count)
    stack.start_web()
    stack.start_beat()
    stack.start_worker()
    posted = time.monotonic()
    notification_id = send_to_everyone(stack, tenant)
    wait_for(
        lambda: state(notification_id).settled >= count * 0.3,
        timeout=timeout,
        what="30% of the recipients settled",
        interval=0.02,
    )
    at_loss = state(notification_id)
    redis_server.restart()  # kill -9, and back with nothing: every queued message is gone
    lost_at = time.monotonic()
    completed = wait_completed(notification_id, timeout, stack)
    stack.assert_running()
    figures = tally(sim, tokens, detailed=count <= 20_000)
    record = report(
        "redis_restart_data_lost",
        recipients=count,
        faults_injected="redis-server kill -9 and restart empty (no persistence), once, mid-fan-out",
        settled_at_loss=at_loss.settled,
        fanned_out_at_loss=at_loss.recipients,
        **figures,
        post_to_completed_s=round(completed - posted, 1),
        loss_to_completed_s=round(completed - lost_at, 1),
    )
    assert_everyone_reached(notification_id, tokens, figures, count)
    return record


def test_redis_restarted_empty_mid_fan_out_loses_nobody(stack, sim, redis_server):
    record = run_redis_restart(stack, sim, redis_server, count=5000, timeout=120)
    assert record["settled_at_loss"] < 5000


def run_redis_down(stack, sim, redis_server, *, down_seconds: float, players: int, timeout: float) -> dict:
    """Redis down for ``down_seconds`` while an app keeps posting notifications (one a second)."""
    tenant = make_tenant()
    configure_fcm(tenant.app, sim)
    tokens = seed_android_players(tenant.app, players)
    stack.start_web()
    stack.start_beat()
    stack.start_worker()
    url = f"{stack.web_url}/api/v1/notifications"
    body = {"app_id": str(tenant.app.pk), "contents": {"en": "Outage"}, "included_segments": ["All"]}
    before = post_json(url, body, key=tenant.app_key)
    assert before[0] == 200, before

    redis_server.kill()
    down_at = time.monotonic()
    answers = []
    while time.monotonic() - down_at < down_seconds:
        started = time.monotonic()
        status, answer = post_json(url, body, key=tenant.app_key, timeout=60)
        answers.append((status, answer, time.monotonic() - started))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    redis_server.start()  # back, and empty
    back_at = time.monotonic()
    stack.assert_running()
    after = post_json(url, body, key=tenant.app_key)
    assert after[0] == 200, after

    unexpected = [(s, a) for s, a, _ in answers if s not in (200, 503)]
    accepted = [before[1]["id"], *(a["id"] for s, a, _ in answers if s == 200), after[1]["id"]]
    refused = [a for s, a, _ in answers if s == 503]
    for notification_id in accepted:
        wait_completed(notification_id, timeout, stack)
    all_done = time.monotonic()
    pairs = Counter(
        (d["token"], fcm_notification_of(d)) for d in sim.deliveries(platform="fcm") if d["status"] == 200
    )
    rows = {str(pk) for pk in Notification.objects.filter(app=tenant.app).values_list("pk", flat=True)}
    wanted = {(token, notification_id) for token in tokens for notification_id in accepted}
    record = report(
        "redis_down",
        faults_injected=f"redis-server killed for {down_seconds:.0f} s, restarted empty",
        players=players,
        posts_while_down=len(answers),
        accepted_while_down=len(answers) - len(refused) - len(unexpected),
        refused_503=len(refused),
        unexpected=[s for s, _ in unexpected],
        max_post_seconds_while_down=round(max((t for *_, t in answers), default=0), 2),
        notifications_accepted=len(accepted),
        lost=len(wanted - set(pairs)),
        duplicates=sum(n - 1 for n in pairs.values()),
        back_to_all_completed_s=round(all_done - back_at, 1),
    )
    assert not unexpected, unexpected
    # Only what was accepted exists (a refusal stored nothing), and each of those reached every
    # player: the simulator saw each (token, notification) pair.
    assert rows == set(accepted), (rows, accepted)
    for notification_id in accepted:
        final = state(notification_id)
        assert (final.successful, final.remaining) == (players, 0), (notification_id, final)
    assert record["lost"] == 0 and set(pairs) == wanted
    assert record["duplicates"] == sim.stats()["fcm"]["duplicates"]
    return record


def test_redis_down_a_few_seconds_nothing_accepted_is_lost(stack, sim, redis_server):
    record = run_redis_down(stack, sim, redis_server, down_seconds=5, players=50, timeout=120)
    assert record["posts_while_down"] >= 3


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_redis_down_sixty_seconds_nothing_accepted_is_lost(stack, sim, redis_server):
    record = run_redis_down(stack, sim, redis_server, down_seconds=60, players=200, timeout=300)
    assert record["posts_while_down"] >= 30


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_soak_redis_restarted_empty_mid_200k_fan_out(stack, sim, redis_server):
    run_redis_restart(stack, sim, redis_server, count=200_000, timeout=1500)
