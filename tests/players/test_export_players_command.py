"""manage.py export_players: the CSV export service (players/export_services.py, the same row and
file as POST /players/csv_export) run in this process, copied to -o, with a progress bar."""

from __future__ import annotations

import csv
import gzip
import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from players.export_services import CONCURRENT_EXPORT, csv_export_start
from players.exports import DEFAULT_COLUMNS, export_path
from players.models import CsvExport
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export_players", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_it_exports_the_apps_players_to_a_gzip_file(
    own, outsider, tmp_path, django_capture_on_commit_callbacks
):
    mine = {PlayerFactory(app=own.app, country="FR").identifier for _ in range(3)}
    PlayerFactory(app=outsider.app)
    target = tmp_path / "out.csv.gz"

    with django_capture_on_commit_callbacks() as callbacks:
        out, err = run(
            "--app", str(own.app.id), "-o", str(target), "--extra-fields", "country,ip", "--progress"
        )

    assert callbacks == []  # run here, not queued
    rows = rows_of(gzip.decompress(target.read_bytes()).decode())
    assert {r["identifier"] for r in rows} == mine
    assert list(rows[0]) == [*DEFAULT_COLUMNS, "country", "ip"] and rows[0]["country"] == "FR"
    export = CsvExport.objects.get(app=own.app)
    assert (export.status, export.row_count, export.extra_fields) == ("ready", 3, ["country", "ip"])
    assert export_path(export).read_bytes() == target.read_bytes()  # the API's own file
    assert f"Exported 3 players to {target}" in out
    assert "Exporting: 100%" in err and "3/3" in err


def test_a_plain_name_gets_plain_csv_and_a_segment_narrows_it(own, tmp_path):
    PlayerFactory(app=own.app, invalid_identifier=False, identifier="tok-in")
    PlayerFactory(app=own.app, invalid_identifier=True, identifier="tok-out")
    target = tmp_path / "subscribed.csv"
    _, err = run("--app", str(own.app.id), "-o", str(target), "--segment", "Subscribed Users")
    assert [r["identifier"] for r in rows_of(target.read_text())] == ["tok-in"]
    assert err == ""  # not a terminal: no bar
    assert not list(tmp_path.glob("*.part"))


def test_without_o_it_writes_the_exports_own_file_name_here(own, tmp_path, monkeypatch):
    PlayerFactory(app=own.app)
    monkeypatch.chdir(tmp_path)
    run("--app", str(own.app.id), "--quiet")
    export = CsvExport.objects.get(app=own.app)
    assert (tmp_path / export.file_name).read_bytes() == export_path(export).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extra-fields", "password"], "extra_fields: unknown field 'password'"),
        (["--segment", "Nobody"], 'Segment "Nobody" does not exist'),
        (["--last-active-since", "yesterday"], "last_active_since must be unix seconds"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(own, args, message):
    with pytest.raises(CommandError, match=message):
        run("--app", str(own.app.id), *args)
    assert not CsvExport.objects.exists()


def test_a_missing_output_directory_is_refused_first(own, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("--app", str(own.app.id), "-o", str(tmp_path / "nowhere" / "x.csv.gz"))
    assert not CsvExport.objects.exists()


@pytest.mark.parametrize("app_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_the_app_must_exist(db, tmp_path, app_id):
    with pytest.raises(CommandError, match="--app: "):
        run("--app", app_id, "-o", str(tmp_path / "x.csv.gz"))
    assert not CsvExport.objects.exists()


def test_one_export_at_a_time_per_app(own, tmp_path):
    csv_export_start(
        app=own.app, url_base="", extra_fields=[], last_active_since=None, segment_name=None, enqueue=False
    )
    with pytest.raises(CommandError, match=CONCURRENT_EXPORT):
        run("--app", str(own.app.id), "-o", str(tmp_path / "x.csv.gz"))
