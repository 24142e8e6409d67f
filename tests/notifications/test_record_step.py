"""A batch's outcomes are committed every ``record_step`` sends: the duplicates a killed worker
process may cause, as a share of the notification's audience (RELIABILITY.md, "Crash tests")."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.delivery import claim_batch, deliver_batch, record_step
from notifications.models import Delivery, DeliveryBatch, Notification
from notifications.pipeline import notification_fan_out
from players.models import DeviceType
from tests.e2e.support import use_every_gateway
from tests.factories import PlayerFactory
from tests.reliability.stack import configure_fcm


@pytest.fixture
def step_settings(settings):
    settings.HERALD_DELIVERY_RECORD_EVERY = 10
    settings.HERALD_CRASH_RESENDS_PER_MILLION = 50
    settings.HERALD_BATCH_SIZE = 1000
    return settings


@pytest.mark.parametrize(
    ("recipients", "step"),
    [(0, 10), (5_000, 10), (200_000, 10), (300_000, 15), (1_000_000, 50), (10_000_000, 500), (10**9, 1000)],
)
def test_the_step_is_a_share_of_the_audience_between_the_minimum_and_a_batch(step_settings, recipients, step):
    assert record_step(recipients) == step


def test_without_a_share_every_notification_takes_the_minimum_step(step_settings):
    step_settings.HERALD_CRASH_RESENDS_PER_MILLION = 0
    assert record_step(10**9) == 10
    step_settings.HERALD_DELIVERY_RECORD_EVERY = 0
    assert record_step(10**9) == 1  # never a step of nothing


def _records_while_delivering(api, own, sim, settings, *, recipients_seen: int) -> int:
    """Send one 100-recipient batch to the FCM simulator and count the outcome records it made,
    as if the notification had ``recipients_seen`` recipients (what its fan-out has counted)."""
    use_every_gateway(settings, sim)
    configure_fcm(own.app, sim)
    players = PlayerFactory.create_batch(100, app=own.app, device_type=DeviceType.ANDROID)
    ids = [str(p.id) for p in players]
    body = api.post(
        "/notifications",
        {"app_id": str(own.app.id), "contents": {"en": "Hi"}, "include_player_ids": ids},
        key=own.app_key,
    ).json()
    notification_fan_out(notification_id=body["id"])
    Notification.objects.filter(pk=body["id"]).update(recipients=recipients_seen)
    batch = DeliveryBatch.objects.get(notification_id=body["id"])
    with CaptureQueriesContext(connection) as queries:
        deliver_batch(batch_id=batch.pk)
    sent = Delivery.objects.filter(notification_id=body["id"], status=Delivery.Status.SENT).count()
    assert sent == 100 and claim_batch(batch.pk) is None  # every recipient sent, the batch done
    return sum("), moved AS (" in q["sql"] for q in queries.captured_queries)  # MOVE_TO_FINAL_SQL


def test_a_small_notification_records_every_ten_sends(api, own, sim, step_settings):
    # 100 sends: steps of 10, 9 of them recorded as they finish and the last with the batch.
    assert _records_while_delivering(api, own, sim, step_settings, recipients_seen=100) == 10


def test_a_large_notification_records_in_larger_steps(api, own, sim, step_settings):
    # A 1,000,000-recipient notification may resend 50 per crash: steps of 10, 20, 40 and the
    # remaining 30, so three records before the batch's own.
    assert _records_while_delivering(api, own, sim, step_settings, recipients_seen=1_000_000) == 4
