"""When each recipient's batch becomes due: immediately, throttled, or at a local time of day."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings


def _zone(timezone_id: str | None, offset_seconds: int | None):
    if timezone_id:
        try:
            return ZoneInfo(timezone_id)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if offset_seconds is not None and -86_400 < offset_seconds < 86_400:
        return timezone(timedelta(seconds=offset_seconds))
    return UTC


def next_local_time(
    base: datetime, at: time, timezone_id: str | None, offset_seconds: int | None
) -> datetime:
    """The first instant at or after ``base`` when the recipient's clock shows ``at``."""
    zone = _zone(timezone_id, offset_seconds)
    local = base.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def recipient_due_at(notification, *, base: datetime, timezone_id, offset_seconds, last_active) -> datetime:
    if notification.delayed_option == "timezone" and notification.delivery_time_of_day:
        return next_local_time(base, notification.delivery_time_of_day, timezone_id, offset_seconds)
    if notification.delayed_option == "last-active" and last_active is not None:
        usual = last_active.astimezone(UTC).time().replace(microsecond=0)
        return next_local_time(base, usual, None, 0)
    return base


def throttled_batch_size(rate_per_minute: int | None) -> int:
    if not rate_per_minute:
        return settings.HERALD_BATCH_SIZE
    # One second's worth per batch (OneSignal applies the rate per second as floor(rate / 60)).
    return max(1, min(settings.HERALD_BATCH_SIZE, rate_per_minute // 60))


def throttled_offset(position: int, rate_per_minute: int | None) -> timedelta:
    """How long after the start the recipient at ``position`` (0-based) may be sent."""
    if not rate_per_minute:
        return timedelta(0)
    return timedelta(seconds=math.floor(position * 60 / rate_per_minute))
