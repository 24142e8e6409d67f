from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.api.errors import ApiError
from players import selectors as player_selectors
from players.models import Player
from segments.selectors import SUBSCRIBED, audience, segment_players
from tests.factories import AppFactory, PlayerFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def app():
    return AppFactory()


@pytest.fixture
def people(app):
    """Named players: subscribed or not, active or not, tagged or not, plus another app's."""
    week_ago = timezone.now() - timedelta(days=8)
    return {
        "active_vip": PlayerFactory(app=app, tags={"vip": "1"}, session_count=20),
        "active": PlayerFactory(app=app, session_count=2),
        "lapsed_vip": PlayerFactory(app=app, tags={"vip": "1"}, last_active=week_ago),
        "unsubscribed_vip": PlayerFactory(app=app, tags={"vip": "1"}, notification_types=-2),
        "invalid": PlayerFactory(app=app, invalid_identifier=True),
        "no_token": PlayerFactory(app=app, identifier=""),
        "no_permission": PlayerFactory(app=app, notification_types=0),
        "elsewhere": PlayerFactory(tags={"vip": "1"}),
    }


def ids(queryset, people) -> set[str]:
    names = {player.id: name for name, player in people.items()}
    return {names[pk] for pk in queryset.values_list("id", flat=True)}


def test_the_subscribed_q_is_the_querysets_subscribed(app, people):
    assert set(Player.objects.filter(SUBSCRIBED)) == set(Player.objects.subscribed())
    assert set(Player.objects.exclude(SUBSCRIBED)) == set(Player.objects.all()) - set(
        Player.objects.subscribed()
    )


def test_builtin_segments(app, people):
    subscribed = {"active_vip", "active", "lapsed_vip"}
    assert ids(segment_players(app=app, name="Subscribed Users"), people) == subscribed
    assert ids(segment_players(app=app, name="All"), people) == subscribed
    active = ids(segment_players(app=app, name="Active Users"), people)
    inactive = ids(segment_players(app=app, name="Inactive Users"), people)
    # Members, not recipients: unsubscribed players are members of the activity segments.
    assert active == set(people) - {"lapsed_vip", "elsewhere"}
    assert inactive == {"lapsed_vip"}
    assert ids(segment_players(app=app, name="Engaged Users"), people) == {"active_vip"}


def test_a_custom_segment_and_a_custom_all(app, people):
    SegmentFactory(app=app, name="VIP", filters=[{"field": "tag", "key": "vip", "relation": "exists"}])
    assert ids(segment_players(app=app, name="VIP"), people) == {
        "active_vip",
        "lapsed_vip",
        "unsubscribed_vip",
    }
    SegmentFactory(app=app, name="All", filters=[{"field": "session_count", "relation": ">", "value": "10"}])
    assert ids(segment_players(app=app, name="All"), people) == {"active_vip"}


def test_an_unknown_segment_is_a_400_with_the_catalog_message(app):
    SegmentFactory(name="Another app's")  # names are per app
    for name in ("Nope", "Another app's", "subscribed users"):
        with pytest.raises(ApiError) as caught:
            segment_players(app=app, name=name)
        assert caught.value.status == 400
        assert caught.value.body == {"errors": [f'Segment "{name}" does not exist']}


def test_audience_is_subscribed_members_of_any_included_minus_excluded(app, people):
    SegmentFactory(
        app=app, name="VIP", filters=[{"field": "tag", "key": "vip", "relation": "=", "value": "1"}]
    )
    assert ids(audience(app=app, included_segments=["VIP"], excluded_segments=[]), people) == {
        "active_vip",
        "lapsed_vip",
    }
    both = audience(app=app, included_segments=["VIP", "Active Users"], excluded_segments=[])
    assert ids(both, people) == {"active_vip", "active", "lapsed_vip"}
    minus = audience(app=app, included_segments=["Subscribed Users"], excluded_segments=["VIP"])
    assert ids(minus, people) == {"active"}
    minus_two = audience(
        app=app, included_segments=["All"], excluded_segments=["Inactive Users", "Engaged Users"]
    )
    assert ids(minus_two, people) == {"active"}


def test_audience_exclusion_keeps_players_the_filter_cannot_decide(app):
    """Excluding "language = en" keeps players without a language (NOT NULL would drop them)."""
    SegmentFactory(app=app, name="English", filters=[{"field": "language", "relation": "=", "value": "en"}])
    SegmentFactory(app=app, name="Near", filters=[{"field": "location", "radius": 1000, "lat": 0, "long": 0}])
    SegmentFactory(
        app=app, name="Ten", filters=[{"field": "tag", "key": "lvl", "relation": ">", "value": "10"}]
    )
    unknown = PlayerFactory(app=app, language=None, lat=None, long=None, tags={})
    english = PlayerFactory(app=app, language="en", lat=0, long=0, tags={"lvl": "11"})
    players = audience(app=app, included_segments=["All"], excluded_segments=["English", "Near", "Ten"])
    assert list(players) == [unknown]
    assert english not in players


def test_audience_refuses_unknown_names_and_needs_an_included_segment(app, people):
    with pytest.raises(ApiError) as caught:
        audience(app=app, included_segments=["All"], excluded_segments=["Ghosts"])
    assert caught.value.body == {"errors": ['Segment "Ghosts" does not exist']}
    assert not audience(app=app, included_segments=[], excluded_segments=["All"]).exists()


def test_the_players_selector_delegates_here(app, people):
    everyone = set(people) - {"elsewhere"}
    assert ids(player_selectors.segment_players(app=app, segment_name=None), people) == everyone
    assert ids(player_selectors.segment_players(app=app, segment_name=""), people) == everyone
    assert (
        ids(player_selectors.segment_players(app=app, segment_name="Total Subscriptions"), people) == everyone
    )
    subscribed = player_selectors.segment_players(app=app, segment_name="Subscribed Users")
    assert ids(subscribed, people) == {"active_vip", "active", "lapsed_vip"}
    SegmentFactory(
        app=app, name="Lapsed", filters=[{"field": "last_session", "relation": ">", "hours_ago": "48"}]
    )
    assert ids(player_selectors.segment_players(app=app, segment_name="Lapsed"), people) == {"lapsed_vip"}
    with pytest.raises(ApiError):
        player_selectors.segment_players(app=app, segment_name="Nope")
