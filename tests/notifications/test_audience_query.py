"""The audience of a segment or filter send is one query over players_player, with no
self-subquery: the fan-out reads it in keyset pages, and ``id IN (SELECT id …)`` made each page
walk the subquery from the first id (quadratic in the audience; bench/audience.py). Nor does it
repeat the app and subscription conditions."""

from __future__ import annotations

import pytest

from notifications.platforms import device_types_for
from notifications.targeting import resolve_audience
from tests.factories import PlayerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

BODIES = {
    "segments": {"included_segments": ["Subscribed Users"]},
    "custom": {"included_segments": ["Big spenders"], "excluded_segments": ["Level four"]},
    "filters": {
        "filters": [
            {"field": "tag", "key": "level", "relation": ">", "value": "3"},
            {"operator": "OR"},
            {"field": "session_count", "relation": ">", "value": "5"},
        ]
    },
}


@pytest.mark.parametrize("kind", BODIES)
def test_a_segment_or_filter_audience_is_one_where_over_players(own, outsider, kind):
    SegmentFactory(
        app=own.app, name="Big spenders", filters=[{"field": "amount_spent", "relation": ">", "value": "10"}]
    )
    SegmentFactory(
        app=own.app,
        name="Level four",
        filters=[{"field": "tag", "key": "level", "relation": "=", "value": "4"}],
    )
    first = PlayerFactory(app=own.app, tags={"level": "5"}, session_count=9, amount_spent=20).pk
    second = PlayerFactory(app=own.app, tags={"level": "4"}, amount_spent=50).pk
    expected = {first} if kind == "custom" else {first, second}
    PlayerFactory(app=own.app, tags={"level": "1"}, session_count=1, amount_spent=1, notification_types=-2)
    PlayerFactory(app=outsider.app, tags={"level": "9"}, session_count=9, amount_spent=99)
    mode = "filters" if kind == "filters" else "segments"
    players = resolve_audience(
        app=own.app, body=BODIES[kind], mode=mode, device_types=device_types_for("push", {})
    ).players
    page = players.order_by("pk").filter(pk__gt=min(first, second)).values_list("pk")[:5000]
    assert 'IN (SELECT U0."id"' not in str(page.query), str(page.query)
    # Each condition once: PostgreSQL tests a repeated one again on every row it reads.
    where = str(players.query)
    assert where.count('"players_player"."app_id" =') == 1, where
    assert where.count('"players_player"."notification_types" > 0') == 1, where
    assert set(players.values_list("pk", flat=True)) == expected
