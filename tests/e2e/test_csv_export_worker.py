"""CSV export end to end: HTTP request -> Celery broker -> a real worker process -> the download URL.

The worker (tests/e2e/conftest.py ``celery_worker``) is a separate ``celery worker`` process on the
test database, the test Redis broker and a MEDIA_ROOT shared with the live server.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from players.export_services import CONCURRENT_EXPORT
from players.exports import DEFAULT_COLUMNS, export_path
from players.models import CsvExport, Player
from players.tasks import expire_csv_exports_task

pytestmark = pytest.mark.e2e

BIG_EXPORT_ROWS = 100_000
SEED_BATCH = 5_000
READY_TIMEOUT_SECONDS = 120
NOT_READY = {"errors": ["This export is not ready yet; try again shortly"]}
EXPIRED = {"errors": ["This export has expired"]}
COUNTRIES = ("US", "DE", "FR", "BR", "IN", "JP", None)


# --- helpers ------------------------------------------------------------------------------------


def http(method: str, url: str, *, key: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - the live server
    if key is not None:
        request.add_header("Authorization", f"Key {key}")
    if body is not None or method == "POST":
        request.add_header("Content-Type", "application/json; charset=UTF-8")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_export(live_server, tenant, body: dict | None = None) -> tuple[int, dict]:
    """POST /api/v1/players/csv_export?app_id=...; ``body=None`` sends an empty body, as 5.18 does."""
    raw = json.dumps(body).encode() if body is not None else b""
    status, payload = http(
        "POST",
        f"{live_server.url}/api/v1/players/csv_export?app_id={tenant.app.id}",
        key=tenant.app_key,
        body=raw,
    )
    return status, json.loads(payload)


def export_for(url: str) -> CsvExport:
    token = url.rsplit("/", 1)[1].split("_")[1]
    return CsvExport.objects.get(token=token)


def wait_for_download(url: str, worker, timeout: float = READY_TIMEOUT_SECONDS) -> tuple[bytes, list[int]]:
    """Poll the URL until it answers 200; every earlier answer must be the 403 "not ready"."""
    deadline = time.monotonic() + timeout
    early: list[int] = []
    while True:
        status, payload = http("GET", url)
        if status == 200:
            return payload, early
        assert (status, json.loads(payload)) == (403, NOT_READY), (status, payload[:300])
        early.append(status)
        if worker.poll() is not None:
            pytest.fail(f"celery worker died:\n{worker.log_path.read_text()}")
        if time.monotonic() > deadline:
            export = export_for(url)
            pytest.fail(
                f"export not ready after {timeout}s (status {export.status}, error {export.error!r})\n"
                f"worker log:\n{worker.log_path.read_text()[-5000:]}"
            )
        time.sleep(0.25)


def read_csv(payload: bytes) -> list[list[str]]:
    assert payload[:2] == b"\x1f\x8b", "not gzip"
    text = gzip.decompress(payload).decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def cell_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


NULL = r"\N"


def _copy_text(value) -> str:
    """One value in COPY's text format (seed values hold no tab, newline or backslash)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def seed_players(app, count: int) -> None:
    """``count`` committed players with varied tags, external ids, countries and locations.

    Rows go in through COPY in text format, built as text directly (no model instances), so
    100,000 players take seconds. Columns not set here get the model field's default.
    """
    rng = random.Random(20240601)
    base = timezone.now().replace(microsecond=0) - timedelta(days=30)
    fields = list(Player._meta.concrete_fields)
    template = Player(app=app, device_type=1)
    default_text = {f.attname: _copy_text(getattr(template, f.attname)) for f in fields}
    attnames = [f.attname for f in fields]
    table = connection.ops.quote_name(Player._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    app_id = str(app.pk)
    with connection.cursor() as cursor, cursor.connection.cursor() as raw:
        for start in range(0, count, SEED_BATCH):
            lines = []
            for n in range(start, min(start + SEED_BATCH, count)):
                located = n % 3 == 0
                tags = {"level": str(n % 50), "plan": ("free", "pro")[n % 2], "cohort": f"c{n % 7}"}
                values = {
                    "id": str(uuid.uuid4()),
                    "app_id": app_id,
                    "device_type": ("1", "0", "5")[n % 3],
                    "identifier": f"tok-{n:06d}-{rng.getrandbits(64):016x}",
                    "external_user_id": f"user-{n % 5000}" if n % 4 else NULL,
                    "language": ("en", "de", "fr", NULL)[n % 4],
                    "timezone": str((n % 25 - 12) * 3600),
                    "country": COUNTRIES[n % len(COUNTRIES)] or NULL,
                    "game_version": f"1.{n % 10}",
                    "device_model": ("Pixel 8", "iPhone15,2", 'Model "X", rev 2')[n % 3],
                    "device_os": ("14", "17.4", "13")[n % 3],
                    "tags": orjson.dumps(tags).decode() if n % 10 else "{}",
                    "session_count": str(n % 100 + 1),
                    "playtime": str(n * 7),
                    "amount_spent": f"{n % 1000}.{n % 100:02d}",
                    "badge_count": str(n % 5),
                    "notification_types": ("1", "1", "1", "-2")[n % 4],
                    "invalid_identifier": "t" if n % 11 == 0 else "f",
                    "rooted": (NULL, "t", "f")[n % 3],
                    "ip": f"10.{n % 256}.{n // 256 % 256}.1" if n % 2 else NULL,
                    "lat": f"{rng.uniform(-90, 90):.5f}" if located else NULL,
                    "long": f"{rng.uniform(-180, 180):.5f}" if located else NULL,
                    "web_auth": f"auth-{n}" if n % 3 == 2 else NULL,
                    "web_p256": f"p256-{n}" if n % 3 == 2 else NULL,
                    "created_at": (base + timedelta(seconds=n)).isoformat(),
                    "last_active": (base + timedelta(seconds=2 * n)).isoformat(),
                }
                lines.append("\t".join([values.get(name) or default_text[name] for name in attnames]))
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write("\n".join(lines) + "\n")
    assert Player.objects.filter(app=app).count() == count


def expected_row(player: Player, extra_fields: list[str]) -> list[str]:
    def text(value) -> str:
        return "" if value is None else str(value)

    row = [
        str(player.id),
        text(player.identifier),
        str(player.session_count),
        text(player.language),
        text(player.timezone),
        text(player.game_version),
        text(player.device_os),
        str(player.device_type),
        text(player.device_model),
        text(player.ad_id),
        None,  # tags: compared as JSON
        cell_time(player.last_active),
        str(player.playtime),
        str(player.amount_spent),
        cell_time(player.created_at),
        "t" if player.invalid_identifier else "f",
        str(player.badge_count),
    ]
    for field in extra_fields:
        if field == "location":
            row.append(f"{player.lat},{player.long}" if player.lat is not None else "")
        elif field == "rooted":
            row.append("" if player.rooted is None else ("t" if player.rooted else "f"))
        else:
            row.append(text(getattr(player, field)))
    return row


def assert_row_matches(row: list[str], player: Player, extra_fields: list[str]) -> None:
    expected = expected_row(player, extra_fields)
    tags_at = DEFAULT_COLUMNS.index("tags")
    assert json.loads(row[tags_at]) == player.tags, player.id
    row = [*row[:tags_at], None, *row[tags_at + 1 :]]
    assert row == expected, player.id


# --- tests --------------------------------------------------------------------------------------


def test_pending_export_answers_403_and_blocks_a_second_one(live_server, tenant, enqueued_exports):
    """No worker runs this export (its task is recorded, not sent): it stays pending."""
    status, body = start_export(live_server, tenant)
    assert status == 200, body
    url = body["csv_file_url"]
    export = export_for(url)
    assert url == f"{live_server.url}/{export.relative_path}"
    assert export.status == CsvExport.Status.PENDING
    assert enqueued_exports == [str(export.id)]

    status, payload = http("GET", url)
    assert (status, json.loads(payload)) == (403, NOT_READY)

    for second_body in (None, {"extra_fields": ["country"]}):
        status, body = start_export(live_server, tenant, second_body)
        assert (status, body) == (400, {"errors": [CONCURRENT_EXPORT]})
    # ... and also while it runs.
    CsvExport.objects.filter(pk=export.pk).update(status=CsvExport.Status.RUNNING, started_at=timezone.now())
    status, body = start_export(live_server, tenant)
    assert (status, body) == (400, {"errors": [CONCURRENT_EXPORT]})
    assert CsvExport.objects.filter(app=tenant.app).count() == 1
    assert len(enqueued_exports) == 1

    # An unknown or tampered link is a 404, not a 403.
    tampered = url.replace(export.token, uuid.uuid4().hex)
    status, payload = http("GET", tampered)
    assert (status, json.loads(payload)) == (404, {"errors": ["Not Found"]})


def test_worker_exports_100k_players_from_an_empty_body_request(live_server, tenant, worker, settings):
    seed_started = time.monotonic()
    seed_players(tenant.app, BIG_EXPORT_ROWS)
    seed_seconds = time.monotonic() - seed_started

    started = time.monotonic()
    status, body = start_export(live_server, tenant)  # empty body, like the 5.18 client
    assert status == 200, body
    url = body["csv_file_url"]
    export = export_for(url)
    assert url == f"{live_server.url}/{export.relative_path}"
    assert export.extra_fields == []

    payload, early = wait_for_download(url, worker)
    export_seconds = time.monotonic() - started
    export.refresh_from_db()
    assert export.status == CsvExport.Status.READY
    assert export.row_count == BIG_EXPORT_ROWS
    assert export.started_at is not None and export.finished_at is not None
    assert export_path(export) == Path(settings.MEDIA_ROOT) / export.relative_path
    assert export_path(export).is_file()

    rows = read_csv(payload)
    assert rows[0] == list(DEFAULT_COLUMNS)
    data = rows[1:]
    assert len(data) == BIG_EXPORT_ROWS
    ids = [row[0] for row in data]
    assert len(set(ids)) == BIG_EXPORT_ROWS
    assert ids == sorted(ids)  # keyset pages in id order, nothing lost or repeated between pages
    assert set(ids) == {str(i) for i in Player.objects.filter(app=tenant.app).values_list("id", flat=True)}

    by_id = {row[0]: row for row in data}
    sample = list(Player.objects.filter(app=tenant.app).order_by("?")[:200])
    sample += [
        Player.objects.filter(app=tenant.app, invalid_identifier=True).first(),
        Player.objects.filter(app=tenant.app, tags={}).first(),
        Player.objects.filter(app=tenant.app, device_model__contains='"').first(),
    ]
    for player in sample:
        assert_row_matches(by_id[str(player.id)], player, [])
    flags = {row[DEFAULT_COLUMNS.index("invalid_identifier")] for row in data}
    assert flags == {"t", "f"}

    print(  # shown with -s: where the time goes
        f"seeded {BIG_EXPORT_ROWS} in {seed_seconds:.1f}s; export ready+downloaded in {export_seconds:.1f}s "
        f"({len(early)} early 403 polls)"
    )


def test_worker_export_extra_fields_in_request_order_then_expiry(live_server, tenant, worker, settings):
    seed_players(tenant.app, 600)
    fields = ["location", "web_p256", "country", "rooted", "external_user_id", "notification_types", "ip"]
    status, body = start_export(live_server, tenant, {"extra_fields": fields})
    assert status == 200, body
    url = body["csv_file_url"]

    payload, _ = wait_for_download(url, worker)
    rows = read_csv(payload)
    assert rows[0] == [*DEFAULT_COLUMNS, *fields]
    assert len(rows) == 601
    by_id = {row[0]: row for row in rows[1:]}
    for player in Player.objects.filter(app=tenant.app):
        assert_row_matches(by_id[str(player.id)], player, fields)

    # A finished export no longer blocks a new one.
    status, body = start_export(live_server, tenant, {"extra_fields": ["country"]})
    assert status == 200, body
    second_url = body["csv_file_url"]
    assert second_url != url
    wait_for_download(second_url, worker)

    # last_active_since (unix seconds, as a string) keeps the players active since then.
    since = Player.objects.filter(app=tenant.app).order_by("last_active")[250].last_active
    status, body = start_export(live_server, tenant, {"last_active_since": str(int(since.timestamp()))})
    assert status == 200, body
    since_url = body["csv_file_url"]
    since_payload, _ = wait_for_download(since_url, worker)
    since_rows = read_csv(since_payload)
    assert since_rows[0] == list(DEFAULT_COLUMNS)
    expected_ids = {
        str(i)
        for i in Player.objects.filter(app=tenant.app, last_active__gte=since).values_list("id", flat=True)
    }
    assert len(expected_ids) == 350
    assert {row[0] for row in since_rows[1:]} == expected_ids
    assert export_for(since_url).row_count == 350

    # Expiry: the beat task (run by the real worker) deletes the file; the URL then answers 403.
    export = export_for(url)
    file = export_path(export)
    assert file.is_file()
    CsvExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expire_csv_exports_task.delay()
    deadline = time.monotonic() + 30
    while CsvExport.objects.get(pk=export.pk).status != CsvExport.Status.EXPIRED:
        if time.monotonic() > deadline:
            pytest.fail(f"export not expired by the worker\n{worker.log_path.read_text()[-5000:]}")
        time.sleep(0.2)
    assert not file.exists()
    status, payload = http("GET", url)
    assert (status, json.loads(payload)) == (403, EXPIRED)
    # The other export is untouched and still downloads.
    status, _ = http("GET", second_url)
    assert status == 200
    assert export_for(second_url).status == CsvExport.Status.READY
