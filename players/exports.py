"""Streaming CSV export of an app's players: PostgreSQL's COPY into a gzip file, never all in memory."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.expressions import RawSQL

from core.api.errors import ApiError
from players.models import CsvExport, Player
from players.selectors import segment_players


def copy_unsupported(what: str) -> str | None:
    """Why ``what`` cannot run on this database, or None: the players' CSV import and export run on
    PostgreSQL's COPY, which the embedded SQLite default of ``make run`` does not have."""
    if connection.vendor == "postgresql":
        return None
    return (
        f"{what} needs PostgreSQL (it runs on COPY); this database is {connection.vendor}. "
        "Set DATABASE_URL=postgres://… (see the README's Quickstart)."
    )


def require_copy(what: str) -> None:
    """Refuse before anything is stored (501: this server cannot, whatever the request)."""
    problem = copy_unsupported(what)
    if problem:
        raise ApiError(501, {"errors": [problem]})


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


def export_path(export: CsvExport) -> Path:
    return Path(settings.MEDIA_ROOT) / export.relative_path


# How PostgreSQL writes a column when it is not the column itself: the formats the export has
# always had (timestamps in UTC to the second, location as "lat,long", the address alone).
_SQL_EXPRESSIONS = {
    "last_active": "to_char({t}.last_active AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    "created_at": "to_char({t}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    "location": (
        "CASE WHEN {t}.lat IS NOT NULL AND {t}.long IS NOT NULL "
        "THEN {t}.lat::text || ',' || {t}.long::text END"
    ),
    "ip": "host({t}.ip)",
}


def _rows_query(players, columns: list[str]) -> tuple[str, tuple]:
    """The SELECT (and its parameters) of the export's rows, each column formatted by PostgreSQL."""
    table = connection.ops.quote_name(Player._meta.db_table)
    selected = {
        f"c{i}": RawSQL(_SQL_EXPRESSIONS[column].format(t=table), ())  # noqa: S611 - constants
        if column in _SQL_EXPRESSIONS
        else F(column)
        for i, column in enumerate(columns)
    }
    query = players.order_by("id").annotate(**selected).values_list(*selected)
    return query.query.sql_with_params()


# (rows written so far, rows in all): called about every PROGRESS_BYTES of CSV.
ExportProgress = Callable[[int, int], None]
PROGRESS_BYTES = 256 * 1024


def write_export(export: CsvExport, progress: ExportProgress | None = None) -> int:
    """Write the export's file (atomically: a partial file never has the final name).

    PostgreSQL writes the CSV itself (``COPY (SELECT …) TO STDOUT (FORMAT csv)``), streamed into
    gzip: no row becomes a Python object, which made the export several times faster than paging
    through the ORM. One query, so the file is one consistent snapshot of the segment. Booleans
    are ``t``/``f``, NULL is an empty field, tags are their JSON, timestamps UTC to the second.

    ``progress`` (``manage.py export_players``'s bar) costs one COUNT first, for the total, and
    counts rows by line ends as the blocks pass: a quoted field with a line end in it counts
    twice, so the returned count (COPY's own) is the exact one.
    """
    players = segment_players(app=export.app, segment_name=export.segment_name)
    if export.last_active_since is not None:
        players = players.filter(last_active__gte=export.last_active_since)
    columns = [*DEFAULT_COLUMNS, *export.extra_fields]
    sql, params = _rows_query(players, columns)
    final = export_path(export)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    total = players.count() if progress is not None else 0
    with gzip.open(partial, "wb", compresslevel=6) as out, connection.cursor() as cursor:
        out.write((",".join(columns) + "\n").encode())
        with cursor.connection.cursor() as raw:
            with raw.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
                if progress is None:
                    for block in copy:
                        out.write(block)
                else:
                    _copy_with_progress(copy, out, progress, total)
            rows = raw.rowcount  # set once the COPY has ended, before the cursor closes
    os.replace(partial, final)
    return rows


def _copy_with_progress(copy, out, progress: ExportProgress, total: int) -> None:
    # A separate loop, so that an export without a bar (the API's) runs the plain one above.
    progress(0, total)
    rows = pending_rows = pending_bytes = 0
    for block in copy:
        data = bytes(block)  # psycopg hands out memoryviews, which cannot count
        out.write(data)
        pending_rows += data.count(b"\n")
        pending_bytes += len(data)
        if pending_bytes >= PROGRESS_BYTES:
            rows += pending_rows
            progress(rows, total)
            pending_rows = pending_bytes = 0
    progress(rows + pending_rows, total)


def remove_export_file(export: CsvExport) -> None:
    export_path(export).unlink(missing_ok=True)
