"""Export lifecycle, for the players CSV and the notification history and event exports:
start (one running export per app and family), run (idempotent), expire."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.models import App
from core.api.errors import ApiError
from players.exports import EXTRA_COLUMNS, ExportProgress, remove_export_file, require_copy, write_export
from players.models import CsvExport
from players.selectors import segment_players

logger = logging.getLogger(__name__)

CONCURRENT_EXPORT = (
    "User already running another CSV export. "
    "Please wait until your other CSV exporter finishes and try again."
)


def _parse_last_active_since(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(str(value).strip()), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ApiError.bad_request("last_active_since must be unix seconds, as a string") from exc


PLAYER_KINDS = [CsvExport.Kind.PLAYERS]
NOTIFICATION_KINDS = [CsvExport.Kind.SENT, CsvExport.Kind.CLICKED, CsvExport.Kind.EVENTS]


def _active_exports(app: App, kinds: list[str]):
    lease_start = timezone.now() - timedelta(seconds=settings.HERALD_CSV_EXPORT_LEASE_SECONDS)
    return CsvExport.objects.filter(app=app, kind__in=kinds).filter(
        Q(status=CsvExport.Status.PENDING, created_at__gte=lease_start)
        | Q(status=CsvExport.Status.RUNNING, started_at__gte=lease_start)
    )


@transaction.atomic
def export_start(*, app: App, kind: str, url_base: str, enqueue: bool = True, **fields: Any) -> CsvExport:
    """Create an export and enqueue it after commit; 400 while another of its family runs.

    ``enqueue=False`` leaves the export to the caller, who runs it with ``csv_export_run`` in its
    own process (``manage.py export_players``)."""
    from players.tasks import csv_export_task

    # Serialise concurrent starts for this app on its row, then check for a running export.
    App.objects.select_for_update().filter(pk=app.pk).first()
    family = PLAYER_KINDS if kind == CsvExport.Kind.PLAYERS else NOTIFICATION_KINDS
    if _active_exports(app, family).exists():
        raise ApiError.bad_request(CONCURRENT_EXPORT)
    now = timezone.now()
    export = CsvExport(
        app=app,
        kind=kind,
        token=uuid.uuid4().hex,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.HERALD_CSV_EXPORT_TTL_SECONDS),
        **fields,
    )
    export.url = f"{url_base}/{export.relative_path}"
    export.save(force_insert=True)
    if enqueue:
        csv_export_task.delay_on_commit(str(export.id))
    return export


def csv_export_start(
    *,
    app: App,
    url_base: str,
    extra_fields: list[str],
    last_active_since: Any,
    segment_name: str | None,
    enqueue: bool = True,
) -> CsvExport:
    require_copy("The CSV export")
    unknown = [field for field in extra_fields if field not in EXTRA_COLUMNS]
    if unknown:
        raise ApiError.bad_request(
            f"extra_fields: unknown field {unknown[0]!r}; allowed: {', '.join(EXTRA_COLUMNS)}"[:300]
        )
    since = _parse_last_active_since(last_active_since)
    segment_players(app=app, segment_name=segment_name)  # refuse an unknown segment now, not later
    return export_start(
        app=app,
        kind=CsvExport.Kind.PLAYERS,
        url_base=url_base,
        extra_fields=list(dict.fromkeys(extra_fields)),
        last_active_since=since,
        segment_name=segment_name or None,
        enqueue=enqueue,
    )


def _writer(kind: str):
    if kind == CsvExport.Kind.PLAYERS:
        return write_export
    from notifications.history import write_notification_export

    return write_notification_export


def csv_export_run(*, export_id: str, progress: ExportProgress | None = None) -> None:
    """Run an export once. A redelivered task finds the row already claimed and does nothing,
    unless the claim's lease ran out (the worker died), in which case it runs again.

    ``progress`` (rows written, rows in all) is reported by the players export only."""
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.HERALD_CSV_EXPORT_LEASE_SECONDS)
    claimed = (
        CsvExport.objects.filter(pk=export_id)
        .filter(
            Q(status=CsvExport.Status.PENDING)
            | Q(status=CsvExport.Status.RUNNING, started_at__lt=lease_start)
        )
        .update(status=CsvExport.Status.RUNNING, started_at=now)
    )
    if claimed != 1:
        return
    export = CsvExport.objects.select_related("app", "notification").get(pk=export_id)
    # Finish only our own claim: an export expired meanwhile, or re-claimed after our lease ran
    # out, must not be flipped back by this run.
    ours = CsvExport.objects.filter(pk=export_id, status=CsvExport.Status.RUNNING, started_at=now)
    try:
        if progress is not None and export.kind == CsvExport.Kind.PLAYERS:
            rows = write_export(export, progress)
        else:
            rows = _writer(export.kind)(export)
    except Exception as exc:
        logger.exception("CSV export %s failed", export_id)
        ours.update(status=CsvExport.Status.FAILED, error=str(exc)[:1000], finished_at=timezone.now())
        raise
    finished = ours.update(status=CsvExport.Status.READY, row_count=rows, finished_at=timezone.now())
    if not finished and CsvExport.objects.filter(pk=export_id, status=CsvExport.Status.EXPIRED).exists():
        remove_export_file(export)
    elif finished and export.email:
        send_mail(
            subject="Your Herald export is ready",
            message=f"Download it within 3 days: {export.url}",
            from_email=None,
            recipient_list=[export.email],
            fail_silently=True,
        )


def csv_exports_expire() -> int:
    """Delete the files of exports past their expiry; their URLs then answer 403."""
    expired = list(
        CsvExport.objects.filter(expires_at__lt=timezone.now()).exclude(status=CsvExport.Status.EXPIRED)
    )
    for export in expired:
        remove_export_file(export)
    CsvExport.objects.filter(pk__in=[e.pk for e in expired]).update(status=CsvExport.Status.EXPIRED)
    return len(expired)
