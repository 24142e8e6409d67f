"""Fan-out, dispatch and recovery. Delivery itself is in ``notifications.delivery``.

PostgreSQL is the source of truth: the broker only carries ids, and every message may be
lost (Redis flushed) or delivered twice. Lost work is found again by ``dispatch_due``; duplicated
work is harmless because every step claims its rows with a conditional UPDATE.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.api.errors import ApiError
from notifications.models import Delivery, DeliveryBatch, Notification, PlatformStats
from notifications.platforms import PLATFORM_FLAGS, STATS_KEY_FOR_DEVICE_TYPE, device_types_for
from notifications.scheduling import recipient_due_at, throttled_batch_size, throttled_offset
from notifications.targeting import resolve_audience
from notifications.validation import TARGETING_MODES, NotificationRequest
from webhooks.hooks import on_notification_completed

logger = logging.getLogger(__name__)


def audience_for(notification: Notification):
    body = notification.request
    mode = next(mode for key, mode in TARGETING_MODES.items() if body.get(key) is not None)
    flags = {name: body[name] for name in PLATFORM_FLAGS if isinstance(body.get(name), bool)}
    device_types = device_types_for(notification.channel, flags)
    return resolve_audience(app=notification.app, body=body, mode=mode, device_types=device_types).players


def _enqueue_batches(batches: list[DeliveryBatch], now: datetime) -> None:
    from notifications.tasks import deliver_batch_task

    for batch in batches:
        countdown = max(0.0, (batch.available_at - now).total_seconds())
        deliver_batch_task.apply_async((batch.pk,), countdown=countdown or None)


def _plan_batches(notification: Notification, rows: list[tuple], start_position: int, now: datetime):
    """Group a chunk of recipients into batches by device type and due time."""
    base = max(notification.send_after, notification.queued_at)
    rate = notification.throttle_rate_per_minute
    size = throttled_batch_size(rate)
    groups: dict[tuple[int, datetime], list] = defaultdict(list)
    for position, (player_id, device_type, tz_offset, tz_id, last_active) in enumerate(rows, start_position):
        due = recipient_due_at(
            notification, base=base, timezone_id=tz_id, offset_seconds=tz_offset, last_active=last_active
        )
        if rate:
            # Throttling spreads the whole audience; group by the second each recipient is due.
            due = base + throttled_offset(position - position % size, rate)
        groups[(device_type, due)].append(player_id)
    planned = []
    for (device_type, due), player_ids in sorted(groups.items(), key=lambda item: item[0][1]):
        for start in range(0, len(player_ids), size):
            planned.append((device_type, max(due, now), player_ids[start : start + size]))
    return planned


def notification_fan_out(*, notification_id: str) -> None:
    """Stream the audience in id order into batches, one chunk per transaction.

    The notification row is locked while a chunk is written and its cursor advanced, so two
    fan-out tasks for the same notification take turns instead of writing a chunk twice, and
    a crash resumes after the last committed chunk.
    """
    chunk = settings.HERALD_FANOUT_CHUNK
    horizon = timedelta(seconds=settings.HERALD_ETA_HORIZON_SECONDS)
    while True:
        now = timezone.now()
        with transaction.atomic():
            notification = (
                Notification.objects.select_for_update()
                .select_related("app")
                .filter(pk=notification_id)
                .first()
            )
            if notification is None or notification.fanout_done or notification.canceled:
                return
            if notification.status == Notification.Status.SCHEDULED:
                return
            first_chunk = notification.fanout_cursor is None
            if first_chunk:
                notification.recipients = notification.remaining = 0
            notification.status = Notification.Status.SENDING
            try:
                players = audience_for(notification).order_by("pk")
            except ApiError as exc:
                # The audience can no longer be resolved (a targeted segment was deleted before a
                # scheduled send): end with what was fanned out instead of retrying forever.
                logger.warning("notification %s: audience unavailable: %s", notification_id, exc.body)
                notification.fanout_done = True
                notification.save()
                complete_if_done(notification.pk)
                return
            if notification.fanout_cursor is not None:
                players = players.filter(pk__gt=notification.fanout_cursor)
            rows = _recipient_rows(notification, players, chunk)
            notification.fanout_heartbeat = now
            if not rows:
                notification.fanout_done = True
                notification.save()
                complete_if_done(notification.pk)
                return
            planned = _plan_batches(notification, rows, notification.recipients, now)
            batches = DeliveryBatch.objects.bulk_create(
                [
                    DeliveryBatch(
                        notification=notification,
                        device_type=device_type,
                        size=len(ids),
                        available_at=due,
                        enqueued_at=due if due <= now + horizon else None,
                    )
                    for device_type, due, ids in planned
                ]
            )
            _create_deliveries(notification, batches, [ids for _, _, ids in planned])
            for key in {STATS_KEY_FOR_DEVICE_TYPE.get(row[1]) for row in rows} - {None}:
                PlatformStats.objects.get_or_create(notification=notification, platform=key)
            notification.fanout_cursor = rows[-1][0]
            notification.recipients += len(rows)
            notification.remaining += len(rows)
            notification.save()
            due_now = [b for b in batches if b.enqueued_at is not None]
            transaction.on_commit(lambda due_now=due_now, now=now: _enqueue_batches(due_now, now))


# The player columns each delayed_option's schedule reads (recipient_due_at).
SCHEDULE_COLUMNS = {"timezone": ("timezone", "timezone_id"), "last-active": ("last_active",)}


def _recipient_rows(notification: Notification, players, chunk: int) -> list[tuple]:
    """The next ``chunk`` of (id, device type, utc offset, zone, last active), reading the
    schedule's columns only when its ``delayed_option`` needs them: loading a million timestamps
    that nothing read was a tenth of the fan-out's time."""
    read = SCHEDULE_COLUMNS.get(notification.delayed_option or "", ())
    return [
        (row["pk"], row["device_type"], row.get("timezone"), row.get("timezone_id"), row.get("last_active"))
        for row in players.values("pk", "device_type", *read)[:chunk]
    ]


# One statement for a chunk's delivery rows: no model instance per recipient (about 40% of the
# fan-out's time went to building and saving them through bulk_create).
INSERT_DELIVERIES_SQL = """
INSERT INTO {delivery} (notification_id, batch_id, player_id, status, error)
SELECT %(notification)s, batch_id, player_id, {queued}, ''
FROM unnest(%(batches)s::bigint[], %(players)s::uuid[]) AS t(batch_id, player_id)
"""


def _create_deliveries(notification: Notification, batches: list[DeliveryBatch], ids: list[list]) -> None:
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create(
            [
                Delivery(notification_id=notification.pk, batch_id=batch.pk, player_id=player_id)
                for batch, players in zip(batches, ids, strict=True)
                for player_id in players
            ]
        )
        return
    batch_ids = [batch.pk for batch, players in zip(batches, ids, strict=True) for _ in players]
    sql = INSERT_DELIVERIES_SQL.format(
        delivery=connection.ops.quote_name(Delivery._meta.db_table), queued=int(Delivery.Status.QUEUED)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"notification": notification.pk, "batches": batch_ids, "players": [p for ps in ids for p in ps]},
        )


def batch_outcomes_count(batch: DeliveryBatch, notification: Notification) -> None:
    """Add the batch's uncounted outcomes to the notification's and the platform's counters, once:
    the batch row is locked, read and zeroed in the caller's transaction, so outcomes recorded by
    a worker that died mid-batch are counted by the batch's retry, and a second worker that sent
    the same batch (its lease ran out) counts only what it moved after the first one counted."""
    counts = (
        DeliveryBatch.objects.select_for_update()
        .filter(pk=batch.pk)
        .values_list("uncounted_sent", "uncounted_failed", "uncounted_errored")
        .first()
    )
    if not counts or not any(counts):
        return
    sent, failed, errored = counts
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        uncounted_sent=0, uncounted_failed=0, uncounted_errored=0
    )
    Notification.objects.filter(pk=notification.pk).update(
        successful=F("successful") + sent,
        failed=F("failed") + failed,
        errored=F("errored") + errored,
        remaining=F("remaining") - (sent + failed + errored),
    )
    stats_key = STATS_KEY_FOR_DEVICE_TYPE.get(batch.device_type)
    if stats_key:
        PlatformStats.objects.filter(notification=notification, platform=stats_key).update(
            successful=F("successful") + sent, failed=F("failed") + failed, errored=F("errored") + errored
        )


def complete_if_done(notification_id) -> bool:
    completed = bool(
        Notification.objects.filter(
            pk=notification_id, fanout_done=True, remaining=0, completed_at__isnull=True, canceled=False
        ).update(status=Notification.Status.COMPLETED, completed_at=timezone.now())
    )
    if completed:
        on_notification_completed(notification_id=notification_id)
    return completed


def notification_enqueue(notification: Notification) -> None:
    """Start delivery of an accepted notification once its transaction commits.

    ``robust``: when the broker is unreachable the enqueue fails after the notification committed.
    The API still answers 200 (it was accepted, and a 500 would make clients post it again), and
    ``dispatch_due`` starts the fan-out from PostgreSQL once the grace has passed.
    """
    from notifications.tasks import fan_out_task

    notification_id = str(notification.pk)

    def enqueue_fan_out() -> None:  # a function, not a partial: robust hooks are logged by name
        fan_out_task.delay(notification_id)

    if notification.status == Notification.Status.QUEUED:
        transaction.on_commit(enqueue_fan_out, robust=True)


def dispatch_due(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic safety net and scheduler. Each step claims rows with SKIP LOCKED:

    1. scheduled notifications whose ``send_after`` has come -> queued, fan-out enqueued;
    2. pending batches that are due and were never enqueued, or whose message was lost;
    3. sending batches whose lease expired (worker killed) -> pending again, re-enqueued;
    4. fan-outs that stopped making progress (worker killed, broker flushed) -> re-enqueued.
    """
    from notifications.tasks import fan_out_task

    now = now or timezone.now()
    # A message enqueued this long ago whose work has not started is presumed lost.
    grace = timedelta(seconds=settings.HERALD_REDELIVERY_GRACE_SECONDS)
    counts = {}
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Notification.Status.SCHEDULED, send_after__lte=now, canceled=False)
            .values_list("pk", flat=True)[:500]
        )
        Notification.objects.filter(pk__in=due).update(
            status=Notification.Status.QUEUED, fanout_heartbeat=now
        )
        stalled = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(
                status__in=[Notification.Status.QUEUED, Notification.Status.SENDING],
                fanout_done=False,
                canceled=False,
            )
            .filter(
                Q(fanout_heartbeat__lt=now - grace)
                | Q(fanout_heartbeat__isnull=True, queued_at__lt=now - grace)
            )
            .values_list("pk", flat=True)[:500]
        )
        Notification.objects.filter(pk__in=stalled).update(fanout_heartbeat=now)
        for notification_id in [*due, *stalled]:
            fan_out_task.delay_on_commit(str(notification_id))
        counts["notifications"] = len(due) + len(stalled)

        expired = list(
            DeliveryBatch.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryBatch.Status.SENDING, lease_expires_at__lt=now)
            .values_list("pk", flat=True)[:1000]
        )
        DeliveryBatch.objects.filter(pk__in=expired).update(
            status=DeliveryBatch.Status.PENDING, available_at=now
        )
        ready = list(
            DeliveryBatch.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryBatch.Status.PENDING, available_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - grace) | Q(pk__in=expired))
            .values_list("pk", flat=True)[:5000]
        )
        DeliveryBatch.objects.filter(pk__in=ready).update(enqueued_at=now)
        batches = list(DeliveryBatch.objects.filter(pk__in=ready).only("pk", "available_at"))
        for batch in batches:
            batch.available_at = now
        transaction.on_commit(lambda: _enqueue_batches(batches, now))
        counts["batches"] = len(ready)
        counts["expired_leases"] = len(expired)
    return counts


def notification_create_row(
    *, notification_id, app, request: NotificationRequest, recipients: int, response: dict, kind: int
) -> Notification:
    body = {k: v for k, v in request.body.items() if k != "idempotency_key"}
    return Notification.objects.create(
        id=notification_id,
        app=app,
        kind=kind,
        request=body,
        name=body.get("name"),
        channel=request.channel,
        status=Notification.Status.SCHEDULED if request.scheduled else Notification.Status.QUEUED,
        idempotency_key=request.idempotency_key,
        response=response,
        send_after=request.send_after,
        delayed_option=request.delayed_option,
        delivery_time_of_day=request.delivery_time_of_day,
        throttle_rate_per_minute=request.throttle_rate_per_minute,
        ttl=request.ttl,
        recipients=recipients,
        remaining=recipients,
    )
