"""Per-notification exports from the delivery records: history (sent / clicked) and events."""

from __future__ import annotations

import csv
import gzip
import io
import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from apps.models import App
from core.api.errors import ApiError
from notifications.models import Delivery
from notifications.services import notification_or_404
from players.export_services import export_start
from players.exports import export_path
from players.models import CsvExport

HISTORY_COLUMNS = ("player_id", "onesignal_id", "external_id", "target_channel", "timestamp")
EVENT_COLUMNS = (
    "notification_id",
    "player_id",
    "external_id",
    "device_type",
    "status",
    "error",
    "sent_at",
    "opened_at",
    "received_at",
)
PAGE_SIZE = 5000


def notification_history_start(
    *, app: App, notification_id: str, events: Any, email: Any, url_base: str
) -> CsvExport:
    notification = notification_or_404(app, notification_id)
    if events not in ("sent", "clicked"):
        raise ApiError.bad_request('events must be "sent" or "clicked"')
    if email is not None:
        if not isinstance(email, str):
            raise ApiError.bad_request("email must be an email address")
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ApiError.bad_request("email must be an email address") from exc
    return export_start(
        app=app, kind=events, url_base=url_base, notification=notification, email=email or None
    )


def notification_events_export_start(*, app: App, notification_id: str, url_base: str) -> CsvExport:
    notification = notification_or_404(app, notification_id)
    return export_start(app=app, kind=CsvExport.Kind.EVENTS, url_base=url_base, notification=notification)


def _iso(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _records(export: CsvExport):
    deliveries = Delivery.objects.filter(notification=export.notification)
    if export.kind == CsvExport.Kind.SENT:
        deliveries = deliveries.filter(status=Delivery.Status.SENT)
    elif export.kind == CsvExport.Kind.CLICKED:
        deliveries = deliveries.filter(opened_at__isnull=False)
    fields = (
        "pk",
        "player_id",
        "player__external_user_id",
        "player__device_type",
        "status",
        "error",
        "sent_at",
        "opened_at",
        "received_at",
    )
    last = 0
    while True:
        page = list(deliveries.filter(pk__gt=last).order_by("pk").values(*fields)[:PAGE_SIZE])
        if not page:
            return
        yield from page
        last = page[-1]["pk"]


def _row(export: CsvExport, record: dict) -> list[str]:
    player_id = str(record["player_id"])
    if export.kind == CsvExport.Kind.EVENTS:
        return [
            str(export.notification_id),
            player_id,
            record["player__external_user_id"] or "",
            str(record["player__device_type"]),
            Delivery.Status(record["status"]).label.lower(),
            record["error"],
            _iso(record["sent_at"]),
            _iso(record["opened_at"]),
            _iso(record["received_at"]),
        ]
    timestamp = _iso(record["opened_at"]) if export.kind == CsvExport.Kind.CLICKED else ""
    return [
        player_id,
        player_id,
        record["player__external_user_id"] or "",
        export.notification.channel,
        timestamp,
    ]


def write_notification_export(export: CsvExport) -> int:
    """Stream the delivery records into a gzip CSV (written under a temporary name, then renamed)."""
    final = export_path(export)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    columns = EVENT_COLUMNS if export.kind == CsvExport.Kind.EVENTS else HISTORY_COLUMNS
    rows = 0
    with gzip.open(partial, "wt", newline="", encoding="utf-8") as raw:
        csv.writer(raw).writerow(columns)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for record in _records(export):
            writer.writerow(_row(export, record))
            rows += 1
            if rows % PAGE_SIZE == 0:
                raw.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        raw.write(buffer.getvalue())
    os.replace(partial, final)
    return rows
