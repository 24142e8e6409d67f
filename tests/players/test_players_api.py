from __future__ import annotations

import uuid

import pytest

from players.models import DeviceType, Player, Purchase
from tests.factories import PlayerFactory, apns_token, fcm_token

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"


# --- POST /players -------------------------------------------------------------------------


def test_register_creates_a_player_without_a_key(api, own):
    body = {
        "app_id": str(own.app.id),
        "device_type": 1,
        "identifier": "tok-1",
        "language": "es",
        "timezone": -28800,
        "tags": {"level": "10", "score": 5, "gone": ""},
        "ad_id": None,
    }
    response = api.post("/players", body)
    assert response.status_code == 200
    data = response.json()
    assert data["success"] is True
    player = Player.objects.get(pk=data["id"])
    assert player.app_id == own.app.id and player.language == "es" and player.timezone == -28800
    assert player.tags == {"level": "10", "score": "5"}
    assert player.session_count == 1


def test_register_is_an_upsert_on_the_identifier(api, own):
    first = api.post("/players", {"app_id": str(own.app.id), "device_type": 1, "identifier": "tok-1"}).json()
    again = api.post(
        "/players",
        {"app_id": str(own.app.id), "device_type": 1, "identifier": "tok-1", "game_version": "2.0"},
    ).json()
    assert again["id"] == first["id"]
    assert Player.objects.filter(app=own.app).count() == 1
    assert Player.objects.get(pk=first["id"]).game_version == "2.0"


def test_the_same_token_in_another_app_is_another_player(api, own, outsider):
    a = api.post("/players", {"app_id": str(own.app.id), "device_type": 1, "identifier": "shared"}).json()
    b = api.post(
        "/players", {"app_id": str(outsider.app.id), "device_type": 1, "identifier": "shared"}
    ).json()
    assert a["id"] != b["id"]


@pytest.mark.parametrize("device_type", list(range(15)))
def test_every_device_type_is_accepted(api, own, device_type):
    identifier = {
        0: apns_token(),
        9: apns_token(),
        11: "Someone@Example.com",
        14: "+15551234567",
        5: "https://push.example/send/abc",
        8: "https://updates.push.example/wpush/v2/x",
    }
    body = {
        "app_id": str(own.app.id),
        "device_type": device_type,
        "identifier": identifier.get(device_type, fcm_token()),
    }
    response = api.post("/players", body)
    assert response.status_code == 200, response.json()
    assert Player.objects.get(pk=response.json()["id"]).device_type == device_type


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"device_type": 15, "identifier": "x"}, "15 is not a valid device_type (0 to 14)"),
        ({"identifier": "x"}, "device_type is required"),
        (
            {"device_type": 0, "identifier": "not-hex"},
            "identifier is not a valid APNs device token (hexadecimal)",
        ),
        ({"device_type": 14, "identifier": "5551234"}, "identifier must be a phone number in E.164 format"),
        ({"device_type": 11, "identifier": "not-an-email"}, "identifier is not a valid email address"),
        ({"device_type": 1, "identifier": "has space"}, "identifier must not contain spaces"),
        ({"device_type": 1, "tags": {"a": [1]}}, "tag 'a' must be a string or a number"),
        ({"device_type": 1, "tags": {f"k{i}": "v" for i in range(101)}}, "tags may change at most 100 keys"),
        ({"device_type": 1, "timezone": "west"}, "timezone: "),
        ({"device_type": 1, "language": "english"}, "language must be a 2-letter code"),
    ],
)
def test_register_rejects_bad_input_and_writes_nothing(api, own, body, message):
    response = api.post("/players", {"app_id": str(own.app.id), **body})
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)
    assert not Player.objects.exists()


def test_ios_tokens_are_stripped_of_punctuation(api, own):
    token = apns_token()
    spaced = "<" + " ".join(token[i : i + 8] for i in range(0, 64, 8)) + ">"
    player_id = api.post(
        "/players", {"app_id": str(own.app.id), "device_type": 0, "identifier": spaced}
    ).json()["id"]
    assert Player.objects.get(pk=player_id).identifier == token


def test_email_and_sms_on_a_push_player_create_linked_players(api, own):
    body = {
        "app_id": str(own.app.id),
        "device_type": 1,
        "identifier": "push-tok",
        "email": "a@example.com",
        "sms_number": "+447700900123",
    }
    parent = api.post("/players", body).json()["id"]
    linked = Player.objects.filter(parent_player_id=parent).order_by("device_type")
    assert [(p.device_type, p.identifier) for p in linked] == [(11, "a@example.com"), (14, "+447700900123")]


def test_register_for_an_unknown_app_is_a_400(api, db):
    response = api.post("/players", {"app_id": UNKNOWN, "device_type": 1, "identifier": "t"})
    assert response.status_code == 400
    assert response.json() == {"errors": [f"Couldn't find app with id = {UNKNOWN}"]}


def test_register_with_another_apps_key_is_refused(api, own, outsider):
    response = api.post(
        "/players", {"app_id": str(own.app.id), "device_type": 1, "identifier": "t"}, key=outsider.app_key
    )
    assert response.status_code == 400
    assert "valid REST API key" in response.json()["errors"][0]
    assert not Player.objects.exists()


def test_an_app_can_require_keys_on_device_calls(api, own):
    own.app.allow_unauthenticated_device_calls = False
    own.app.save()
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "t"}
    assert api.post("/players", body).status_code == 400
    assert not Player.objects.exists()
    assert api.post("/players", body, key=own.app_key).status_code == 200


# --- GET /players ----------------------------------------------------------------------------


def test_list_pages_sorted_by_id(api, own, outsider):
    PlayerFactory.create_batch(5, app=own.app)
    PlayerFactory(app=outsider.app)
    response = api.get(f"/players?app_id={own.app.id}&limit=2&offset=1", key=own.app_key)
    assert response.status_code == 200
    body = response.json()
    ordered = sorted(str(p.id) for p in Player.objects.filter(app=own.app))
    assert body["total_count"] == 5 and body["offset"] == 1 and body["limit"] == 2
    assert [p["id"] for p in body["players"]] == ordered[1:3]


def test_list_clamps_the_limit_to_300(api, own):
    body = api.get(f"/players?app_id={own.app.id}&limit=5000", key=own.app_key).json()
    assert body["limit"] == 300


def test_list_rejects_a_malformed_limit(api, own):
    response = api.get(f"/players?app_id={own.app.id}&limit=lots", key=own.app_key)
    assert response.status_code == 400
    assert response.json() == {"errors": ["limit must be a non-negative integer"]}


@pytest.mark.parametrize(
    "path",
    ["/players", "/notifications", "/apps/{app}/segments"],
    ids=["players", "notifications", "segments"],
)
def test_lists_refuse_an_offset_past_64_bits(api, own, path):
    """Found by tests/fuzz (OneSignal's spec 1.0.2 run): offset=1.8e29 was a 500 when echoed."""
    url = path.format(app=own.app.id) + f"?app_id={own.app.id}&offset=184105266844726696771405742080"
    response = api.get(url, key=own.app_key)
    assert response.status_code == 400
    assert response.json() == {"errors": ["offset must be at most 9223372036854775807"]}
    assert (
        api.get(url.replace("184105266844726696771405742080", str(2**63 - 1)), key=own.app_key).status_code
        == 200
    )


def test_list_needs_the_app_key(api, api_root, own, teammate):
    assert api.get(f"/players?app_id={own.app.id}").status_code == 400
    assert api_root.get(f"/players?app_id={own.app.id}").status_code == 403
    assert api_root.get(f"/players?app_id={own.app.id}", key=teammate.app_key).status_code == 403


def test_list_pins_its_query_count(api, own, django_assert_num_queries):
    PlayerFactory.create_batch(20, app=own.app)
    # key lookup, last_used touch, count, page
    with django_assert_num_queries(4):
        assert api.get(f"/players?app_id={own.app.id}", key=own.app_key).status_code == 200


# --- GET /players/{id} -----------------------------------------------------------------------


def test_view_returns_the_player_object(api, own):
    player = PlayerFactory(app=own.app, tags={"a": "1"}, amount_spent=0, country=None)
    body = api.get(f"/players/{player.id}?app_id={own.app.id}", key=own.app_key).json()
    assert body["id"] == str(player.id) and body["tags"] == {"a": "1"} and body["amount_spent"] == 0.0
    assert body["invalid_identifier"] is False and body["test_type"] is None and body["ad_id"] is None
    assert isinstance(body["created_at"], int) and isinstance(body["last_active"], int)
    assert "country" not in body  # typed non-nullable by OneSignal's clients: omitted when unset


def test_view_of_unknown_or_foreign_player_is_400_no_user(api, own, outsider):
    foreign = PlayerFactory(app=outsider.app)
    for player_id in (UNKNOWN, "garbage", str(foreign.id)):
        response = api.get(f"/players/{player_id}?app_id={own.app.id}", key=own.app_key)
        assert response.status_code == 400
        assert response.json() == {"errors": ["No user with this id found"]}


def test_view_answers_304_to_a_matching_etag(api, own):
    player = PlayerFactory(app=own.app)
    first = api.get(f"/players/{player.id}?app_id={own.app.id}")
    assert first.status_code == 200
    again = api.get(f"/players/{player.id}?app_id={own.app.id}", if_none_match=first["ETag"])
    assert again.status_code == 304


# --- PUT /players/{id} -----------------------------------------------------------------------


def test_edit_merges_tags_and_deletes_empty_ones(api, own):
    player = PlayerFactory(app=own.app, tags={"rank": "3", "keep": "yes"})
    response = api.put(
        f"/players/{player.id}",
        {"app_id": str(own.app.id), "tags": {"rank": "", "class": "new", "keep": None}},
    )
    assert response.status_code == 200 and response.json() == {"success": True}
    player.refresh_from_db()
    assert player.tags == {"class": "new"}


def test_edit_replaces_other_fields_and_resubscribes_on_a_new_token(api, own):
    player = PlayerFactory(app=own.app, invalid_identifier=True, notification_types=1)
    api.put(
        f"/players/{player.id}",
        {"app_id": str(own.app.id), "identifier": "fresh", "external_user_id": "u1", "device_type": 99},
    )
    player.refresh_from_db()
    assert player.identifier == "fresh" and player.invalid_identifier is False
    assert player.external_user_id == "u1" and player.device_type == DeviceType.ANDROID


def test_edit_can_unsubscribe(api, own):
    player = PlayerFactory(app=own.app)
    api.put(f"/players/{player.id}", {"app_id": str(own.app.id), "notification_types": -2})
    player.refresh_from_db()
    assert not player.is_subscribed


def test_edit_of_a_foreign_player_changes_nothing(api, own, outsider):
    foreign = PlayerFactory(app=outsider.app, tags={})
    response = api.put(f"/players/{foreign.id}", {"app_id": str(own.app.id), "tags": {"x": "1"}})
    assert response.status_code == 400
    assert response.json() == {"errors": ["No user with this id found"]}
    foreign.refresh_from_db()
    assert foreign.tags == {}


def test_edit_with_a_bad_field_writes_nothing(api, own):
    player = PlayerFactory(app=own.app, tags={"a": "1"}, language="en")
    response = api.put(
        f"/players/{player.id}", {"app_id": str(own.app.id), "tags": {"a": "2"}, "language": 5}
    )
    assert response.status_code == 400
    player.refresh_from_db()
    assert player.tags == {"a": "1"} and player.language == "en"


# --- DELETE /players/{id} --------------------------------------------------------------------


def test_delete_removes_the_player_and_its_purchases(api, own):
    player = PlayerFactory(app=own.app)
    Purchase.objects.create(player=player, sku="x")
    response = api.delete(f"/players/{player.id}?app_id={own.app.id}", key=own.app_key)
    assert response.status_code == 200 and response.json() == {"success": True}
    assert not Player.objects.exists() and not Purchase.objects.exists()


def test_delete_unknown_is_404_success_false(api, own):
    response = api.delete(f"/players/{UNKNOWN}?app_id={own.app.id}", key=own.app_key)
    assert response.status_code == 404 and response.json() == {"success": False}


def test_delete_needs_the_key_of_that_app(api, own, outsider):
    player = PlayerFactory(app=own.app)
    assert api.delete(f"/players/{player.id}?app_id={own.app.id}").status_code == 400
    assert api.delete(f"/players/{player.id}?app_id={own.app.id}", key=outsider.app_key).status_code == 400
    foreign = PlayerFactory(app=outsider.app)
    assert api.delete(f"/players/{foreign.id}?app_id={own.app.id}", key=own.app_key).status_code == 404
    assert Player.objects.count() == 2


# --- SDK session protocol ------------------------------------------------------------------


def test_on_session_counts_the_session_and_applies_fields(api, own):
    player = PlayerFactory(app=own.app, session_count=3, language="en")
    response = api.post(
        f"/players/{player.id}/on_session",
        {"app_id": str(own.app.id), "language": "es", "game_version": "1.1"},
    )
    assert response.status_code == 200 and response.json() == {"success": True}
    player.refresh_from_db()
    assert player.session_count == 4 and player.language == "es" and player.game_version == "1.1"


def test_on_session_is_also_accepted_as_put(api, own):
    player = PlayerFactory(app=own.app, session_count=1)
    assert api.put(f"/players/{player.id}/on_session", {"app_id": str(own.app.id)}).status_code == 200
    player.refresh_from_db()
    assert player.session_count == 2


def test_on_session_for_unknown_player_without_device_type_is_the_documented_400(api, own):
    response = api.post(f"/players/{UNKNOWN}/on_session", {"app_id": str(own.app.id), "language": "es"})
    assert response.status_code == 400
    assert "not a valid device_type" in response.json()["errors"][0]
    assert not Player.objects.exists()


def test_on_session_for_unknown_player_with_device_type_creates_it(api, own):
    response = api.post(
        f"/players/{UNKNOWN}/on_session", {"app_id": str(own.app.id), "device_type": 1, "identifier": "tok"}
    )
    assert response.status_code == 200
    created = Player.objects.get(pk=response.json()["id"])
    assert created.identifier == "tok" and response.json()["success"] is True


def test_on_session_for_a_foreign_player_does_not_touch_it(api, own, outsider):
    foreign = PlayerFactory(app=outsider.app, session_count=1)
    response = api.post(f"/players/{foreign.id}/on_session", {"app_id": str(own.app.id)})
    assert response.status_code == 400
    foreign.refresh_from_db()
    assert foreign.session_count == 1


def test_on_purchase_adds_to_amount_spent(api, own):
    player = PlayerFactory(app=own.app)
    body = {
        "app_id": str(own.app.id),
        "purchases": [{"sku": "coins", "amount": 0.99, "iso": "USD"}, {"sku": "gems", "amount": "2.01"}],
    }
    assert api.post(f"/players/{player.id}/on_purchase", body).json() == {"success": True}
    player.refresh_from_db()
    assert float(player.amount_spent) == 3.0
    assert set(player.purchases.values_list("sku", flat=True)) == {"coins", "gems"}


def test_on_purchase_existing_does_not_count_known_skus_twice(api, own):
    player = PlayerFactory(app=own.app)
    url = f"/players/{player.id}/on_purchase"
    api.post(url, {"app_id": str(own.app.id), "purchases": [{"sku": "coins", "amount": 1}]})
    api.post(
        url,
        {
            "app_id": str(own.app.id),
            "existing": True,
            "purchases": [{"sku": "coins", "amount": 1}, {"sku": "old", "amount": 5}],
        },
    )
    player.refresh_from_db()
    assert float(player.amount_spent) == 6.0
    assert player.purchases.count() == 3


def test_on_purchase_rejects_a_bad_body(api, own):
    player = PlayerFactory(app=own.app)
    response = api.post(f"/players/{player.id}/on_purchase", {"app_id": str(own.app.id), "purchases": [{}]})
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("purchases")
    assert not Purchase.objects.exists()


def test_on_focus_adds_active_time_without_a_session(api, own):
    player = PlayerFactory(app=own.app, playtime=10, session_count=2)
    body = {"app_id": str(own.app.id), "type": 1, "state": "ping", "active_time": 60, "device_type": 1}
    assert api.post(f"/players/{player.id}/on_focus", body).json() == {"success": True}
    player.refresh_from_db()
    assert player.playtime == 70 and player.session_count == 2


def test_on_focus_of_unknown_player_is_400(api, own):
    response = api.post(f"/players/{uuid.uuid4()}/on_focus", {"app_id": str(own.app.id), "active_time": 5})
    assert response.status_code == 400 and response.json() == {"errors": ["No user with this id found"]}


# --- PUT /apps/{app_id}/users/{external_user_id} ----------------------------------------------


def test_tags_by_external_id_update_every_player_of_that_user(api, own, outsider):
    mine = PlayerFactory.create_batch(2, app=own.app, external_user_id="user-1", tags={"rank": "1"})
    other = PlayerFactory(app=outsider.app, external_user_id="user-1", tags={"rank": "1"})
    response = api.put(
        f"/apps/{own.app.id}/users/user-1", {"tags": {"rank": "", "class": "new"}}, key=own.app_key
    )
    assert response.status_code == 200 and response.json() == {"success": True}
    for player in mine:
        player.refresh_from_db()
        assert player.tags == {"class": "new"}
    other.refresh_from_db()
    assert other.tags == {"rank": "1"}


def test_tags_by_unknown_external_id_is_400(api, own):
    response = api.put(f"/apps/{own.app.id}/users/nobody", {"tags": {"a": "1"}}, key=own.app_key)
    assert response.status_code == 400 and response.json() == {"errors": ["No user with this id found"]}


def test_tags_by_external_id_needs_the_apps_key(api, own, teammate):
    PlayerFactory(app=own.app, external_user_id="user-1", tags={})
    assert api.put(f"/apps/{own.app.id}/users/user-1", {"tags": {"a": "1"}}).status_code == 400
    response = api.put(f"/apps/{own.app.id}/users/user-1", {"tags": {"a": "1"}}, key=teammate.app_key)
    assert response.status_code == 400
    assert Player.objects.get().tags == {}
