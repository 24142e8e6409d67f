from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.models import App
from notifications.models import Notification, PlatformStats
from notifications.validation import INTERNAL_PREFIX

MAX_PAGE_SIZE = 50
OMITTED_FIELDS = {"throttle_rate_per_minute", "idempotency_key"}
STATS_FIELDS = ("successful", "failed", "errored", "converted", "received")


def _unix(value) -> int | None:
    return int(value.timestamp()) if value is not None else None


def notification_output(notification: Notification) -> dict:
    """NotificationWithMeta: the request echoed (unset fields omitted, since OneSignal's clients
    type most of them as non-nullable), plus counters, timing and per-platform stats.

    ``throttle_rate_per_minute`` is left out: OneSignal's python clients (2.2.1, 5.18.0) type it
    as a string and as an integer at once, so any value but null fails their deserialisation.
    Herald's internal ``herald_*`` fields (a MobileFirst message's target and per-platform
    fields) are left out too.
    """
    data = {
        k: v
        for k, v in notification.request.items()
        if v is not None and k not in OMITTED_FIELDS and not k.startswith(INTERNAL_PREFIX)
    }
    data.update(
        {
            "id": str(notification.pk),
            "app_id": str(notification.app_id),
            "successful": notification.successful,
            "failed": notification.failed,
            "errored": notification.errored,
            "converted": notification.converted,
            "received": notification.received,
            "remaining": notification.remaining,
            "queued_at": _unix(notification.queued_at),
            "send_after": _unix(notification.send_after),
            "completed_at": _unix(notification.completed_at),
            "canceled": notification.canceled,
            "delayed_option": notification.delayed_option or "immediate",
            "platform_delivery_stats": {
                stats.platform: {field: getattr(stats, field) for field in STATS_FIELDS}
                for stats in notification.platform_stats.all()
            },
        }
    )
    return data


def _with_stats(queryset: QuerySet[Notification]) -> QuerySet[Notification]:
    return queryset.prefetch_related(
        Prefetch("platform_stats", queryset=PlatformStats.objects.order_by("platform"))
    )


def notification_page(
    *, app: App, limit: int, offset: int, kind: int | None
) -> tuple[int, list[Notification]]:
    notifications = Notification.objects.filter(app=app)
    if kind is not None:
        notifications = notifications.filter(kind=kind)
    total = notifications.count()
    page = list(_with_stats(notifications.order_by("-queued_at", "-pk"))[offset : offset + limit])
    return total, page


def notification_get(*, app: App, notification_id) -> Notification | None:
    if notification_id is None:
        return None
    return _with_stats(Notification.objects.filter(app=app, pk=notification_id)).first()


def notification_outcomes(notification) -> list[dict]:
    """Outcomes attributed to one notification, per name and attribution: count and weight sum.

    ``notification_ids`` is a JSON list of UUID strings; a text match on the id is exact (a UUID
    cannot be part of another) and works on SQLite as on PostgreSQL.
    """
    from django.db.models import Count, Sum

    from notifications.models import OutcomeEvent

    return list(
        OutcomeEvent.objects.filter(
            app_id=notification.app_id, notification_ids__icontains=str(notification.pk)
        )
        .values("name", "attribution")
        .annotate(count=Count("pk"), weight=Sum("weight"))
        .order_by("name", "attribution")
    )
