"""Fan-out services, run in-process (delivery itself is covered end to end in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryBatch, Notification
from notifications.pipeline import dispatch_due, notification_fan_out
from segments.models import Segment
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def test_a_scheduled_send_to_a_deleted_segment_ends_instead_of_retrying(api, own, settings):
    PlayerFactory.create_batch(2, app=own.app, tags={"vip": "1"})
    created = api.post(
        f"/apps/{own.app.id}/segments",
        {"name": "VIP", "filters": [{"field": "tag", "key": "vip", "relation": "=", "value": "1"}]},
        key=own.app_key,
    )
    assert created.status_code == 201
    send_after = (timezone.now() + timedelta(hours=2)).isoformat()
    body = api.post(
        "/notifications",
        {
            "app_id": str(own.app.id),
            "contents": {"en": "Hi"},
            "included_segments": ["VIP"],
            "send_after": send_after,
        },
        key=own.app_key,
    ).json()
    assert body["recipients"] == 2
    Segment.objects.filter(app=own.app, name="VIP").delete()
    dispatch_due(now=timezone.now() + timedelta(hours=3))
    notification_fan_out(notification_id=body["id"])
    notification = Notification.objects.get(pk=body["id"])
    assert notification.status == Notification.Status.COMPLETED and notification.completed_at
    assert (notification.recipients, notification.remaining) == (0, 0)
    assert not Delivery.objects.exists()


def test_fan_out_writes_batches_once_even_when_run_twice(api, own, settings):
    settings.HERALD_BATCH_SIZE = 3
    players = PlayerFactory.create_batch(7, app=own.app)
    body = api.post(
        "/notifications",
        {
            "app_id": str(own.app.id),
            "contents": {"en": "Hi"},
            "include_player_ids": [str(p.id) for p in players],
        },
        key=own.app_key,
    ).json()
    notification_fan_out(notification_id=body["id"])
    notification_fan_out(notification_id=body["id"])  # a redelivered task finds the fan-out done
    assert sorted(DeliveryBatch.objects.values_list("size", flat=True)) == [1, 3, 3]
    assert Delivery.objects.filter(notification_id=body["id"]).count() == 7
    notification = Notification.objects.get(pk=body["id"])
    assert notification.recipients == notification.remaining == 7 and notification.fanout_done
