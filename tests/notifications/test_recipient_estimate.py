"""The recipient count ``POST /notifications`` answers: exact up to a limit, sampled beyond it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from notifications.recipient_estimate import estimated_recipients
from players.models import DeviceType, Player
from tests.factories import AppFactory, PlayerFactory

pytestmark = pytest.mark.django_db


def _seed(app, count: int, *, tags: dict, start: int = 0) -> None:
    """Many players fast: the factory's per-row Faker would dominate the test."""
    Player.objects.bulk_create(
        [
            Player(app=app, device_type=DeviceType.ANDROID, identifier=f"token-{app.pk}-{n}", tags=tags)
            for n in range(start, start + count)
        ],
        batch_size=5000,
    )


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Player._meta.db_table}"')


def _subscribed(app, **tags):
    players = Player.objects.filter(app=app).subscribed()
    return players.filter(**{f"tags__{k}": v for k, v in tags.items()}) if tags else players


def test_exact_up_to_the_limit(settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 50
    app = AppFactory()
    PlayerFactory.create_batch(30, app=app)
    PlayerFactory.create_batch(5, app=app, notification_types=-2)  # unsubscribed: not recipients

    with CaptureQueriesContext(connection) as queries:
        assert estimated_recipients(_subscribed(app)) == 30
    assert not any("TABLESAMPLE" in q["sql"] for q in queries.captured_queries)


def test_zero_is_exact(settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 5
    assert estimated_recipients(_subscribed(AppFactory())) == 0


def test_beyond_the_limit_a_whole_table_sample_is_exact(settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 10
    settings.HERALD_RECIPIENT_SAMPLE_ROWS = 1_000_000  # more than the table: the sample is all of it
    app = AppFactory()
    _seed(app, 40, tags={"plan": "pro"})
    _seed(app, 25, tags={"plan": "free"}, start=40)
    _analyze()

    with CaptureQueriesContext(connection) as queries:
        assert estimated_recipients(_subscribed(app, plan="pro")) == 40
    assert any("TABLESAMPLE SYSTEM" in q["sql"] for q in queries.captured_queries)


def test_beyond_the_limit_a_sample_estimates_within_a_tenth_and_never_below_what_was_counted(settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 100
    settings.HERALD_RECIPIENT_SAMPLE_ROWS = 3000
    app, other = AppFactory(), AppFactory()
    # Row by row interleaved, so that every page holds each kind in the same shares: a block sample
    # then sees the true shares whichever pages it picks (another tenant's rows: sampled, not counted).
    kinds = [(app, "pro"), (app, "free"), (other, "pro")]
    Player.objects.bulk_create(
        [
            Player(app=owner, device_type=DeviceType.ANDROID, identifier=f"t-{n}-{k}", tags={"plan": plan})
            for n in range(4000)
            for k, (owner, plan) in enumerate(kinds)
        ],
        batch_size=6000,
    )
    _analyze()

    with CaptureQueriesContext(connection) as queries:
        pro = estimated_recipients(_subscribed(app, plan="pro"))
    everyone = estimated_recipients(_subscribed(app))

    sampled = [q["sql"] for q in queries.captured_queries if "TABLESAMPLE SYSTEM" in q["sql"]]
    assert len(sampled) == 1 and "FILTER (WHERE" in sampled[0]  # one pass counts both
    assert 3_600 <= pro <= 4_400, pro
    assert 7_200 <= everyone <= 8_800, everyone


def test_the_api_answers_the_estimate_and_the_fan_out_stores_the_exact_count(api, own, settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 10
    settings.HERALD_RECIPIENT_SAMPLE_ROWS = 1_000_000
    _seed(own.app, 25, tags={})
    _analyze()

    body = {"app_id": str(own.app.pk), "contents": {"en": "Hi"}, "included_segments": ["Subscribed Users"]}
    response = api.post("/notifications", body, key=own.app_key)

    assert response.status_code == 200, response.json()
    assert response.json()["recipients"] == 25
    assert Notification.objects.get(pk=response.json()["id"]).recipients == 25


def test_a_table_grown_since_its_last_analyze_is_not_scaled_by_its_stale_row_count(settings):
    settings.HERALD_EXACT_RECIPIENT_COUNT = 100
    settings.HERALD_RECIPIENT_SAMPLE_ROWS = 2000
    app, other = AppFactory(), AppFactory()
    _seed(other, 300, tags={})
    _analyze()  # the statistics now say 300 rows (plus whatever earlier tests left)
    Player.objects.bulk_create(  # a bulk import afterwards, before any ANALYZE
        [
            Player(app=app, device_type=DeviceType.ANDROID, identifier=f"g-{n}-{plan}", tags={"plan": plan})
            for n in range(3000)
            for plan in ("pro", "free")
        ],
        batch_size=6000,
    )

    with CaptureQueriesContext(connection) as queries:
        pro = estimated_recipients(_subscribed(app, plan="pro"))

    assert any("TABLESAMPLE SYSTEM" in q["sql"] for q in queries.captured_queries)
    assert 2_550 <= pro <= 3_450, pro  # 3,000 within 15%; scaled by the stale 300 rows it would be ~150
