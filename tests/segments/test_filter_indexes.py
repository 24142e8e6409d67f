"""The common filters are answered from indexes, not by reading every player (players/models.py).

20,000 players in one app (and 20,000 in another), ANALYZEd, then EXPLAIN of the compiled SQL.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from players import tag_indexes
from players.models import Player
from segments.filters import compile_filters
from segments.selectors import SUBSCRIBED, audience
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db

PLAYERS = 20_000


# Rows are generated in SQL: building 20,000 Player objects for bulk_create spends ~10 s in
# Python (field preparation), while the planner only cares about what lands in the table.
# setseed() makes random() repeatable within the session.
INSERT_PLAYERS = """
INSERT INTO players_player (
    id, app_id, device_type, identifier, tags, language, country, session_count, playtime,
    amount_spent, badge_count, notification_types, invalid_identifier, location_meta,
    created_at, last_active
)
SELECT
    gen_random_uuid(), %(app_id)s, 1, 'tok-' || %(prefix)s || '-' || i,
    jsonb_build_object('level', (i %% 50)::text, 'plan', CASE WHEN i %% 100 = 0 THEN 'gold' ELSE 'free' END),
    (ARRAY['en', 'es', 'de', 'fr', 'pt'])[1 + i %% 5],
    (ARRAY['US', 'DE', 'FR', 'BR', 'IN', 'GB'])[1 + i %% 6],
    1 + floor(random() * 500)::int, 0, 0, 0, CASE WHEN i %% 10 = 0 THEN -2 ELSE 1 END, false, '{}',
    %(now)s - make_interval(days => 90 + floor(random() * 275)::int),
    %(now)s - make_interval(mins => floor(random() * 90 * 24 * 60)::int)
FROM generate_series(1, %(count)s) AS i
"""


def load_players(app, count: int, now) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_PLAYERS, {"app_id": app.pk, "prefix": app.pk.hex[:8], "count": count, "now": now}
        )


@pytest.fixture(scope="module")
def big_app(django_db_setup, django_db_blocker):
    """Loaded once for the module, in a transaction rolled back at its end (ANALYZE counts the
    transaction's own rows, and its statistics roll back with it)."""
    with django_db_blocker.unblock(), transaction.atomic():
        now = timezone.now()
        app = AppFactory()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
        load_players(app, PLAYERS, now)
        load_players(AppFactory(), PLAYERS, now)  # other tenants: scans of the whole table cost
        with connection.cursor() as cursor:
            # A bulk load lands in the GIN index's pending list (fastupdate), which every search
            # reads in full until autovacuum merges it; merge it now, as autovacuum would. This
            # also keeps entries of earlier, rolled-back runs (--reuse-db) out of the estimate.
            cursor.execute("SELECT gin_clean_pending_list('player_tags_gin'::regclass)")
            cursor.execute("ANALYZE players_player")
        assert Player.objects.filter(app=app).count() == PLAYERS
        yield app
        transaction.set_rollback(True)


def plan(app, filters, *, subscribed: bool = False) -> str:
    players = Player.objects.filter(app=app).filter(compile_filters(filters))
    if subscribed:
        players = players.filter(SUBSCRIBED)
    text = players.explain()
    print(text)  # shown with -s or on failure
    return text


@pytest.mark.parametrize("subscribed", [False, True], ids=["members", "recipients"])
def test_tag_equality_uses_the_gin_index(big_app, subscribed):
    text = plan(
        big_app, [{"field": "tag", "key": "plan", "relation": "=", "value": "gold"}], subscribed=subscribed
    )
    assert "Bitmap Index Scan on player_tags_gin" in text
    assert "Seq Scan on players_player" not in text


@pytest.mark.parametrize("subscribed", [False, True], ids=["members", "recipients"])
def test_last_session_uses_the_last_active_index(big_app, subscribed):
    text = plan(
        big_app, [{"field": "last_session", "relation": "<", "hours_ago": "2"}], subscribed=subscribed
    )
    assert "player_app_last_active_idx" in text
    assert "Seq Scan on players_player" not in text


def test_in_array_ors_index_scans(big_app):
    text = plan(big_app, [{"field": "tag", "key": "plan", "relation": "in_array", "value": "gold,platinum"}])
    assert "BitmapOr" in text and "Bitmap Index Scan on player_tags_gin" in text
    assert "Seq Scan on players_player" not in text


def test_first_session_and_session_count_use_their_indexes(big_app):
    text = plan(big_app, [{"field": "first_session", "relation": ">", "hours_ago": str(360 * 24)}])
    assert "player_app_created_idx" in text and "Seq Scan on players_player" not in text
    text = plan(big_app, [{"field": "session_count", "relation": ">", "value": "495"}])
    assert "player_app_sessions_idx" in text and "Seq Scan on players_player" not in text


def test_recipients_are_paged_by_id_from_the_subscribed_index(big_app):
    recipients = audience(app=big_app, included_segments=["Subscribed Users"], excluded_segments=[])
    text = recipients.order_by("id")[:1000].explain()
    print(text)
    assert "player_app_subscribed_idx" in text and "Seq Scan on players_player" not in text


# --- numeric tag comparisons, for a key of HERALD_INDEXED_NUMERIC_TAGS ------------------------


@pytest.fixture(scope="module")
def level_indexed(big_app, django_db_blocker):
    """big_app with the indexes and statistics of the "level" tag (players/tag_indexes.py), built
    inside its transaction, so they roll back with it."""
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:  # the load's deferred foreign key checks run now
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        tag_indexes.create("level", concurrently=False)
    return big_app


NUMBER_INDEX = tag_indexes.object_name("level", "num")


@pytest.mark.parametrize("indexed", [False, True], ids=["plain", "indexed"])
def test_numeric_tag_equality_is_an_index_scan_once_the_key_is_indexed(level_indexed, settings, indexed):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"] if indexed else []
    text = plan(level_indexed, [{"field": "tag", "key": "level", "relation": "=", "value": "7"}])
    if indexed:
        assert NUMBER_INDEX in text and "Seq Scan on players_player" not in text
    else:  # "7.0" = "7": without the index every row of the app is read and tested
        assert NUMBER_INDEX not in text and 'Filter: ((tags @> \'{"level": "7"}\'::jsonb) OR CASE' in text


def test_a_numeric_tag_range_is_an_index_scan(level_indexed, settings):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
    text = plan(
        level_indexed, [{"field": "tag", "key": "level", "relation": "<", "value": "2"}], subscribed=True
    )
    assert NUMBER_INDEX in text and "Seq Scan on players_player" not in text


def test_an_or_of_groups_with_a_numeric_tag_is_an_or_of_index_scans(level_indexed, settings):
    settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
    filters = [
        {"field": "tag", "key": "plan", "relation": "=", "value": "gold"},
        {"field": "tag", "key": "level", "relation": "<", "value": "5"},
        {"operator": "OR"},
        {"field": "last_session", "relation": "<", "hours_ago": "2"},
    ]
    text = plan(level_indexed, filters)
    assert "BitmapOr" in text and "player_app_last_active_idx" in text
    assert NUMBER_INDEX in text
    assert "Seq Scan on players_player" not in text
