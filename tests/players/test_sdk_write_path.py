"""The SDK's write path kept short (BENCHMARKS.md, Ingest): on_session as one UPDATE, a new
token as one INSERT, the App from a per-process cache that forgets changed apps, and both rate
limits of a keyless call in one Redis round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from apps.models import App
from core.api import appcache
from players.models import DeviceType, Player
from players.one_statement import insert_new
from tests.embedded import embedded_env, manage
from tests.factories import PlayerFactory, apns_token

pytestmark = pytest.mark.django_db


def warm(api, own):
    """One keyless call, so that the app is in this process's cache."""
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "warm"}
    assert api.post("/players", body).status_code == 200


# --- on_session ------------------------------------------------------------------------------


def test_an_sdk_ping_is_one_update(api, own, django_assert_num_queries):
    warm(api, own)
    player = PlayerFactory(app=own.app, session_count=3, language="en")
    body = {"app_id": str(own.app.id), "language": "es", "timezone": 3600, "game_version": "1.2.0"}
    with django_assert_num_queries(1) as queries:
        response = api.post(f"/players/{player.id}/on_session", body)
    assert response.status_code == 200 and response.json() == {"success": True}
    assert queries.captured_queries[0]["sql"].startswith("UPDATE")
    player.refresh_from_db()
    assert (player.session_count, player.language, player.timezone, player.game_version) == (
        4,
        "es",
        3600,
        "1.2.0",
    )


def test_a_new_identifier_on_session_resubscribes_and_the_same_one_does_not(api, own):
    player = PlayerFactory(
        app=own.app, device_type=DeviceType.IOS, identifier=apns_token(), invalid_identifier=True
    )
    same = {"app_id": str(own.app.id), "device_type": 0, "identifier": player.identifier.upper()}
    assert api.post(f"/players/{player.id}/on_session", same).status_code == 200
    player.refresh_from_db()
    assert player.invalid_identifier is True  # normalized to the token it already had
    fresh = apns_token()
    assert (
        api.post(f"/players/{player.id}/on_session", {**same, "identifier": f"<{fresh}>"}).status_code == 200
    )
    player.refresh_from_db()
    assert player.identifier == fresh and player.invalid_identifier is False and player.session_count == 3


def test_on_session_merges_location_meta_and_ignores_a_bad_device_type(api, own):
    player = PlayerFactory(app=own.app, location_meta={"loc_acc": 5.0, "loc_type": 1})
    body = {"app_id": str(own.app.id), "loc_acc": 12.5, "lat": 48.8, "long": 2.3, "device_type": 99}
    assert api.post(f"/players/{player.id}/on_session", body).status_code == 200
    player.refresh_from_db()
    assert player.location_meta == {"loc_acc": 12.5, "loc_type": 1}
    assert (player.lat, player.long, player.device_type) == (48.8, 2.3, DeviceType.ANDROID)


def test_on_session_merges_tags_and_ignores_a_session_count_sent(api, own):
    player = PlayerFactory(app=own.app, tags={"a": "1", "b": "2"}, session_count=1)
    body = {"app_id": str(own.app.id), "tags": {"a": "", "c": 3}, "session_count": 50}
    assert api.post(f"/players/{player.id}/on_session", body).status_code == 200
    player.refresh_from_db()
    assert player.tags == {"b": "2", "c": "3"} and player.session_count == 2


def test_bad_input_on_session_writes_nothing(api, own):
    player = PlayerFactory(app=own.app, session_count=1, language="en")
    response = api.post(
        f"/players/{player.id}/on_session", {"app_id": str(own.app.id), "language": "english"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("language must be a 2-letter code")
    response = api.post(f"/players/{player.id}/on_session", {"app_id": str(own.app.id), "timezone": "west"})
    assert response.status_code == 400 and response.json()["errors"][0].startswith("timezone: ")
    player.refresh_from_db()
    assert player.session_count == 1 and player.language == "en"


def test_an_unknown_player_with_bad_input_still_gets_the_device_type_error(api, own):
    """The SDK re-registers on this message: bad input does not hide it."""
    unknown = "00000000-0000-4000-8000-000000000001"
    response = api.post(f"/players/{unknown}/on_session", {"app_id": str(own.app.id), "language": "english"})
    assert response.status_code == 400 and "not a valid device_type" in response.json()["errors"][0]


# --- POST /players and PUT /players/{id} --------------------------------------------------------


def test_a_new_token_is_one_insert(api, own, django_assert_num_queries):
    warm(api, own)
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "new-token", "tags": {"level": "1"}}
    with django_assert_num_queries(1) as queries:
        response = api.post("/players", body)
    assert response.status_code == 200
    assert queries.captured_queries[0]["sql"].startswith("INSERT")
    assert Player.objects.get(pk=response.json()["id"]).tags == {"level": "1"}


def test_the_hand_written_insert_stores_what_the_orm_would(own):
    """players.one_statement writes the INSERT itself: every column, typed by its own field, as
    Model.save() would store it (defaults included)."""
    fields = {
        "device_type": DeviceType.CHROME_WEB,
        "identifier": "https://push.example.com/abc",
        "language": "de",
        "tags": {"a": "1", "n": "2"},
        "lat": 48.85,
        "long": 2.35,
        "location_meta": {"loc_acc": 3.5},
        "amount_spent": Decimal("12.34"),
        "external_user_id": "user-1",
        "web_auth": "auth",
        "web_p256": "p256",
        "last_active": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    inserted = Player(app=own.app, **fields)
    assert insert_new(inserted) is True
    saved = Player.objects.create(app=own.app, **{**fields, "identifier": "https://push.example.com/def"})

    def stored(pk):
        row = Player.objects.filter(pk=pk).values().get()
        return {k: v for k, v in row.items() if k not in ("id", "identifier", "created_at")}

    assert stored(inserted.pk) == stored(saved.pk)
    assert Player.objects.get(pk=inserted.pk).created_at is not None
    assert insert_new(Player(app=own.app, **fields)) is False  # the identifier is taken: nothing written
    assert Player.objects.filter(app=own.app, identifier=fields["identifier"]).count() == 1


def test_registering_a_known_token_writes_only_what_changed(api, own, django_assert_num_queries):
    warm(api, own)
    player = PlayerFactory(app=own.app, identifier="known", tags={"a": "1"}, language="en")
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "known", "tags": {"b": "2"}}
    with django_assert_num_queries(3) as queries:  # INSERT (conflict), SELECT … FOR UPDATE, UPDATE
        response = api.post("/players", body)
    assert response.json() == {"success": True, "id": str(player.id)}
    update = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE"))
    assert '"tags"' in update and '"language"' not in update
    player.refresh_from_db()
    assert player.tags == {"a": "1", "b": "2"} and player.language == "en"


def test_a_tag_edit_is_one_update(api, own, django_assert_num_queries):
    warm(api, own)
    player = PlayerFactory(app=own.app, tags={"a": "1", "b": "x", "c": "y"})
    with django_assert_num_queries(1) as queries:
        response = api.put(f"/players/{player.id}", {"app_id": str(own.app.id), "tags": {"a": 2, "b": ""}})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert queries.captured_queries[0]["sql"].startswith("UPDATE")
    player.refresh_from_db()
    assert player.tags == {"a": "2", "c": "y"}


def test_an_edit_that_sets_nothing_is_answered_by_the_locked_path(api, own):
    player = PlayerFactory(app=own.app, language="en")
    assert api.put(f"/players/{player.id}", {"app_id": str(own.app.id)}).json() == {"success": True}
    player.refresh_from_db()
    assert player.language == "en"
    unknown = f"/players/{'00000000-0000-4000-8000-0000000000aa'}"
    assert api.put(unknown, {"app_id": str(own.app.id)}).status_code == 400  # no such player, as before


def test_tags_that_may_be_too_large_are_merged_on_the_locked_row(api, own):
    """Over a quarter of the limit the one statement steps aside; the locked path checks exactly."""
    big = {f"key{i:03}": "v" * 100 for i in range(60)}  # about 6.8 KB: over the guard, under the limit
    player = PlayerFactory(app=own.app, tags=big)
    response = api.put(
        f"/players/{player.id}", {"app_id": str(own.app.id), "tags": {"new": "1", "key000": ""}}
    )
    assert response.status_code == 200
    player.refresh_from_db()
    assert player.tags == {**{k: v for k, v in big.items() if k != "key000"}, "new": "1"}


def test_tags_over_the_limit_are_refused_and_nothing_is_written(api, own):
    full = {f"key{i:03}": "v" * 150 for i in range(100)}  # about 16.3 KB as merge_tags counts
    player = PlayerFactory(app=own.app, tags=full, language="en")
    body = {"app_id": str(own.app.id), "tags": {"more": "v" * 200}, "language": "de"}
    for path in (f"/players/{player.id}", f"/players/{player.id}/on_session"):
        response = api.request("PUT" if path.endswith(str(player.id)) else "POST", path, body)
        assert response.status_code == 400
        assert response.json() == {"errors": ["a player's tags must total at most 16384 bytes"]}
    player.refresh_from_db()
    assert player.tags == full and player.language == "en" and player.session_count == 1


@pytest.mark.parametrize(
    "char", ["a", "'", '"', "\\", "\x7f", "\n", "\x85", "\xa0", "\u0378", "\u200b", "é", "\U000e0001"]
)
def test_the_tags_guard_is_never_looser_than_merge_tags(char):
    """Whatever the characters, a repr is at most four times the jsonb text: tags the SQL guard
    lets through always pass merge_tags' own size check."""
    tags = {f"k{char}": char * 50, "plain": f"x{char}y" * 10}
    with connection.cursor() as cursor:
        cursor.execute("SELECT octet_length(%s::jsonb::text)", [json.dumps(tags)])
        jsonb_bytes = cursor.fetchone()[0]
    assert len(str(tags).encode()) <= 4 * jsonb_bytes


# --- the App cache ----------------------------------------------------------------------------


def test_an_app_that_stops_keyless_calls_is_refused_at_the_next_call(api, own):
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "t1"}
    assert api.post("/players", body).status_code == 200
    own.app.allow_unauthenticated_device_calls = False
    own.app.save()
    assert api.post("/players", {**body, "identifier": "t2"}).status_code == 400
    assert not Player.objects.filter(identifier="t2").exists()


def test_a_deleted_app_is_unknown_at_the_next_call(api, own):
    player = PlayerFactory(app=own.app)
    body = {"app_id": str(own.app.id)}
    assert api.post(f"/players/{player.id}/on_session", body).status_code == 200
    app_id = own.app.id
    App.objects.get(pk=app_id).delete()
    response = api.post(f"/players/{player.id}/on_session", body)
    assert response.status_code == 400
    assert response.json() == {"errors": [f"Couldn't find app with id = {app_id}"]}


def test_another_process_changing_an_app_is_seen_through_the_generation(api, own):
    """A change made elsewhere does not reach this process's signals: the generation counter it
    bumps in Redis does (_bump_generation is what another process runs after its commit)."""
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "t1"}
    assert api.post("/players", body).status_code == 200
    App.objects.filter(pk=own.app.pk).update(allow_unauthenticated_device_calls=False)  # no signal
    appcache._bump_generation()
    assert api.post("/players", {**body, "identifier": "t2"}).status_code == 400


def test_keyed_calls_never_use_the_cache(api, own, outsider):
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "t1"}
    assert api.post("/players", body).status_code == 200
    assert api.post("/players", {**body, "identifier": "t2"}, key=outsider.app_key).status_code == 400


# --- rate limits --------------------------------------------------------------------------------


def test_calls_refused_for_their_address_do_not_count_against_the_app(own, settings):
    settings.HERALD_RATE_LIMITS = {**settings.HERALD_RATE_LIMITS, "device_ip": "2/h", "players_write": "3/h"}

    def register(n: int, address: str):
        body = json.dumps({"app_id": str(own.app.id), "device_type": 1, "identifier": f"r{n}"})
        return Client().post(
            "/api/v1/players", data=body, content_type="application/json", REMOTE_ADDR=address
        )

    flood = [register(n, "203.0.113.5").status_code for n in range(6)]
    assert flood == [200, 200, 429, 429, 429, 429]
    # The app's bucket holds the two calls let through: a third from elsewhere passes, a fourth not.
    assert register(10, "198.51.100.9").status_code == 200
    limited = register(11, "198.51.100.10")
    assert limited.status_code == 429 and limited.json()["limit"] == "players_write"


# --- the embedded SQLite default ---------------------------------------------------------------

SDK_CALLS_ON_SQLITE = """
import json
from django.test import Client
from apps.demo import bootstrap_demo
from players.models import Player
app_id = str(bootstrap_demo(org_name="sqlite").app_id)
client, statuses = Client(), []
def call(method, path, body):
    body = json.dumps({"app_id": app_id, **body})
    response = getattr(client, method)(path, body, content_type="application/json")
    statuses.append(response.status_code)
    return response.json()
new = {"device_type": 1, "identifier": "tok", "tags": {"a": "1", "b": "2"}}
player_id = call("post", "/api/v1/players", new)["id"]
call("put", f"/api/v1/players/{player_id}", {"tags": {"b": "", "c": 3}, "language": "de"})
call("post", f"/api/v1/players/{player_id}/on_session", {"tags": {"d": "4"}, "loc_acc": 5.5, "timezone": 60})
player = Player.objects.get(pk=player_id)
print(json.dumps({
    "statuses": statuses, "tags": player.tags, "language": player.language,
    "sessions": player.session_count, "meta": player.location_meta, "timezone": player.timezone,
}))
"""


def test_the_sdk_writes_work_on_the_embedded_sqlite_default(tmp_path):
    """The one-statement UPDATE merges with jsonb operators, which SQLite lacks: there the same
    bodies take the locked path (a tag edit on `make run`'s database was a 500 before)."""
    env = {**embedded_env(tmp_path), "DJANGO_ALLOWED_HOSTS": "testserver"}
    assert manage(env, "migrate", "-v0").returncode == 0
    done = manage(env, "shell", "-c", SDK_CALLS_ON_SQLITE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "statuses": [200, 200, 200],
        "tags": {"a": "1", "c": "3", "d": "4"},
        "language": "de",
        "sessions": 2,
        "meta": {"loc_acc": 5.5},
        "timezone": 60,
    }
