"""Writes for notifications: create (idempotent), cancel, and the SDK's open/received reports."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.models import App
from core.api.base import parse_uuid
from core.api.errors import ApiError
from notifications.models import Delivery, DeliveryBatch, Notification, PlatformStats
from notifications.pipeline import batch_outcomes_count, notification_create_row, notification_enqueue
from notifications.platforms import STATS_KEY_FOR_DEVICE_TYPE
from notifications.recipient_estimate import estimated_recipients
from notifications.targeting import resolve_audience
from notifications.validation import validate_notification
from webhooks.hooks import on_delivery_counted

NO_SUBSCRIBERS = "All included players are not subscribed"
NOT_FOUND = "Notification not found"
ALREADY_SENT = "Notification has already been sent"


def _replay(app: App, key: str) -> dict | None:
    existing = Notification.objects.filter(app=app, idempotency_key=key).only("response").first()
    return existing.response if existing else None


def notification_create(
    *,
    app: App,
    body: dict,
    header_key: str | None = None,
    kind: int = Notification.Kind.API,
    internal: dict | None = None,
    notification_id: uuid.UUID | None = None,
    allow_empty: bool = False,
) -> tuple[dict, bool]:
    """Validate, resolve the audience and estimate its size, persist, and enqueue after commit.

    Returns ``(response, replayed)``. With an idempotency key, a request whose twin already
    committed returns the twin's response; a concurrent twin waits on the unique index and
    then replays, so a key never sends twice.

    Herald's own callers (``imfpush.messages``) may pass ``internal`` ``herald_*`` body fields,
    which the public API refuses, the ``notification_id`` to use (so that payloads can carry it),
    and ``allow_empty`` to store the notification even when nobody is reachable yet (the fan-out
    resolves its audience again).
    """
    now = timezone.now()
    request = validate_notification(app=app, body=body, now=now, header_key=header_key, internal=internal)
    key = request.idempotency_key
    if key:
        Notification.objects.filter(
            app=app, idempotency_key=key, queued_at__lt=now - timedelta(days=settings.HERALD_IDEMPOTENCY_DAYS)
        ).update(idempotency_key=None)
        replay = _replay(app, key)
        if replay is not None:
            return replay, True
    audience = resolve_audience(
        app=app, body=request.body, mode=request.mode, device_types=request.device_types, with_invalid=True
    )
    recipients = estimated_recipients(audience.players)
    if recipients == 0 and not allow_empty:
        return {"id": "", "recipients": 0, "errors": [NO_SUBSCRIBERS]}, False
    notification_id = notification_id or uuid.uuid4()
    response = {"id": str(notification_id), "recipients": recipients, "external_id": key}
    if audience.invalid:
        response["errors"] = audience.invalid
    try:
        with transaction.atomic():
            notification = notification_create_row(
                notification_id=notification_id,
                app=app,
                request=request,
                recipients=recipients,
                response=response,
                kind=kind,
            )
            notification_enqueue(notification)
    except IntegrityError:
        replay = _replay(app, key) if key else None
        if replay is None:
            raise
        return replay, True
    return response, False


def notification_or_404(app: App, notification_id: str, *, lock: bool = False) -> Notification:
    pk = parse_uuid(notification_id)
    queryset = Notification.objects.filter(app=app, pk=pk) if pk else Notification.objects.none()
    notification = (queryset.select_for_update() if lock else queryset).first()
    if notification is None:
        raise ApiError.not_found(NOT_FOUND)
    return notification


@transaction.atomic
def notification_cancel(*, app: App, notification_id: str) -> None:
    """Stop a scheduled or in-progress notification: batches not yet claimed are never sent."""
    notification = notification_or_404(app, notification_id, lock=True)
    if notification.canceled:
        return
    if notification.status == Notification.Status.COMPLETED:
        raise ApiError.bad_request(ALREADY_SENT)
    notification.canceled = True
    notification.status = Notification.Status.CANCELED
    notification.save(update_fields=["canceled", "status"])
    pending = DeliveryBatch.objects.filter(notification=notification, status=DeliveryBatch.Status.PENDING)
    Delivery.objects.filter(batch__in=pending, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.CANCELED
    )
    # A pending batch may carry the outcomes of an attempt whose worker died mid-batch. One that a
    # worker holds has just been claimed, and that worker counts it: skipped rather than waited
    # for, since its record locks the batch before this notification (a deadlock otherwise).
    carrying = Q(uncounted_sent__gt=0) | Q(uncounted_failed__gt=0) | Q(uncounted_errored__gt=0)
    for batch in pending.filter(carrying).select_for_update(skip_locked=True):
        batch_outcomes_count(batch, notification)
    pending.update(status=DeliveryBatch.Status.CANCELED)


def _count_event(app: App, notification_id: str, player_id: str | None, field: str, counter: str) -> None:
    notification = notification_or_404(app, notification_id)
    player_uuid = parse_uuid(player_id) if player_id else None
    if player_uuid is None:
        raise ApiError.bad_request("player_id must be the id of a player this notification was sent to")
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .select_related("player")
            .filter(notification=notification, player_id=player_uuid)
            .first()
        )
        if delivery is None:
            raise ApiError.bad_request("player_id must be the id of a player this notification was sent to")
        if getattr(delivery, field) is not None:
            return  # counted once per (notification, player)
        Delivery.objects.filter(pk=delivery.pk).update(**{field: timezone.now()})
        on_delivery_counted(notification=notification, player=delivery.player, field=field)
        Notification.objects.filter(pk=notification.pk).update(**{counter: F(counter) + 1})
        stats_key = STATS_KEY_FOR_DEVICE_TYPE.get(delivery.player.device_type)
        if stats_key:
            PlatformStats.objects.filter(notification=notification, platform=stats_key).update(
                **{counter: F(counter) + 1}
            )


def notification_track_open(*, app: App, notification_id: str, player_id: str | None) -> None:
    _count_event(app, notification_id, player_id, "opened_at", "converted")


def notification_report_received(*, app: App, notification_id: str, player_id: str | None) -> None:
    _count_event(app, notification_id, player_id, "received_at", "received")
