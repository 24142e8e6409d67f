"""Writes for webhooks: record events (one ``WebhookCall`` per matching webhook) and enqueue them.

``webhook_event_emit`` is the one entry point every producer calls (device and subscription
services, the delivery pipeline, open tracking, unsubscribes). Call it inside the producer's
transaction: the call rows commit or roll back with the change they report, and their delivery
tasks are enqueued only after commit.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.models import App
from webhooks.events import mfp_body, onesignal_body, source_of
from webhooks.models import Webhook, WebhookCall

logger = logging.getLogger(__name__)


def mfp_application_id(app: App) -> str:
    """The App's MobileFirst applicationId, or its OneSignal app id when it has none (§1.4)."""
    from imfpush.models import MfpApplication

    found = MfpApplication.objects.filter(app_id=app.pk).values_list("application_id", flat=True).first()
    return found or str(app.pk)


def webhooks_listening(*, app: App | str, event_types: tuple[str, ...] | list[str]) -> list[Webhook]:
    """The app's webhooks that listen to any of ``event_types`` (one query; filtered here, since
    JSON containment is not portable to the embedded SQLite default)."""
    app_id = app.pk if isinstance(app, App) else app
    sources = {source_of(event_type) for event_type in event_types}
    wanted = set(event_types)
    hooks = Webhook.objects.filter(app_id=app_id, source__in=sources).only(
        "pk", "event_types", "source", "app_id"
    )
    return [hook for hook in hooks if wanted & set(hook.event_types or [])]


def webhook_event_emit(*, app, event_type: str, entity: dict) -> None:
    """Record ``event_type`` for every webhook of ``app`` that listens to it, and enqueue the
    deliveries after the surrounding transaction commits. Cheap when nothing listens (one query).

    ``entity`` is the event's ``entity`` (MFP) or ``data`` (OneSignal side), JSON-serialisable.
    """
    hooks = [hook for hook in webhooks_listening(app=app, event_types=[event_type])]
    if not hooks:
        return
    now = timezone.now()
    if source_of(event_type) == Webhook.Source.ONESIGNAL:
        payload = onesignal_body(app_id=str(app.pk), event_type=event_type, entity=entity, at=now)
    else:
        payload = mfp_body(
            application_id=mfp_application_id(app), event_type=event_type, entity=entity, at=now
        )
    calls = WebhookCall.objects.bulk_create(
        [
            WebhookCall(
                webhook_id=hook.pk,
                event_type=event_type,
                payload=payload,
                created_at=now,
                next_attempt_at=now,
            )
            for hook in hooks
        ]
    )
    call_ids = [call.pk for call in calls]
    transaction.on_commit(lambda: _enqueue(call_ids))


def _enqueue(call_ids: list[int]) -> None:
    from webhooks.tasks import webhook_deliver_task

    for call_id in call_ids:
        try:
            webhook_deliver_task.delay(call_id)
        except Exception:  # broker down: the sweeper finds the pending row again
            logger.exception("could not enqueue webhook call %s", call_id)
