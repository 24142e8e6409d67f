"""The CSV import written by two PostgreSQL sessions at once (players/imports.py, ChunkWriters).

These tests commit (``transaction=True``): the second session cannot see what an open test
transaction wrote, so inside one the import uses a single session, as every other import test does.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from players import imports
from players.import_services import csv_import_run, csv_import_start
from players.models import CsvImport, Player

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl")
COMPARED = ("device_type", "session_count", "language", "tags", "amount_spent", "notification_types")


@pytest.fixture(autouse=True)
def _small_chunks(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.HERALD_CSV_IMPORT_CHUNK_BYTES = 400  # a few dozen rows a chunk: rows of one player span chunks


@pytest.fixture
def sessions(monkeypatch):
    """The share, the thread and the players created of every chunk written, to show that two
    sessions wrote, each its own players."""
    seen: list[tuple[int, str, int]] = []
    real = imports._import_chunk

    def spy(sql, data, first_row, errors_wanted, part=0):
        result = real(sql, data, first_row, errors_wanted, part)
        seen.append((part, threading.current_thread().name, result.created))
        return result

    monkeypatch.setattr(imports, "_import_chunk", spy)
    return seen


def imported(app, content: str, settings, connections: int) -> CsvImport:
    settings.HERALD_CSV_IMPORT_CONNECTIONS = connections
    job = csv_import_start(app=app, chunks=[content.encode()], file_name="players.csv")
    csv_import_run(import_id=str(job.id))
    job.refresh_from_db()
    return job


def players_of(app) -> dict[str, tuple]:
    return {
        p.identifier: tuple(getattr(p, name) for name in COMPARED) for p in Player.objects.filter(app=app)
    }


def shares_of(app) -> dict[int, int]:
    """Players per share, by the same hash of the identifier as the import."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (coalesce(hashtext(identifier), 0) & 2147483647) %% 2, count(*) "
            "FROM players_player WHERE app_id = %s GROUP BY 1",
            [app.pk],
        )
        return dict(cursor.fetchall())


def a_file() -> str:
    """600 rows over 60 players: each player appears ten times, spread over the file, with a
    different session count each time; every 37th row is refused."""
    lines = ["identifier,device_type,session_count,language,tags,amount_spent"]
    for n in range(600):
        player = n % 60
        if n % 37 == 0:
            lines.append(f"tok-{player:02d},1,not-a-number,en,,0")
        else:
            language = LANGUAGES[n % len(LANGUAGES)]
            lines.append(f'tok-{player:02d},1,{n},{language},"{{""n"":""{n}""}}",{n}.5')
    return "\n".join(lines) + "\n"


def test_two_sessions_write_what_one_session_writes(own, teammate, settings, sessions):
    content = a_file()
    one = imported(own.app, content, settings, connections=1)
    single = list(sessions)
    sessions.clear()
    two = imported(teammate.app, content, settings, connections=2)

    assert {part for part, _, _ in single} == {0}
    assert {part for part, _, _ in sessions} == {0, 1}
    assert {thread for part, thread, _ in sessions if part == 1} == {"csv-import-1_0"}
    assert len([1 for part, _, _ in sessions if part == 0]) > 10  # many chunks, each by both sessions
    # Each session created exactly the players of its share of the identifiers.
    created = {part: sum(n for p, _, n in sessions if p == part) for part in (0, 1)}
    assert created == shares_of(teammate.app) and 0 < created[0] < 60

    assert (one.status, two.status) == ("completed", "completed")
    counts = ("rows_processed", "rows_created", "rows_updated", "rows_failed")
    assert [getattr(two, c) for c in counts] == [getattr(one, c) for c in counts]
    assert (two.rows_processed, two.rows_created, two.rows_failed) == (600, 60, 17)
    assert two.errors == one.errors and len(two.errors) == 17
    assert players_of(teammate.app) == players_of(own.app)
    # The last row of each player wins, wherever in the file its rows were.
    last = {f"tok-{n % 60:02d}": n for n in range(600) if n % 37}
    assert {k: v[1] for k, v in players_of(teammate.app).items()} == last


def test_importing_the_file_again_counts_what_one_session_counts(own, teammate, settings, sessions):
    content = a_file()
    imported(own.app, content, settings, connections=1)
    imported(teammate.app, content, settings, connections=2)
    one = imported(own.app, content, settings, connections=1)
    two = imported(teammate.app, content, settings, connections=2)

    counts = ("rows_processed", "rows_created", "rows_updated", "rows_failed")
    assert [getattr(two, c) for c in counts] == [getattr(one, c) for c in counts]
    # Each player's rows span chunks with different values: every chunk but the first changes it.
    assert (two.rows_created, two.rows_failed) == (0, 17) and two.rows_updated > 0
    assert players_of(teammate.app) == players_of(own.app)
    assert Player.objects.filter(app=teammate.app).count() == 60


def test_a_file_id_is_given_once_across_sessions_and_chunks(own, settings, sessions):
    kept, later = uuid.uuid4(), uuid.uuid4()
    rows = [f"{kept},tok-a,1", f"{kept},tok-b,1", f"{later},tok-c,1"]
    rows += [f",tok-{n:03d},1" for n in range(40)]  # pushes the next row into a later chunk
    rows += [f"{later},tok-d,1"]
    job = imported(own.app, "id,identifier,device_type\n" + "\n".join(rows) + "\n", settings, connections=2)

    assert {part for part, _, _ in sessions} == {0, 1}
    assert (job.rows_created, job.rows_failed) == (44, 0), job.errors
    ids = dict(Player.objects.filter(app=own.app).values_list("identifier", "id"))
    assert ids["tok-b"] == kept and ids["tok-a"] != kept  # of rows in one chunk, the last keeps it
    assert ids["tok-c"] == later and ids["tok-d"] != later  # a later chunk finds it taken
    assert len(set(ids.values())) == 44
