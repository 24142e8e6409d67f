"""Regressions for defects the reliability runs found in the pipeline, run in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.delivery import _record, claim_batch, deliver_batch
from notifications.models import Delivery, DeliveryBatch, Notification, PlatformStats
from notifications.pipeline import dispatch_due, notification_fan_out
from notifications.providers.base import Outcome, SendResult
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def _post(api, own, players) -> str:
    body = api.post(
        "/notifications",
        {
            "app_id": str(own.app.id),
            "contents": {"en": "Hi"},
            "include_player_ids": [str(p.id) for p in players],
        },
        key=own.app_key,
    ).json()
    return body["id"]


def test_a_batch_recorded_twice_counts_each_recipient_once(api, own, settings):
    """A slow batch whose lease ran out is sent by a second worker too; both record it. The counters
    used to add both records (successful > recipients, and remaining below zero)."""
    settings.HERALD_BATCH_SIZE = 10
    players = PlayerFactory.create_batch(4, app=own.app)
    notification_id = _post(api, own, players)
    notification_fan_out(notification_id=notification_id)
    batch = claim_batch(DeliveryBatch.objects.get(notification_id=notification_id).pk)
    notification = batch.notification
    results = [SendResult(p.id, Outcome.SENT) for p in players]
    _record(batch, notification, results)
    _record(batch, notification, results)  # the second worker's record of the same sends
    row = Notification.objects.get(pk=notification_id)
    assert (row.recipients, row.successful, row.remaining) == (4, 4, 0)
    assert row.completed_at is not None


def _counters(notification_id) -> tuple[tuple[int, int, int, int], tuple[int, int, int]]:
    """(successful, failed, errored, remaining) of the notification; the same three of Android's."""
    row = Notification.objects.get(pk=notification_id)
    stats = PlatformStats.objects.get(notification_id=notification_id, platform="android")
    return (row.successful, row.failed, row.errored, row.remaining), (
        stats.successful,
        stats.failed,
        stats.errored,
    )


def _uncounted(batch) -> tuple[int, int, int]:
    batch.refresh_from_db()
    return batch.uncounted_sent, batch.uncounted_failed, batch.uncounted_errored


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "portable"])
def test_a_step_records_each_outcome_and_counts_only_rows_it_moved(
    api, own, settings, monkeypatch, one_statement
):
    """A step's record is one statement on PostgreSQL (``MOVE_TO_FINAL_SQL``) and several in the
    portable form: both move the same rows to the same status and reason and count them once in
    the batch's uncounted outcomes, however often the same outcomes are recorded. The end of the
    batch adds them to the notification's and the platform's counters; the steps never touch those
    two rows, which every worker's steps used to wait for each other on."""
    monkeypatch.setattr("notifications.delivery.MOVE_IN_ONE_STATEMENT", one_statement)
    settings.HERALD_BATCH_SIZE = 10
    players = PlayerFactory.create_batch(6, app=own.app)
    notification_id = _post(api, own, players)
    notification_fan_out(notification_id=notification_id)
    batch = claim_batch(DeliveryBatch.objects.get(notification_id=notification_id).pk)
    step = [
        SendResult(players[0].id, Outcome.SENT),
        SendResult(players[1].id, Outcome.SENT),
        SendResult(players[2].id, Outcome.INVALID_RECIPIENT, "NotRegistered"),
        SendResult(players[3].id, Outcome.ERROR, "x" * 80),
    ]
    # Sent only, no lease to renew: the statement runs on its own, without BEGIN and COMMIT.
    _record(batch, batch.notification, step[:2], last=False, renew_lease=False, listened=False)
    _record(batch, batch.notification, step, last=False)  # two of them recorded again
    rows = {
        d.player_id: (d.status, d.error, d.sent_at is not None)
        for d in Delivery.objects.filter(notification_id=notification_id)
    }
    assert rows == {
        players[0].id: (Delivery.Status.SENT, "", True),
        players[1].id: (Delivery.Status.SENT, "", True),
        players[2].id: (Delivery.Status.FAILED, "NotRegistered", False),
        players[3].id: (Delivery.Status.ERRORED, "x" * 64, False),
        players[4].id: (Delivery.Status.QUEUED, "", False),
        players[5].id: (Delivery.Status.QUEUED, "", False),
    }
    assert _uncounted(batch) == (2, 1, 1)
    assert _counters(notification_id) == ((0, 0, 0, 6), (0, 0, 0))
    players[2].refresh_from_db()
    assert (players[2].invalid_identifier, players[2].unsubscribed_reason) == (True, "NotRegistered")
    _record(batch, batch.notification, [SendResult(p.id, Outcome.SENT) for p in players[4:]])
    assert _counters(notification_id) == ((4, 1, 1, 0), (4, 1, 1))
    assert _uncounted(batch) == (0, 0, 0)
    assert Notification.objects.get(pk=notification_id).completed_at is not None


def test_a_step_recorded_before_the_end_of_a_batch_survives_a_crash_and_is_not_resent(api, own, settings):
    """Outcomes are committed step by step (``HERALD_DELIVERY_RECORD_EVERY``): when the worker dies
    after the first step, the batch's retry finds only the unrecorded recipients still queued, and
    counts the dead worker's sends with its own when it ends."""
    settings.HERALD_BATCH_SIZE = 10
    settings.HERALD_BATCH_LEASE_SECONDS = 30
    players = PlayerFactory.create_batch(5, app=own.app)
    notification_id = _post(api, own, players)
    notification_fan_out(notification_id=notification_id)
    batch = claim_batch(DeliveryBatch.objects.get(notification_id=notification_id).pk)
    lease = batch.lease_expires_at
    _record(batch, batch.notification, [SendResult(p.id, Outcome.SENT) for p in players[:2]], last=False)
    batch.refresh_from_db()
    assert batch.status == DeliveryBatch.Status.SENDING and batch.lease_expires_at >= lease  # renewed
    # The worker dies here. The sweeper puts the batch back once its lease expired ...
    counts = dispatch_due(now=timezone.now() + timedelta(seconds=31))
    assert counts["expired_leases"] == 1
    queued = set(
        Delivery.objects.filter(notification_id=notification_id, status=Delivery.Status.QUEUED).values_list(
            "player_id", flat=True
        )
    )
    assert queued == {p.id for p in players[2:]}  # ... and only these three are sent again
    assert _counters(notification_id) == ((0, 0, 0, 5), (0, 0, 0))
    assert _uncounted(batch) == (2, 0, 0)
    retry = claim_batch(batch.pk)
    _record(retry, retry.notification, [SendResult(p.id, Outcome.SENT) for p in players[2:]])
    assert _counters(notification_id) == ((5, 0, 0, 0), (5, 0, 0))
    assert Notification.objects.get(pk=notification_id).completed_at is not None


def _crashed_after_two_sends(api, own, settings) -> tuple[str, DeliveryBatch]:
    """A batch of five whose worker recorded two sends and died; the sweeper has put it back to
    pending. Returns the notification's id and the batch."""
    settings.HERALD_BATCH_SIZE = 10
    players = PlayerFactory.create_batch(5, app=own.app)
    notification_id = _post(api, own, players)
    notification_fan_out(notification_id=notification_id)
    batch = claim_batch(DeliveryBatch.objects.get(notification_id=notification_id).pk)
    _record(batch, batch.notification, [SendResult(p.id, Outcome.SENT) for p in players[:2]], last=False)
    dispatch_due(now=timezone.now() + timedelta(seconds=settings.HERALD_BATCH_LEASE_SECONDS + 1))
    batch.refresh_from_db()
    assert batch.status == DeliveryBatch.Status.PENDING
    return notification_id, batch


def test_a_batch_canceled_after_a_crash_counts_what_was_sent_before(api, own, settings):
    """A worker dies mid-batch, the notification is canceled, and the batch's next claim cancels
    what is still queued: the sends recorded before the crash are counted, the rest stay in
    ``remaining``."""
    notification_id, batch = _crashed_after_two_sends(api, own, settings)
    Notification.objects.filter(pk=notification_id).update(canceled=True)

    deliver_batch(batch_id=batch.pk)

    assert _counters(notification_id) == ((2, 0, 0, 3), (2, 0, 0))
    assert _uncounted(batch) == (0, 0, 0)
    statuses = Delivery.objects.filter(notification_id=notification_id).values_list("status", flat=True)
    assert sorted(statuses) == [Delivery.Status.SENT] * 2 + [Delivery.Status.CANCELED] * 3


def test_canceling_through_the_api_counts_what_a_dead_worker_sent(api, own, settings):
    """The same crash, then ``DELETE /notifications/{id}`` while the batch is back to pending: the
    cancel counts the two sends recorded before the crash, and the rest are never sent."""
    notification_id, batch = _crashed_after_two_sends(api, own, settings)

    answer = api.delete(f"/notifications/{notification_id}?app_id={own.app.id}", key=own.app_key)

    assert answer.status_code == 200, answer.content
    assert _counters(notification_id) == ((2, 0, 0, 3), (2, 0, 0))
    assert _uncounted(batch) == (0, 0, 0)
    assert batch.status == DeliveryBatch.Status.CANCELED
    assert claim_batch(batch.pk) is None  # never sent again


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_does_not_turn_an_accepted_notification_into_a_500(api, own, monkeypatch):
    """The enqueue after commit failed (Redis down) and escaped as a 500 although the notification
    was stored: a client would post it again. Now the answer is 200 and the sweeper starts it."""
    from kombu.exceptions import OperationalError

    from notifications.tasks import fan_out_task

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(fan_out_task, "delay", broker_down)
    player = PlayerFactory(app=own.app)
    response = api.post(
        "/notifications",
        {"app_id": str(own.app.id), "contents": {"en": "Hi"}, "include_player_ids": [str(player.id)]},
        key=own.app_key,
    )
    assert response.status_code == 200, response.content
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.status == Notification.Status.QUEUED and notification.fanout_heartbeat is None
    monkeypatch.setattr(fan_out_task, "delay_on_commit", lambda *a, **k: None)  # the sweeper's enqueue
    assert dispatch_due(now=timezone.now() + timedelta(minutes=2))["notifications"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_webhook_hook_is_logged_and_never_breaks_the_commit(caplog):
    """``webhooks.hooks._later`` registered a ``functools.partial`` as a robust hook; Django names a
    failing robust hook by ``__qualname__``, which a partial lacks, so the failure escaped."""
    from django.db import transaction

    from webhooks.hooks import _later

    def broken(value):
        raise RuntimeError(f"webhook store down ({value})")

    with transaction.atomic():
        _later(broken, 7)
    assert "webhook store down (7)" in caplog.text


@pytest.mark.django_db(transaction=True)  # the worker's autocommit, where a step is its own transaction
@pytest.mark.parametrize("waits_for_flush", [True, False], ids=["flush-waited", "flush-not-waited"])
def test_a_step_may_commit_without_waiting_for_its_flush_and_only_that_step(
    api, own, settings, waits_for_flush
):
    """``HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH = False``: a step's statement turns
    ``synchronous_commit`` off for its own transaction. It records the same, and the connection's
    later commits (the batch's last record among them) still wait for their flush."""
    settings.HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH = waits_for_flush
    settings.HERALD_BATCH_SIZE = 10
    players = PlayerFactory.create_batch(3, app=own.app)
    notification_id = _post(api, own, players)
    notification_fan_out(notification_id=notification_id)
    batch = claim_batch(DeliveryBatch.objects.get(notification_id=notification_id).pk)

    with CaptureQueriesContext(connection) as queries:
        _record(
            batch,
            batch.notification,
            [SendResult(players[0].id, Outcome.SENT)],
            last=False,
            renew_lease=False,
        )
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        after = cursor.fetchone()[0]

    (statement,) = [q["sql"] for q in queries.captured_queries if "), moved AS (" in q["sql"]]
    assert ("set_config('synchronous_commit', 'off', true)" in statement) is not waits_for_flush
    assert after == "on"
    assert _uncounted(batch) == (1, 0, 0)
    _record(batch, batch.notification, [SendResult(p.id, Outcome.SENT) for p in players[1:]])
    assert _counters(notification_id) == ((3, 0, 0, 0), (3, 0, 0))
