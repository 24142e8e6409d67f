"""Helpers shared by the end-to-end delivery modules."""

from __future__ import annotations

import time

from django.utils import timezone

from notifications.models import DeliveryBatch, Notification


def settle(timeout: float = 15.0) -> None:
    """Stop what a test left in progress and wait for the batches being sent, so that the flush of
    the test database never races the worker (an error there would fail the next test)."""
    Notification.objects.filter(completed_at__isnull=True, canceled=False).update(
        canceled=True, status=Notification.Status.CANCELED
    )
    DeliveryBatch.objects.filter(status=DeliveryBatch.Status.PENDING).update(
        status=DeliveryBatch.Status.CANCELED
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = DeliveryBatch.objects.filter(
            status=DeliveryBatch.Status.SENDING, lease_expires_at__gt=timezone.now()
        )
        if not live.exists():
            return
        time.sleep(0.1)
