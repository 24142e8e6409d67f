"""manage.py import_players: the CSV import service (players/import_services.py) run from the
command line, in this process by default, with a progress bar on stderr."""

from __future__ import annotations

import gzip
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from players.import_services import CONCURRENT_IMPORT, csv_import_start
from players.models import CsvImport, Player
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db

CSV = (
    "identifier,device_type,language,tags\n"
    'tok-1,1,de,"{""level"":""3""}"\n'
    "tok-2,1,fr,\n"
    "tok-3,99,en,\n"  # an unknown device type: refused, the others still go in
    "tok-4,1,en,\n"
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_players", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_the_file_here_and_reports(own, tmp_path, django_capture_on_commit_callbacks):
    PlayerFactory(app=own.app, identifier="tok-2", language="en")
    source = tmp_path / "players.csv.gz"
    source.write_bytes(gzip.compress(CSV.encode()))

    with django_capture_on_commit_callbacks() as callbacks:
        out, err = run("--app", str(own.app.id), str(source), "--progress")

    assert callbacks == []  # run here: nothing was queued for a worker
    job = CsvImport.objects.get(app=own.app)
    assert (job.status, job.file_name) == ("completed", "players.csv.gz")
    assert (job.rows_processed, job.rows_created, job.rows_updated, job.rows_failed) == (4, 2, 1, 1)
    players = {p.identifier: p for p in Player.objects.filter(app=own.app)}
    assert set(players) == {"tok-1", "tok-2", "tok-4"}
    assert players["tok-1"].tags == {"level": "3"} and players["tok-2"].language == "fr"
    assert f"CSV import {job.id}: completed. 4 rows read: 2 created, 1 updated, 1 rejected." in out
    assert "row 3: device_type" in out
    # The bars: the file stored (as an upload is), then imported, ending at the rows read.
    assert "Storing: 100%" in err and "Importing: 100%" in err and "rows=4" in err


def test_without_a_terminal_no_bar_is_drawn(own, tmp_path):
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    out, err = run("--app", str(own.app.id), str(source))
    assert "completed" in out and err == ""
    assert Player.objects.filter(app=own.app).count() == 3


def test_quiet_prints_nothing(own, tmp_path):
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    out, err = run("--app", str(own.app.id), str(source), "--quiet", "--progress")
    assert (out, err) == ("", "")
    assert Player.objects.filter(app=own.app).count() == 3


def test_no_wait_queues_the_job_for_the_workers(own, tmp_path, django_capture_on_commit_callbacks):
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    with django_capture_on_commit_callbacks() as callbacks:
        out, _ = run("--app", str(own.app.id), str(source), "--no-wait")
    job = CsvImport.objects.get(app=own.app)
    assert job.status == "pending" and len(callbacks) == 1  # csv_import_task.delay after commit
    assert str(job.id) in out and f"/apps/{own.app.id}/players/csv_import/{job.id}" in out
    assert not Player.objects.filter(app=own.app).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("identifier,colour\ntok,red\n", "Unknown column 'colour' in the header"),
        ("identifier,language\ntok,en\n", "The header must name the column 'device_type'"),
        ("", "The CSV file is empty"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_kept(own, tmp_path, content, message):
    source = tmp_path / "bad.csv"
    source.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("--app", str(own.app.id), str(source))
    assert not CsvImport.objects.exists() and not Player.objects.exists()
    assert not list((tmp_path / "media").rglob("*.upload"))


def test_a_file_that_fails_on_the_way_fails_the_command(own, tmp_path):
    source = tmp_path / "players.csv.gz"
    source.write_bytes(gzip.compress(CSV.encode())[:-12])  # the gzip trailer cut off
    with pytest.raises(CommandError, match="The import failed: The file is damaged"):
        run("--app", str(own.app.id), str(source))
    assert CsvImport.objects.get(app=own.app).status == "failed"


def test_a_missing_file_is_a_clear_error(own, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("--app", str(own.app.id), str(tmp_path / "nowhere.csv"))
    assert not CsvImport.objects.exists()


@pytest.mark.parametrize("app_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_the_app_must_exist(db, tmp_path, app_id):
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    with pytest.raises(CommandError, match="--app: "):
        run("--app", app_id, str(source))
    assert not CsvImport.objects.exists() and not Player.objects.exists()


def test_it_imports_into_the_named_app_only(own, outsider, tmp_path):
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    run("--app", str(outsider.app.id), str(source))
    assert not Player.objects.filter(app=own.app).exists()
    assert Player.objects.filter(app=outsider.app).count() == 3


def test_one_import_at_a_time_per_app(own, tmp_path):
    csv_import_start(app=own.app, chunks=[CSV.encode()], enqueue=False)  # pending, e.g. from the API
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    with pytest.raises(CommandError, match=CONCURRENT_IMPORT):
        run("--app", str(own.app.id), str(source))
    assert CsvImport.objects.count() == 1


def test_ctrl_c_fails_the_job_and_keeps_what_was_committed(own, tmp_path, monkeypatch, settings):
    settings.HERALD_CSV_IMPORT_CHUNK_BYTES = 40  # a few rows per chunk: one is committed, then Ctrl-C
    from players.management.commands import import_players

    real_run = import_players.csv_import_run

    def interrupted_run(*, import_id, on_progress):
        def on_chunk(bytes_read, result):
            on_progress(bytes_read, result)
            raise KeyboardInterrupt

        real_run(import_id=import_id, on_progress=on_chunk)

    monkeypatch.setattr(import_players, "csv_import_run", interrupted_run)
    source = tmp_path / "players.csv"
    source.write_text(CSV)
    with pytest.raises(KeyboardInterrupt):
        run("--app", str(own.app.id), str(source))
    job = CsvImport.objects.get(app=own.app)
    assert (job.status, job.error) == ("failed", import_players.INTERRUPTED)
    assert 0 < job.rows_processed < 4 and Player.objects.filter(app=own.app).count() == job.rows_created
    assert not list((tmp_path / "media").rglob("*.upload"))
