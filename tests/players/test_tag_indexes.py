"""manage.py tag_indexes and players/tag_indexes.py: the indexes of HERALD_INDEXED_NUMERIC_TAGS
are built CONCURRENTLY on the real table, found again by their comments, rebuilt when a build
failed, and dropped when their key is no longer named. (What they do for queries is in
tests/segments/test_filter_indexes.py; that they change no answer, in test_filter_compiler.py.)
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from players import tag_indexes
from tests.embedded import embedded_env, manage

# CONCURRENTLY cannot run inside a transaction, so these tests commit (and flush afterwards).
pytestmark = pytest.mark.django_db(transaction=True)

ODD_KEY = 'it\'s a "key" ü ' + "x" * 100  # quotes, non-ASCII, longer than an identifier


@pytest.fixture
def clean_table(settings):
    """Whatever a test leaves is dropped again, so no other test plans with these indexes."""
    yield
    settings.HERALD_INDEXED_NUMERIC_TAGS = []
    tag_indexes.sync()
    assert tag_indexes.existing() == {}


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("tag_indexes", *args, stdout=out)
    return out.getvalue()


def test_apply_builds_both_indexes_and_the_statistics_of_each_key(settings, clean_table):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level", ODD_KEY, "level"]
    output = run("--apply")
    present = tag_indexes.existing()
    assert set(present) == set(tag_indexes.wanted()) and len(present) == 6
    assert {index.key for index in present.values()} == {"level", ODD_KEY}
    assert all(index.valid for index in present.values())
    assert "6 change(s)" in output and "2 tag key(s) indexed" in output
    with connection.cursor() as cursor:
        name = tag_indexes.object_name("level", "num")
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        (definition,) = cursor.fetchone()
    assert "herald_tag_number(tags, 'level'::text)" in definition and "IS NOT NULL" in definition


def test_apply_again_changes_nothing_and_check_passes(settings, clean_table):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
    run("--apply")
    assert "0 change(s)" in run("--apply")
    assert run("--check").count("ok ") == 3


def test_a_key_no_longer_named_loses_its_indexes(settings, clean_table):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level", "score"]
    run("--apply")
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["score"]
    assert "unwanted" in run()
    with pytest.raises(CommandError, match="3 tag index"):
        run("--check")
    output = run("--apply")
    assert output.count("dropped") == 3 and "'level'" in output
    assert {index.key for index in tag_indexes.existing().values()} == {"score"}


def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(settings, clean_table):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
    run("--apply")
    name = tag_indexes.object_name("level", "num")
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("marking an index invalid needs a superuser")
        # What a CREATE INDEX CONCURRENTLY interrupted half-way leaves behind.
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name])
    assert "invalid" in run()
    output = run("--apply")
    assert output.splitlines()[:-1] == [f"rebuilt {name} (tag 'level')"]  # only that one
    assert tag_indexes.existing()[name].valid


def test_other_indexes_of_the_table_are_never_touched(settings, clean_table):
    before = _index_names()
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
    run("--apply")
    settings.HERALD_INDEXED_NUMERIC_TAGS = []
    run("--apply")
    assert _index_names() == before


def test_drop_refuses_a_name_that_is_not_a_tag_index():
    with pytest.raises(ValueError):
        tag_indexes.drop(tag_indexes.TagIndex("player_app_id_idx", "", True))


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'players_player'")
        return {row[0] for row in cursor.fetchall()}


def test_on_the_embedded_sqlite_default_the_setting_is_ignored_with_a_warning(tmp_path):
    env = embedded_env(tmp_path)
    env["HERALD_INDEXED_NUMERIC_TAGS"] = "level"
    assert manage(env, "migrate", "--noinput", "-v0").returncode == 0
    result = manage(env, "tag_indexes", "--apply")
    assert result.returncode == 0, result.stderr
    assert "needs PostgreSQL" in result.stderr
