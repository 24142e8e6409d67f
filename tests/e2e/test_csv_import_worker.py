"""CSV import end to end: csv_export of one app through a real worker, the downloaded file uploaded
to another app's csv_import, the same worker importing it chunk by chunk, progress read over HTTP.

The worker (tests/e2e/conftest.py ``celery_worker``) reads the upload from the MEDIA_ROOT it shares
with the live server; small chunks make the 2,000-player file take several transactions.
"""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from players.models import CsvImport, Player
from tests.e2e.test_csv_export_worker import http, seed_players, start_export, wait_for_download

pytestmark = pytest.mark.e2e

PLAYERS = 2_000
TIMEOUT_SECONDS = 120
EVERY_EXTRA = [
    "location",
    "country",
    "rooted",
    "notification_types",
    "ip",
    "external_user_id",
    "web_auth",
    "web_p256",
]


@pytest.fixture(scope="module")
def worker_extra_env() -> dict[str, str]:
    return {"HERALD_CSV_IMPORT_CHUNK_BYTES": "65536"}


def upload(live_server, tenant, body: bytes, content_type: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the live server
        f"{live_server.url}/api/v1/apps/{tenant.app.id}/players/csv_import",
        data=body,
        method="POST",
        headers={"Authorization": f"Key {tenant.app_key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_import(live_server, tenant, job_id: str, worker) -> tuple[dict, list[int]]:
    """Poll GET …/csv_import/{id} until it completes; the rows_processed values seen on the way."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    seen: list[int] = []
    while True:
        status, payload = http(
            "GET",
            f"{live_server.url}/api/v1/apps/{tenant.app.id}/players/csv_import/{job_id}",
            key=tenant.app_key,
        )
        assert status == 200, payload
        body = json.loads(payload)
        seen.append(body["rows_processed"])
        if body["status"] in ("completed", "failed"):
            return body, seen
        if worker.poll() is not None:
            pytest.fail(f"celery worker died:\n{worker.log_path.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"import not done after {TIMEOUT_SECONDS}s: {body}\n{worker.log_path.read_text()[-5000:]}"
            )
        time.sleep(0.1)


def test_an_export_round_trips_through_the_worker_into_another_app(live_server, tenant, other_tenant, worker):
    seed_players(tenant.app, PLAYERS)
    # The export test's seed writes COPY rows the API would refuse: iOS players get real APNs tokens.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE players_player SET identifier = md5(identifier) || md5(identifier || '.') "
            "WHERE app_id = %s AND device_type = 0",
            [tenant.app.id],
        )
    status, body = start_export(live_server, tenant, {"extra_fields": EVERY_EXTRA})
    assert status == 200, body
    exported, _ = wait_for_download(body["csv_file_url"], worker)

    status, job = upload(live_server, other_tenant, exported, "application/gzip")
    assert status == 202, job
    assert job["status"] == "pending" and job["columns"][:2] == ["id", "identifier"]
    done, seen = wait_for_import(live_server, other_tenant, job["id"], worker)
    assert done["status"] == "completed", done
    assert (done["rows_processed"], done["rows_created"], done["rows_failed"]) == (PLAYERS, PLAYERS, 0), done[
        "errors"
    ][:5]
    assert seen == sorted(seen)  # progress only goes forward
    assert done["bytes_read"] == done["size_bytes"] == len(exported)

    fields = [
        "device_type",
        "tags",
        "session_count",
        "language",
        "country",
        "lat",
        "long",
        "rooted",
        "ip",
        "external_user_id",
        "web_auth",
        "web_p256",
        "amount_spent",
        "invalid_identifier",
        "notification_types",
        "game_version",
        "device_model",
        "device_os",
        "timezone",
        "playtime",
    ]
    source = {p.identifier: p for p in Player.objects.filter(app=tenant.app)}
    copied = {p.identifier: p for p in Player.objects.filter(app=other_tenant.app)}
    assert set(copied) == set(source)
    for identifier, player in source.items():
        twin = copied[identifier]
        assert [getattr(twin, f) for f in fields] == [getattr(player, f) for f in fields], identifier
        assert twin.last_active == player.last_active.replace(microsecond=0)
        assert twin.id != player.id
    assert not CsvImport.objects.filter(status=CsvImport.Status.RUNNING).exists()


def test_refused_rows_are_reported_by_row_through_the_worker(live_server, tenant, worker):
    lines = ["identifier,device_type,session_count,tags"]
    for n in range(1, 301):
        session = "many" if n % 100 == 0 else str(n)
        lines.append(f'tok-{n},1,{session},"{{""n"":""{n}""}}"')
    lines.insert(151, "tok-short,1")  # row 151: a field short, so COPY refuses its chunk
    status, job = upload(live_server, tenant, ("\n".join(lines) + "\n").encode(), "text/csv")
    assert status == 202, job
    done, _ = wait_for_import(live_server, tenant, job["id"], worker)
    assert done["status"] == "completed", done
    assert (done["rows_processed"], done["rows_created"], done["rows_failed"]) == (301, 297, 4)
    assert done["errors"] == [
        {"row": 100, "error": "session_count must be a whole number from 0 to 2147483647 (got 'many')"},
        {"row": 151, "error": "expected 4 fields as in the header, found 2"},
        {"row": 201, "error": "session_count must be a whole number from 0 to 2147483647 (got 'many')"},
        {"row": 301, "error": "session_count must be a whole number from 0 to 2147483647 (got 'many')"},
    ]
    assert Player.objects.get(app=tenant.app, identifier="tok-299").tags == {"n": "299"}
