"""Celery tasks: ids only, explicit names, time limits; each loads rows and calls a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    bind=True,
    name="webhooks.deliver",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
    acks_late=True,
    reject_on_worker_lost=True,
)
def webhook_deliver_task(self, call_id: int, **kwargs) -> None:
    from webhooks.delivery import webhook_call_deliver

    countdown = webhook_call_deliver(call_id=call_id)
    if countdown is not None:
        raise self.retry(countdown=countdown, max_retries=None)
