"""Outcomes (onesignal-api.md §3.5): the SDK's measure calls, and the totals read back by apps.

Writes: ``outcome_measure`` (``POST /outcomes/measure``, attribution from ``direct``),
``outcome_measure_sources`` (``POST /outcomes/measure_sources``, attribution from ``sources``) and
``outcome_record`` (the row itself; also used by on_focus for ``os__session_duration``).
Read: ``outcome_values`` (``GET /apps/{app_id}/outcomes``).

Clicks (``os__click``) are never stored as events: they are the ``opened_at`` of deliveries,
so they cannot disagree with the notification's ``converted`` counter.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from apps.models import App
from core.api.base import parse_uuid
from core.api.errors import ApiError
from notifications.models import Delivery, OutcomeEvent
from players.models import DeviceType
from players.validation import check_device_type

SESSION_DURATION = "os__session_duration"
CLICK = "os__click"
MAX_NAME_LENGTH = 128
# Our choice: the SDKs attribute to at most a handful of notifications (the indirect limit is
# 10 by default), so a longer list is a bug or abuse, not data.
MAX_NOTIFICATION_IDS = 100
MAX_OUTCOME_NAMES = 100
# Weights are stored as numeric(20, 6): at most 14 digits before the point.
MAX_ABS_WEIGHT = Decimal(10) ** 14
WEIGHT_QUANTUM = Decimal("0.000001")

AGGREGATIONS = ("count", "sum")
TIME_RANGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1mo": timedelta(days=30)}
DEFAULT_TIME_RANGE = "1h"
TOTAL = "total"
ATTRIBUTIONS = (*OutcomeEvent.Attribution.values, TOTAL)

Attribution = OutcomeEvent.Attribution


# --- Input checks (messages name the field and what it must be) ----------------------------


def _name(value: Any) -> str:
    if value is None:
        raise ApiError.bad_request("id is required: the name of the outcome")
    if not isinstance(value, str) or not value.strip():
        raise ApiError.bad_request("id must be a non-empty string: the name of the outcome")
    # Stripped, as GET /apps/{id}/outcomes strips the names it is asked for.
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError.bad_request(f"id must be at most {MAX_NAME_LENGTH} characters")
    return name


def _device_type(value: Any) -> int:
    if value is None or value == "":
        raise ApiError.bad_request("device_type is required (0 to 14)")
    return check_device_type(value)


def _weight(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError.bad_request("weight must be a number")
    if not math.isfinite(value):
        raise ApiError.bad_request("weight must be a finite number")
    # str() first: Decimal(0.1) would keep the binary float's 55 digits. The size is checked
    # before quantize(), which raises InvalidOperation past the context's 28 digits (5.7e+60).
    weight = Decimal(str(value))
    if abs(weight) >= MAX_ABS_WEIGHT:
        raise ApiError.bad_request("weight is too large")
    return weight.quantize(WEIGHT_QUANTUM)


def _created_at(value: Any, now: datetime) -> datetime:
    """The event time: ``timestamp`` (unix seconds, as the SDK stamps events it had to cache
    while offline), never later than now (our choice: a device clock ahead of ours must not
    push events into the future)."""
    if value is None:
        return now
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ApiError.bad_request("timestamp must be a number of seconds since the Unix epoch")
    if value >= now.timestamp():
        return now
    return datetime.fromtimestamp(value, tz=UTC)


def _notification_ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError.bad_request(f"{field} must be a list of notification ids")
    if len(value) > MAX_NOTIFICATION_IDS:
        raise ApiError.bad_request(f"{field} may contain at most {MAX_NOTIFICATION_IDS} ids")
    ids = []
    for item in value:
        parsed = parse_uuid(item)
        if parsed is None:
            raise ApiError.bad_request(f"{field} must contain notification ids (UUIDs), got {item!r}"[:200])
        ids.append(str(parsed))
    return ids


def _in_app_message_ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError.bad_request(f"{field} must be a list of in-app message ids (strings)")
    if len(value) > MAX_NOTIFICATION_IDS:
        raise ApiError.bad_request(f"{field} may contain at most {MAX_NOTIFICATION_IDS} ids")
    return value


def attribution_for(direct: bool | None) -> str:
    """Android SDK 4's v1 protocol: no ``direct`` means unattributed, true direct, false influenced."""
    if direct is None:
        return Attribution.UNATTRIBUTED
    return Attribution.DIRECT if direct else Attribution.INFLUENCED


# --- Services --------------------------------------------------------------------------------


def outcome_record(
    *,
    app: App,
    name: str,
    device_type: int,
    weight: Decimal | int | float,
    attribution: str,
    notification_ids: Sequence[uuid.UUID | str] = (),
    player_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> OutcomeEvent:
    """Store one outcome event; the arguments are already checked by the caller."""
    return OutcomeEvent.objects.create(
        app=app,
        name=name,
        device_type=device_type,
        weight=Decimal(str(weight)),
        attribution=attribution,
        notification_ids=[str(item) for item in notification_ids],
        player_id=player_id,
        created_at=created_at or timezone.now(),
    )


@transaction.atomic
def outcome_measure(*, app: App, data: dict[str, Any]) -> OutcomeEvent:
    """``POST /outcomes/measure``: one event, attributed from ``direct`` (see attribution_for)."""
    name = _name(data.get("id"))
    device_type = _device_type(data.get("device_type"))
    weight = _weight(data.get("weight"))
    created_at = _created_at(data.get("timestamp"), timezone.now())
    direct = data.get("direct")
    if direct is not None and not isinstance(direct, bool):
        raise ApiError.bad_request("direct must be true, false or absent")
    notification_ids = _notification_ids(data.get("notification_ids"), "notification_ids")
    return outcome_record(
        app=app,
        name=name,
        device_type=device_type,
        weight=weight,
        attribution=attribution_for(direct),
        notification_ids=notification_ids,
        created_at=created_at,
    )


@transaction.atomic
def outcome_measure_sources(*, app: App, data: dict[str, Any]) -> OutcomeEvent:
    """``POST /outcomes/measure_sources`` (outcomes v2): one event, attributed

    1. direct when ``sources.direct.notification_ids`` is non-empty;
    2. else influenced when ``sources.indirect.notification_ids`` is non-empty;
    3. else unattributed.

    In-app message ids are checked but not stored: the outcome totals are per notification.
    """
    name = _name(data.get("id"))
    device_type = _device_type(data.get("device_type"))
    weight = _weight(data.get("weight"))
    created_at = _created_at(data.get("timestamp"), timezone.now())
    sources = data.get("sources")
    if sources is None:
        sources = {}
    if not isinstance(sources, dict):
        raise ApiError.bad_request("sources must be an object with optional direct and indirect")
    ids: dict[str, list[str]] = {}
    for kind in ("direct", "indirect"):
        source = sources.get(kind)
        if source is None:
            source = {}
        if not isinstance(source, dict):
            raise ApiError.bad_request(
                f"sources.{kind} must be an object with notification_ids and in_app_message_ids"
            )
        ids[kind] = _notification_ids(source.get("notification_ids"), f"sources.{kind}.notification_ids")
        _in_app_message_ids(source.get("in_app_message_ids"), f"sources.{kind}.in_app_message_ids")
    if ids["direct"]:
        attribution, notification_ids = Attribution.DIRECT, ids["direct"]
    elif ids["indirect"]:
        attribution, notification_ids = Attribution.INFLUENCED, ids["indirect"]
    else:
        attribution, notification_ids = Attribution.UNATTRIBUTED, []
    return outcome_record(
        app=app,
        name=name,
        device_type=device_type,
        weight=weight,
        attribution=attribution,
        notification_ids=notification_ids,
        created_at=created_at,
    )


# --- Selector --------------------------------------------------------------------------------


def _parse_outcome_name(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, str):
        raise ApiError.bad_request("outcome_names must be strings of the form <name>.<count|sum>")
    name, dot, aggregation = raw.rpartition(".")
    if not dot or not name or aggregation not in AGGREGATIONS:
        raise ApiError.bad_request(
            f"outcome_names: {raw!r} must be <name>.count or <name>.sum (e.g. os__click.count)"[:300]
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError.bad_request(f"outcome_names: a name must be at most {MAX_NAME_LENGTH} characters")
    if name == CLICK and aggregation != "count":
        raise ApiError.bad_request("outcome_names: os__click supports only count (os__click.count)")
    return name, aggregation


def _parse_platforms(platforms: Sequence[int | str] | None) -> list[int] | None:
    if not platforms:
        return None
    parsed = []
    for item in platforms:
        text = str(item).strip()
        if not text.isdigit() or int(text) not in DeviceType.values:
            raise ApiError.bad_request(
                f"outcome_platforms must be a comma-separated list of device types (0 to 14), got {item!r}"[
                    :300
                ]
            )
        parsed.append(int(text))
    return parsed


def _number(value: Decimal | None) -> int:
    """Whole numbers: OneSignal's generated clients type ``OutcomeData.value`` as an integer and
    refuse 3.5, so a fractional sum is rounded (half up) rather than break them."""
    if value is None:
        return 0
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def outcome_values(
    *,
    app: App,
    names: Sequence[str],
    time_range: str | None = None,
    platforms: Sequence[int | str] | None = None,
    attribution: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """``{"id", "value", "aggregation"}`` for each ``<name>.<count|sum>`` of ``names``, in order.

    1. Check the arguments (400 on anything unknown): ``time_range`` is 1h (default), 1d or 1mo
       (30 days); ``platforms`` are device types (default all); ``attribution`` is direct,
       influenced, unattributed or total (default, the sum of the three).
    2. One grouped query sums the app's events of every requested name in the window.
    3. ``os__click.count`` counts this app's deliveries opened in the window (one more query);
       a click is direct by definition, so it is 0 for influenced and unattributed.
    """
    parsed = [_parse_outcome_name(raw) for raw in names]
    if not parsed:
        raise ApiError.bad_request(
            "outcome_names is required: a comma-separated list of <name>.<count|sum>, e.g. os__click.count"
        )
    if len(parsed) > MAX_OUTCOME_NAMES:
        raise ApiError.bad_request(f"outcome_names may list at most {MAX_OUTCOME_NAMES} outcomes")
    time_range = time_range or DEFAULT_TIME_RANGE
    if time_range not in TIME_RANGES:
        raise ApiError.bad_request("outcome_time_range must be 1h, 1d or 1mo")
    attribution = attribution or TOTAL
    if attribution not in ATTRIBUTIONS:
        raise ApiError.bad_request("outcome_attribution must be direct, influenced, unattributed or total")
    device_types = _parse_platforms(platforms)

    now = now or timezone.now()
    since = now - TIME_RANGES[time_range]

    totals: dict[str, dict[str, Any]] = {}
    event_names = {name for name, _ in parsed if name != CLICK}
    if event_names:
        events = OutcomeEvent.objects.filter(
            app=app, name__in=event_names, created_at__gt=since, created_at__lte=now
        )
        if device_types is not None:
            events = events.filter(device_type__in=device_types)
        if attribution != TOTAL:
            events = events.filter(attribution=attribution)
        for row in events.values("name").annotate(count=Count("id"), sum=Sum("weight")).order_by():
            totals[row["name"]] = row

    clicks = 0
    if any(name == CLICK for name, _ in parsed) and attribution in (TOTAL, Attribution.DIRECT):
        opened = Delivery.objects.filter(notification__app=app, opened_at__gt=since, opened_at__lte=now)
        if device_types is not None:
            opened = opened.filter(player__device_type__in=device_types)
        clicks = opened.count()

    outcomes = []
    for name, aggregation in parsed:
        if name == CLICK:
            value: int | float = clicks
        else:
            row = totals.get(name, {})
            value = row.get("count", 0) if aggregation == "count" else _number(row.get("sum"))
        outcomes.append({"id": name, "value": value, "aggregation": aggregation})
    return outcomes
