"""Shared helpers for webhook tests: a webhook row factory and the due-now nudge for retries."""

from __future__ import annotations

import itertools

from django.utils import timezone

from webhooks.models import Webhook, WebhookCall

_names = itertools.count()


def make_webhook(app, *, url: str, events=("onDeviceRegister",), source: str = "mfp", **fields) -> Webhook:
    return Webhook.objects.create(
        app=app,
        name=fields.pop("name", f"hook-{next(_names)}"),
        url=url,
        event_types=list(events),
        source=source,
        **fields,
    )


def make_due(call: WebhookCall) -> None:
    """Skip the backoff: what the retry's countdown would do with time."""
    WebhookCall.objects.filter(pk=call.pk).update(next_attempt_at=timezone.now())
