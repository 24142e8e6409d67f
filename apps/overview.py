"""The dashboard's app overview: audience per platform, activity, 30 days of sends, CTR, unsubscribes.

Every figure is one aggregate query over the app's own rows, so the page stays cheap on large
apps (the counts use the player indexes on ``(app, last_active)`` and the subscribed index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.models import App
from notifications.models import Notification
from players.models import DeviceType, Player

ACTIVITY_WINDOWS = (1, 7, 30)
CHART_DAYS = 30


@dataclass(frozen=True)
class DayOfSends:
    day: date
    successful: int
    failed: int
    errored: int

    @property
    def total(self) -> int:
        return self.successful + self.failed + self.errored


@dataclass(frozen=True)
class AppOverview:
    subscribed_by_platform: list[tuple[str, int]]
    active_users: list[tuple[int, int]]  # (days, players active within them)
    days: list[DayOfSends]
    delivered_30d: int
    clicked_30d: int
    unsubscribes_by_reason: list[tuple[str, int]]

    @property
    def click_through_rate(self) -> float | None:
        return self.clicked_30d / self.delivered_30d if self.delivered_30d else None


def app_overview(app: App, *, today: date | None = None) -> AppOverview:
    now = timezone.now()
    today = today or now.date()
    players = Player.objects.filter(app=app)
    by_platform = (
        players.subscribed()
        .values("device_type")
        .annotate(count=Count("pk"))
        .order_by("-count", "device_type")
    )
    labels = dict(DeviceType.choices)
    active = [
        (days, players.filter(last_active__gte=now - timedelta(days=days)).count())
        for days in ACTIVITY_WINDOWS
    ]

    first_day = today - timedelta(days=CHART_DAYS - 1)
    rows = (
        Notification.objects.filter(app=app, queued_at__date__gte=first_day)
        .annotate(day=TruncDate("queued_at"))
        .values("day")
        .annotate(
            successful=Sum("successful"),
            failed=Sum("failed"),
            errored=Sum("errored"),
            converted=Sum("converted"),
        )
    )
    per_day = {row["day"]: row for row in rows}
    days = []
    for offset in range(CHART_DAYS):
        day = first_day + timedelta(days=offset)
        row = per_day.get(day, {})
        days.append(
            DayOfSends(day, row.get("successful") or 0, row.get("failed") or 0, row.get("errored") or 0)
        )
    reasons = (
        players.exclude(unsubscribed_reason="")
        .values("unsubscribed_reason")
        .annotate(count=Count("pk"))
        .order_by("-count", "unsubscribed_reason")
    )
    return AppOverview(
        subscribed_by_platform=[
            (labels.get(r["device_type"], str(r["device_type"])), r["count"]) for r in by_platform
        ],
        active_users=active,
        days=days,
        delivered_30d=sum(day.successful for day in days),
        clicked_30d=sum((row.get("converted") or 0) for row in per_day.values()),
        unsubscribes_by_reason=[(r["unsubscribed_reason"], r["count"]) for r in reasons],
    )
