"""A batch's outcomes are committed every ``record_step`` sends: the duplicates a killed worker
process may cause, as a share of the notification's audience (RELIABILITY.md, "Crash tests")."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.vapid import ensure_vapid_keys
from notifications.delivery import deliver_batch, record_step
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


def _records_per_batch(
    api, own, sim, settings, *, recipients_seen: int, transient_first: int = 0, web: int = 0
) -> list[int]:
    """Send 100 Android recipients (FCM), then ``web`` Chrome ones (Web Push), to the simulator,
    one batch after another in this process, and count the outcome records each batch made, as
    if the notification had ``recipients_seen`` recipients (what its fan-out has counted).
    ``transient_first``: the simulator's FCM answers that many first requests UNAVAILABLE
    (their batch goes back for a retry)."""
    use_every_gateway(settings, sim)
    configure_fcm(own.app, sim)
    players = PlayerFactory.create_batch(100, app=own.app, device_type=DeviceType.ANDROID)
    ensure_vapid_keys(own.app)
    key = own.app.vapid_public_key
    subscriptions = sim.webpush_subscriptions(web, application_server_key=key) if web else []
    for subscription in subscriptions:
        players.append(
            PlayerFactory(
                app=own.app,
                device_type=DeviceType.CHROME_WEB,
                identifier=subscription["endpoint"],
                web_auth=subscription["keys"]["auth"],
                web_p256=subscription["keys"]["p256dh"],
            )
        )
    ids = [str(p.id) for p in players]
    body = api.post(
        "/notifications",
        {"app_id": str(own.app.id), "contents": {"en": "Hi"}, "include_player_ids": ids},
        key=own.app_key,
    ).json()
    notification_fan_out(notification_id=body["id"])
    Notification.objects.filter(pk=body["id"]).update(recipients=recipients_seen)
    if transient_first:
        sim.faults("fcm", fail_first={"UNAVAILABLE": transient_first})
    records = []
    batches = DeliveryBatch.objects.filter(notification_id=body["id"])
    # Android's batches first: the order in which the carried step is learned matters here.
    for batch in sorted(batches, key=lambda b: (b.device_type != DeviceType.ANDROID, b.pk)):
        with CaptureQueriesContext(connection) as queries:
            deliver_batch(batch_id=batch.pk)
        # MOVE_TO_FINAL_SQL, the record of a step
        records.append(sum("), moved AS (" in q["sql"] for q in queries.captured_queries))
    sent = Delivery.objects.filter(notification_id=body["id"], status=Delivery.Status.SENT).count()
    assert sent == 100 + web - transient_first  # every recipient sent but those answered UNAVAILABLE
    done = DeliveryBatch.objects.filter(notification_id=body["id"], status=DeliveryBatch.Status.DONE)
    assert done.count() == len(records) - (1 if transient_first else 0)
    return records


def test_a_small_notification_records_every_ten_sends(api, own, sim, step_settings):
    # 100 sends: steps of 10, 9 of them recorded as they finish and the last with the batch.
    assert _records_per_batch(api, own, sim, step_settings, recipients_seen=100) == [10]


def test_a_large_notification_records_in_larger_steps(api, own, sim, step_settings):
    # A 1,000,000-recipient notification may resend 50 per crash: steps of 10, 20, 40 and the
    # remaining 30, so three records before the batch's own.
    assert _records_per_batch(api, own, sim, step_settings, recipients_seen=1_000_000) == [4]


def test_the_next_batch_starts_at_the_step_the_last_one_reached(api, own, sim, step_settings):
    # Batches of 50: the first takes steps of 10, 20 and the remaining 20 (three records), each
    # quick, so its step has doubled to the most allowed (50); the second sends all 50 in one
    # step, recorded with the batch.
    step_settings.HERALD_BATCH_SIZE = 50
    assert _records_per_batch(api, own, sim, step_settings, recipients_seen=1_000_000) == [3, 1]


def test_a_batch_with_a_transient_failure_leaves_the_next_to_start_small(api, own, sim, step_settings):
    # One UNAVAILABLE in the first batch: its retry, and the next batch, may meet a struggling
    # gateway, so the next batch starts again at 10 (three records, as the first).
    step_settings.HERALD_BATCH_SIZE = 50
    records = _records_per_batch(api, own, sim, step_settings, recipients_seen=1_000_000, transient_first=1)
    assert records == [3, 3]


def test_another_device_type_learns_its_own_gateway_pace(api, own, sim, step_settings):
    # FCM's two batches of 50: [3, 1] as above. The Web Push batch of the same notification goes
    # to another gateway, so it starts at 10 again: three records, not one.
    step_settings.HERALD_BATCH_SIZE = 50
    assert _records_per_batch(api, own, sim, step_settings, recipients_seen=1_000_000, web=50) == [3, 1, 3]
