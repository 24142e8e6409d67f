"""Celery tasks: ids only, explicit names, time limits; each body calls a service.

Both delivery tasks are idempotent (rows are claimed with conditional UPDATEs), which is what
makes ``acks_late`` with ``reject_on_worker_lost`` safe: a killed worker's message is redelivered
and the redelivery either resumes the work or finds it already done.
"""

from __future__ import annotations

from celery import shared_task

from notifications.delivery import deliver_batch
from notifications.pipeline import dispatch_due, notification_fan_out


@shared_task(
    name="notifications.fan_out",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def fan_out_task(notification_id: str, **kwargs) -> None:
    notification_fan_out(notification_id=notification_id)


@shared_task(
    name="notifications.deliver_batch",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=240,
    time_limit=280,
)
def deliver_batch_task(batch_id: int, **kwargs) -> None:
    deliver_batch(batch_id=batch_id)


@shared_task(name="notifications.dispatch_due", ignore_result=True, soft_time_limit=60, time_limit=90)
def dispatch_due_task(**kwargs) -> None:
    dispatch_due()
