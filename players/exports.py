"""Streaming CSV export of an app's players: keyset pages into a gzip file, never all in memory."""

from __future__ import annotations

import csv
import gzip
import io
import os
from datetime import datetime
from pathlib import Path

import orjson
from django.conf import settings

from players.models import CsvExport
from players.selectors import segment_players

DEFAULT_COLUMNS = (
    "id",
    "identifier",
    "session_count",
    "language",
    "timezone",
    "game_version",
    "device_os",
    "device_type",
    "device_model",
    "ad_id",
    "tags",
    "last_active",
    "playtime",
    "amount_spent",
    "created_at",
    "invalid_identifier",
    "badge_count",
)
EXTRA_COLUMNS = (
    "location",
    "country",
    "rooted",
    "notification_types",
    "ip",
    "external_user_id",
    "web_auth",
    "web_p256",
)
PAGE_SIZE = 5000
# Model fields read per row: the default columns plus every possible extra.
_FIELDS = (
    *DEFAULT_COLUMNS,
    "lat",
    "long",
    "country",
    "rooted",
    "notification_types",
    "ip",
    "external_user_id",
    "web_auth",
    "web_p256",
)


def export_path(export: CsvExport) -> Path:
    return Path(settings.MEDIA_ROOT) / export.relative_path


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _row(record: dict, extra_fields: list[str]) -> list[str]:
    row = [_cell(record[column]) for column in DEFAULT_COLUMNS]
    for extra in extra_fields:
        if extra == "location":
            has_location = record["lat"] is not None and record["long"] is not None
            row.append(f"{record['lat']},{record['long']}" if has_location else "")
        else:
            row.append(_cell(record[extra]))
    return row


def write_export(export: CsvExport) -> int:
    """Write the export's file (atomically: a partial file never has the final name)."""
    players = segment_players(app=export.app, segment_name=export.segment_name)
    if export.last_active_since is not None:
        players = players.filter(last_active__gte=export.last_active_since)
    final = export_path(export)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    rows = 0
    with gzip.open(partial, "wt", newline="", encoding="utf-8", compresslevel=6) as raw:
        out = csv.writer(raw)
        out.writerow([*DEFAULT_COLUMNS, *export.extra_fields])
        last_id = None
        while True:
            page = players.order_by("id")
            if last_id is not None:
                page = page.filter(id__gt=last_id)
            records = list(page.values(*_FIELDS)[:PAGE_SIZE])
            if not records:
                break
            buffer = io.StringIO()
            csv.writer(buffer).writerows(_row(r, export.extra_fields) for r in records)
            raw.write(buffer.getvalue())
            rows += len(records)
            last_id = records[-1]["id"]
    os.replace(partial, final)
    return rows


def remove_export_file(export: CsvExport) -> None:
    export_path(export).unlink(missing_ok=True)
