"""CSV import of players (players/imports.py, players/import_services.py), run by the service in
this process on the test database; the same through a real worker is in tests/e2e."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from core.api.errors import ApiError
from players import imports
from players.exports import EXTRA_COLUMNS, export_path, write_export
from players.import_services import CONCURRENT_IMPORT, csv_import_run, csv_import_start, import_path
from players.models import CsvExport, CsvImport, Player
from tests.factories import PlayerFactory, apns_token

pytestmark = pytest.mark.django_db

APNS = "0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def start(app, content: str | bytes, name: str = "players.csv") -> CsvImport:
    data = content.encode() if isinstance(content, str) else content
    return csv_import_start(app=app, chunks=[data], file_name=name)


def run(job: CsvImport) -> CsvImport:
    csv_import_run(import_id=str(job.id))
    job.refresh_from_db()
    return job


def imported(app, content: str | bytes) -> CsvImport:
    return run(start(app, content))


def by_identifier(app) -> dict[str, Player]:
    return {p.identifier: p for p in Player.objects.filter(app=app)}


# --- every column, typed ---------------------------------------------------------------------


def test_every_export_column_is_read_and_typed(own):
    pid = uuid.uuid4()
    job = imported(
        own.app,
        "id,identifier,session_count,language,timezone,game_version,device_os,device_type,device_model,"
        "ad_id,tags,last_active,playtime,amount_spent,created_at,invalid_identifier,badge_count,location,"
        "country,rooted,notification_types,ip,external_user_id,web_auth,web_p256\n"
        f'{pid},tok-1,7,de,3600,1.2.3,14,1,"Pixel ""8"", rev 2",ad-9,'
        '"{""level"":""3"",""n"":4,""b"":true}",'
        '2026-01-02 03:04:05,120,12.345,2025-12-31 23:59:59,f,2,"48.8584,2.2945",fr,t,-2,2001:db8::1,'
        "user-1,auth-1,p256-1\n",
    )
    assert (job.status, job.rows_processed, job.rows_created, job.rows_failed) == ("completed", 1, 1, 0), (
        job.errors
    )
    player = Player.objects.get(app=own.app)
    assert player.id == pid and player.identifier == "tok-1" and player.device_type == 1
    assert player.session_count == 7 and player.language == "de" and player.timezone == 3600
    assert (player.game_version, player.device_os, player.device_model) == ("1.2.3", "14", 'Pixel "8", rev 2')
    assert player.ad_id == "ad-9"
    assert player.tags == {"level": "3", "n": "4", "b": "true"}  # numbers and booleans stored as strings
    assert player.last_active == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert player.created_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert player.playtime == 120 and player.amount_spent == Decimal("12.35") and player.badge_count == 2
    assert (player.lat, player.long) == (48.8584, 2.2945)
    assert (player.country, player.rooted, player.notification_types) == ("FR", True, -2)
    assert player.ip == "2001:db8::1" and player.external_user_id == "user-1"
    assert (player.web_auth, player.web_p256, player.invalid_identifier) == ("auth-1", "p256-1", False)
    assert not import_path(job).exists()  # the upload is removed once imported


def test_a_new_player_gets_the_defaults_of_columns_the_file_does_not_have(own):
    imported(own.app, "identifier,device_type\ntok-1,1\n")
    player = Player.objects.get(app=own.app)
    assert (player.session_count, player.tags, player.notification_types, player.amount_spent) == (
        1,
        {},
        1,
        0,
    )
    # now(): the chunk's transaction started (in this test, the test's own transaction).
    assert (
        timezone.now() - player.last_active < timedelta(minutes=5) and player.created_at == player.last_active
    )
    assert player.language is None


# --- upsert semantics ------------------------------------------------------------------------


def test_an_existing_identifier_is_updated_in_the_file_columns_only(own):
    player = PlayerFactory(app=own.app, identifier="tok-1", language="en", tags={"old": "1"}, session_count=9)
    job = imported(own.app, 'identifier,device_type,tags\ntok-1,1,"{""new"":""2""}"\ntok-2,1,{}\n')
    assert (job.rows_created, job.rows_updated, job.rows_failed) == (1, 1, 0)
    player.refresh_from_db()
    assert player.tags == {"new": "2"}  # replaced, not merged
    assert player.language == "en" and player.session_count == 9  # not in the file: untouched
    assert Player.objects.filter(app=own.app).count() == 2


def test_a_row_that_changes_nothing_is_not_counted_as_updated(own):
    content = "identifier,device_type,session_count\ntok-1,1,5\n"
    assert imported(own.app, content).rows_created == 1
    again = imported(own.app, content)
    assert (again.rows_processed, again.rows_created, again.rows_updated) == (1, 0, 0)


def test_the_last_row_of_an_identifier_wins(own):
    job = imported(own.app, "identifier,device_type,session_count\ntok-1,1,5\ntok-2,1,1\ntok-1,1,8\n")
    assert (job.rows_processed, job.rows_created) == (3, 2)
    assert by_identifier(own.app)["tok-1"].session_count == 8


def test_a_file_id_is_kept_unless_another_player_has_it(own, outsider):
    theirs = PlayerFactory(app=outsider.app, identifier="tok-x")
    mine = uuid.uuid4()
    imported(own.app, f"id,identifier,device_type\n{mine},tok-1,1\n{theirs.id},tok-x,1\n{mine},tok-3,1\n")
    players = by_identifier(own.app)
    assert players["tok-1"].id != mine or players["tok-3"].id != mine  # an id is given once
    assert mine in {players["tok-1"].id, players["tok-3"].id}
    assert players["tok-x"].id != theirs.id  # never another app's player's id
    theirs.refresh_from_db()
    assert theirs.app_id == outsider.app.id  # and the other app's player is untouched


def test_an_import_never_touches_another_apps_players(own, outsider):
    theirs = PlayerFactory(app=outsider.app, identifier="tok-1", session_count=3)
    imported(own.app, "identifier,device_type,session_count\ntok-1,1,50\n")
    theirs.refresh_from_db()
    assert theirs.session_count == 3
    assert Player.objects.get(app=own.app).session_count == 50


# --- errors per row --------------------------------------------------------------------------


def test_bad_values_are_reported_per_row_and_the_good_rows_are_imported(own):
    job = imported(
        own.app,
        "identifier,device_type,session_count,language,country,last_active,location,invalid_identifier,amount_spent\n"
        "tok-1,1,1,en,US,2026-01-01,,f,1\n"  # 1: good
        "tok-2,1,abc,en,US,2026-01-01,,f,1\n"  # 2
        "tok-3,99,1,en,US,2026-01-01,,f,1\n"  # 3
        ",1,1,en,US,2026-01-01,,f,1\n"  # 4
        "tok-5,1,1,english,US,2026-01-01,,f,1\n"  # 5
        "tok-6,1,1,en,USA,2026-01-01,,f,1\n"  # 6
        "tok-7,1,1,en,US,yesterday-ish,,f,1\n"  # 7
        'tok-8,1,1,en,US,2026-01-01,"91,0",f,1\n'  # 8
        "tok-9,1,1,en,US,2026-01-01,,maybe,1\n"  # 9
        "tok-10,1,-1,en,US,2026-01-01,,f,1\n"  # 10
        "tok 11,1,1,en,US,2026-01-01,,f,1\n"  # 11
        "tok-12,0,1,en,US,2026-01-01,,f,1\n"  # 12: not an APNs token
        "tok-13,1,1,en,US,2026-01-01,,f,1e99\n"  # 13
        "tok-14,1,1,,,1700000000,,t,0\n"  # 14: good (unix seconds; empty nullable cells)
        "tok-15,1,1,en,US,2026-01-01,,f,\n",  # 15: an empty required number
    )
    assert (job.status, job.rows_processed, job.rows_created, job.rows_failed) == ("completed", 15, 2, 13)
    errors = {e["row"]: e["error"] for e in job.errors}
    assert sorted(errors) == [*range(2, 14), 15]
    assert errors[2] == "session_count must be a whole number from 0 to 2147483647 (got 'abc')"
    assert errors[3] == "device_type must be an integer from 0 to 14 (got '99')"
    assert errors[4] == "identifier is required"
    assert errors[5].startswith("language must be a 2-letter code")
    assert errors[6] == "country must be 2 letters (got 'USA')"
    assert errors[7].startswith("last_active must be a UTC date and time")
    assert errors[8].startswith("location must be")
    assert errors[9] == "invalid_identifier must be t or f (true or false) (got 'maybe')"
    assert errors[10].startswith("session_count must be a whole number from 0")
    assert errors[11] == "identifier must not contain spaces or control characters"
    assert errors[12] == "identifier is not a valid APNs device token (hexadecimal)"
    assert errors[13].startswith("amount_spent must be a decimal number")
    assert errors[15] == "amount_spent must be a decimal number below 1000000000000 (got '')"
    players = by_identifier(own.app)
    assert set(players) == {"tok-1", "tok-14"}
    assert players["tok-14"].last_active == datetime.fromtimestamp(1700000000, tz=UTC)
    assert players["tok-14"].invalid_identifier is True and players["tok-14"].language is None


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("tags", '"{""a"": }"', "tags must be a JSON object"),
        ("tags", '"[1, 2]"', "tags must be a JSON object"),
        ("tags", '"{""a"": [1]}"', "tag values must be strings or numbers"),
        ("tags", '"{"""": ""x""}"', "tag keys must be 1 to 128 characters"),
        ("last_active", "2026-02-30 10:00:00", "last_active must be a UTC date and time"),
        ("last_active", "infinity", "last_active must be a UTC date and time"),
        ("ip", "1.2.3.4.5", "ip must be an IPv4 or IPv6 address"),
        ("ip", "10.0.0.0/8", "ip must be an IPv4 or IPv6 address"),
        ("id", "not-a-uuid", "id must be a UUID"),
    ],
)
def test_values_that_pass_the_fast_checks_but_do_not_cast_fail_only_their_row(own, column, value, message):
    """A bad value fails the chunk's statement; the careful pass then finds the row."""
    good = {"tags": "{}", "last_active": "2026-01-01 00:00:00"}.get(column, "")
    job = imported(
        own.app, f"identifier,device_type,{column}\ntok-1,1,{good}\ntok-2,1,{value}\ntok-3,1,{good}\n"
    )
    assert job.status == "completed", job.error
    assert [e["row"] for e in job.errors] == [2], job.errors
    assert job.errors[0]["error"].startswith(message), job.errors
    assert set(by_identifier(own.app)) == {"tok-1", "tok-3"}


def test_rows_copy_refuses_are_parsed_one_by_one(own):
    """Too many or too few fields, bytes that are not UTF-8 and NUL make COPY refuse the chunk."""
    content = (
        b"identifier,device_type,session_count\n"
        b"tok-1,1,1\n"
        b"tok-2,1\n"  # 2: a field short
        b"tok-3,1,1,extra\n"  # 3: a field too many
        b"tok-\xff4,1,1\n"  # 4: not UTF-8
        b"tok-5,1,\x001\n"  # 5: NUL
        b"\n"  # a blank line is skipped
        b'"tok-6\nsecond line",1,1\n'  # 6: a quoted newline is one value (then refused as a token)
        b"tok-7,1,2\n"
    )
    job = imported(own.app, content)
    assert job.status == "completed", job.error
    errors = {e["row"]: e["error"] for e in job.errors}
    assert errors == {
        2: "expected 3 fields as in the header, found 2",
        3: "expected 3 fields as in the header, found 4",
        4: "this row is not UTF-8 text (or contains a NUL character)",
        5: "this row is not UTF-8 text (or contains a NUL character)",
        6: "identifier must not contain spaces or control characters",
    }
    assert (job.rows_processed, job.rows_created, job.rows_failed) == (7, 2, 5)
    assert by_identifier(own.app)["tok-7"].session_count == 2


def test_email_sms_and_web_push_identifiers_get_the_api_checks(own, settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    job = imported(
        own.app,
        "identifier,device_type\n"
        "Someone@Example.COM,11\n"  # 1: normalized as POST /players does
        "not-an-email,11\n"  # 2
        "+15551234567,14\n"  # 3
        "555-1234,14\n"  # 4
        "https://127.0.0.1/push/1,5\n"  # 5: SSRF guard
        f"<{APNS[:32]} {APNS[32:]}>,0\n",  # 6: APNs token cleaned up
    )
    errors = {e["row"]: e["error"] for e in job.errors}
    assert sorted(errors) == [2, 4, 5], errors
    assert errors[2].startswith("identifier is not a valid email address")
    assert errors[4].startswith("identifier must be a phone number in E.164 format")
    assert "127.0.0.1" in errors[5]
    assert set(by_identifier(own.app)) == {"Someone@example.com", "+15551234567", APNS}


def test_only_the_first_errors_are_kept_but_every_refused_row_is_counted(own, monkeypatch, settings):
    monkeypatch.setattr("players.import_services.MAX_ERRORS", 5)
    settings.HERALD_CSV_IMPORT_CHUNK_BYTES = 64  # several chunks, each with its own errors
    rows = "".join(f"tok-{n},1,{'x' if n % 2 else n}\n" for n in range(40))
    job = run(
        csv_import_start(app=own.app, chunks=[f"identifier,device_type,session_count\n{rows}".encode()])
    )
    assert job.rows_failed == 20 and job.rows_created == 20 and job.rows_processed == 40
    assert [e["row"] for e in job.errors] == [2, 4, 6, 8, 10]


# --- the file ----------------------------------------------------------------------------------


def test_a_gzip_file_and_a_quoted_newline_across_chunks(own, settings):
    settings.HERALD_CSV_IMPORT_CHUNK_BYTES = 50
    lines = ["identifier,device_type,device_model"]
    lines += [f'tok-{n},1,"model\n{n}, ""quoted"""' for n in range(30)]
    job = imported(own.app, gzip.compress(("\n".join(lines) + "\n").encode()))
    assert (job.status, job.rows_created, job.rows_failed) == ("completed", 30, 0), job.errors
    assert job.bytes_read == job.size_bytes
    assert by_identifier(own.app)["tok-29"].device_model == 'model\n29, "quoted"'


def test_a_header_with_a_byte_order_mark_and_crlf_lines(own):
    job = imported(own.app, "\ufeffIdentifier, Device_Type\r\ntok-1,1\r\ntok-2,1\r\n".encode())
    assert (job.columns, job.rows_created) == (["identifier", "device_type"], 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"identifier,device_type,password\n", "Unknown column 'password'"),
        (b"identifier\ntok-1\n", "The header must name the column 'device_type'"),
        (b"identifier,device_type,identifier\n", "Column 'identifier' appears twice"),
        (b"\n", "The file is empty"),
        (b"\xff\xfe\x00i\n", "The header line is not UTF-8 text"),
        (b"\x1f\x8bnot really gzip", "The file is not a valid gzip or CSV file"),
    ],
)
def test_a_bad_header_is_refused_at_once_and_nothing_is_kept(own, content, message, tmp_path):
    with pytest.raises(ApiError) as raised:
        start(own.app, content)
    assert raised.value.status == 400 and raised.value.body["errors"][0].startswith(message)
    assert not CsvImport.objects.exists()
    assert not any(path.is_file() for path in Path(tmp_path).rglob("*"))


def test_an_empty_upload_and_a_too_large_one_are_refused(own, settings):
    with pytest.raises(ApiError) as raised:
        start(own.app, b"")
    assert raised.value.body == {"errors": ["The CSV file is empty"]}
    settings.HERALD_CSV_IMPORT_MAX_BYTES = 20
    with pytest.raises(ApiError) as raised:
        csv_import_start(app=own.app, chunks=[b"identifier,device_type\n", b"tok-1,1\n"])
    assert raised.value.status == 413
    assert not CsvImport.objects.exists()


def test_a_damaged_gzip_fails_the_import_with_a_message(own):
    good = gzip.compress(("identifier,device_type\n" + "".join(f"tok-{n},1\n" for n in range(2000))).encode())
    job = run(start(own.app, good[: len(good) // 2]))
    assert job.status == "failed" and job.error.startswith("The file is damaged")
    assert not import_path(job).exists()


# --- the job -----------------------------------------------------------------------------------


def test_one_import_at_a_time_per_app(own, teammate):
    start(own.app, "identifier,device_type\ntok-1,1\n")
    with pytest.raises(ApiError) as raised:
        start(own.app, "identifier,device_type\ntok-2,1\n")
    assert raised.value.body == {"errors": [CONCURRENT_IMPORT]}
    start(teammate.app, "identifier,device_type\ntok-2,1\n")  # another app is not blocked


def test_a_job_is_claimed_once_unless_its_lease_ran_out(own, settings):
    job = start(own.app, "identifier,device_type\ntok-1,1\n")
    CsvImport.objects.filter(pk=job.pk).update(status=CsvImport.Status.RUNNING, started_at=timezone.now())
    assert run(job).rows_processed == 0  # claimed by someone else: nothing done
    assert not Player.objects.exists()
    stale = timezone.now() - timedelta(seconds=settings.HERALD_CSV_IMPORT_LEASE_SECONDS + 1)
    CsvImport.objects.filter(pk=job.pk).update(started_at=stale)
    job = run(job)  # the worker that claimed it died: a redelivered task runs it again
    assert (job.status, job.rows_created) == ("completed", 1)
    assert run(job).status == "completed"  # a third delivery finds it done
    assert Player.objects.count() == 1


def test_a_missing_upload_fails_the_job(own):
    job = start(own.app, "identifier,device_type\ntok-1,1\n")
    import_path(job).unlink()
    job = run(job)
    assert job.status == "failed" and "no longer there" in job.error


# --- round trip ---------------------------------------------------------------------------------


def test_an_export_imports_into_another_app_as_the_same_players(own, teammate):
    for n in range(30):
        PlayerFactory(
            app=own.app,
            device_type=(1, 0, 11)[n % 3],
            identifier=(f"tok-{n}", apns_token(), f"user{n}@example.com")[n % 3],
            tags={"level": str(n), "plan": "pro"} if n % 2 else {},
            session_count=n + 1,
            language=("en", "de", None)[n % 3],
            country=("US", None)[n % 2],
            lat=48.5 + n / 100 if n % 4 == 0 else None,
            long=2.25 - n / 1000 if n % 4 == 0 else None,
            rooted=(None, True, False)[n % 3],
            external_user_id=f"user-{n}" if n % 5 else None,
            amount_spent=Decimal(n) / 4,
            invalid_identifier=n % 7 == 0,
            notification_types=-2 if n % 6 == 0 else 1,
            last_active=timezone.now().replace(microsecond=0) - timedelta(hours=n),
            ip="10.0.0.1" if n % 2 else None,
        )
    export = CsvExport.objects.create(
        app=own.app,
        token=uuid.uuid4().hex,
        expires_at=timezone.now() + timedelta(days=1),
        extra_fields=list(EXTRA_COLUMNS),
    )
    assert write_export(export) == 30
    job = imported(teammate.app, export_path(export).read_bytes())
    assert (job.status, job.rows_created, job.rows_failed) == ("completed", 30, 0), job.errors
    fields = [
        "device_type",
        "tags",
        "session_count",
        "language",
        "country",
        "lat",
        "long",
        "rooted",
        "external_user_id",
        "amount_spent",
        "invalid_identifier",
        "notification_types",
        "last_active",
        "created_at",
        "ip",
        "timezone",
        "game_version",
        "badge_count",
        "playtime",
    ]
    source = {p.identifier: p for p in Player.objects.filter(app=own.app)}
    copied = by_identifier(teammate.app)
    assert set(copied) == set(source)
    for identifier, player in source.items():
        twin = copied[identifier]
        assert twin.id != player.id  # the source's ids are taken: new ones
        for field in fields:
            expected = getattr(player, field)
            if isinstance(expected, datetime):
                expected = expected.replace(microsecond=0)  # the export writes whole seconds
            assert getattr(twin, field) == expected, (identifier, field)
    # Imported back into the source app: the same players (the export's whole seconds replace the
    # timestamps' microseconds), and a second time nothing changes at all.
    again = imported(own.app, export_path(export).read_bytes())
    assert (again.rows_processed, again.rows_created, again.rows_failed) == (30, 0, 0)
    assert Player.objects.filter(app=own.app).count() == 30
    third = imported(own.app, export_path(export).read_bytes())
    assert (third.rows_processed, third.rows_created, third.rows_updated, third.rows_failed) == (30, 0, 0, 0)


def test_the_progress_is_committed_chunk_by_chunk(own, monkeypatch, settings):
    seen: list[tuple[int, int]] = []
    real = imports._import_chunk

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append((result.rows, CsvImport.objects.get().rows_processed))
        return result

    settings.HERALD_CSV_IMPORT_CHUNK_BYTES = 100
    monkeypatch.setattr(imports, "_import_chunk", spy)
    job = imported(own.app, "identifier,device_type\n" + "".join(f"tok-{n:03d},1\n" for n in range(100)))
    assert job.rows_processed == 100 and len(seen) > 5
    # Before each chunk's progress is written, the previous chunks' rows are already counted.
    assert [before for _, before in seen] == [sum(rows for rows, _ in seen[:i]) for i in range(len(seen))]
    assert json.loads(json.dumps(job.errors)) == []
