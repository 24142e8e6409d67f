"""Celery tasks: ids only, explicit names, time limits; each loads rows and calls a service."""

from __future__ import annotations

from celery import shared_task

from webhooks.delivery import webhook_call_deliver, webhook_calls_sweep


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
    """One attempt at a webhook call; a failed attempt retries this task after the backoff.

    acks_late is safe: webhook_call_deliver claims the row with a conditional UPDATE, so a
    redelivered message finds the attempt taken (or done) and does nothing. The attempt count
    lives in the row, not in Celery's retry counter, hence ``max_retries=None``.
    """
    countdown = webhook_call_deliver(call_id=call_id)
    if countdown is not None:
        raise self.retry(countdown=countdown, max_retries=None)


@shared_task(name="webhooks.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def webhook_sweep_task(**kwargs) -> None:
    webhook_calls_sweep()
