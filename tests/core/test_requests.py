"""Routing, body parsing and error shapes shared by every endpoint."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from core.api.errors import APP_ID_NOT_FOUND
from players.models import Player

pytestmark = pytest.mark.django_db


def test_routes_answer_with_and_without_trailing_slash_under_both_roots(api, api_root, own):
    for client in (api, api_root):
        for path in ("/apps", "/apps/"):
            assert client.get(path, key=own.user_key).status_code == 200
        body = {"app_id": str(own.app.id), "device_type": 1}
        assert client.post("/players/", body).status_code == 200
        assert client.post("/players", body).status_code == 200


def test_repeated_slashes_are_collapsed(api, own):
    assert api.get("//apps", key=own.user_key).status_code == 200


def test_unknown_routes_and_methods_answer_json(api, own):
    missing = api.get("/nothing-here", key=own.user_key)
    assert missing.status_code == 404 and missing.json() == {"errors": ["Not Found"]}
    wrong_method = api.request("PATCH", "/apps", key=own.user_key)
    assert wrong_method.status_code == 405 and wrong_method.json() == {"errors": ["Method Not Allowed"]}


@pytest.mark.parametrize("method", ["TRACE", "PUT"])
@pytest.mark.parametrize(
    "path", ["/players?app_id=", "/apps/0/segments/0", "/notifications/x/history", "/apps"]
)
def test_a_wrong_method_is_a_405_before_any_key_or_app_id_check(api, api_root, method, path):
    """Found by tests/fuzz (OneSignal's spec 1.0.2 run): the tenant was resolved first, so a
    wrong method without a key or app_id answered the 400/403 of the missing key instead."""
    for client in (api, api_root):
        response = client.request(method, path)
        assert response.status_code == 405 and response.json() == {"errors": ["Method Not Allowed"]}


def test_invalid_json_is_a_400(api, own):
    response = api.post("/players", raw=b'{"app_id": ', key=own.app_key)
    assert response.status_code == 400 and response.json() == {"errors": ["Invalid JSON body"]}


def test_a_non_object_body_is_a_400(api, own):
    response = api.post("/players", raw=b"[1, 2]")
    assert response.status_code == 400
    assert response.json() == {"errors": ["The request body must be a JSON object"]}


def test_a_body_not_declared_as_json_is_not_parsed(api, own):
    response = api.post(
        "/players", raw=f'{{"app_id": "{own.app.id}", "device_type": 1}}', content_type="text/plain"
    )
    assert response.status_code == 400 and response.json() == {"errors": [APP_ID_NOT_FOUND]}
    assert not Player.objects.exists()


def test_json_with_charset_and_sdk_headers_is_accepted(api, own):
    response = api.post(
        "/players",
        {"app_id": str(own.app.id), "device_type": 1},
        content_type="application/json; charset=UTF-8",
        accept="application/vnd.onesignal.v1+json",
        sdk_version="onesignal/android/040812",
    )
    assert response.status_code == 200


def test_wrong_types_are_400_not_500(api, own):
    for body in (
        {"app_id": 12, "device_type": 1},
        {"app_id": str(own.app.id), "device_type": [1]},
        {"app_id": str(own.app.id), "device_type": "one"},
        {"app_id": str(own.app.id), "device_type": True},
    ):
        response = api.post("/players", body)
        assert response.status_code == 400, body
        assert isinstance(response.json()["errors"][0], str)


def test_app_id_in_query_and_body_must_agree(api, own, outsider):
    response = api.post(f"/players?app_id={outsider.app.id}", {"app_id": str(own.app.id), "device_type": 1})
    assert response.status_code == 400
    assert response.json() == {"errors": ["app_id in the query string and in the body differ"]}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_bodies_are_413(api, own):
    body = {"app_id": str(own.app.id), "device_type": 1, "ad_id": "x" * 2000}
    response = api.post("/players", body)
    assert response.status_code == 413 and response.json() == {"errors": ["Request body is too large"]}
    assert not Player.objects.exists()


@override_settings(HERALD_RATE_LIMITS={"players_write": "3/h", "apps": "2/h"})
def test_rate_limits_answer_429_with_retry_after(api, own, outsider):
    body = {"app_id": str(own.app.id), "device_type": 1}
    statuses = [api.post("/players", body).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.post("/players", body)
    assert limited.json() == {"errors": ["API rate limit exceeded."], "limit": "players_write"}
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert Player.objects.filter(app=own.app).count() == 3
    # Another app has its own bucket.
    assert api.post("/players", {"app_id": str(outsider.app.id), "device_type": 1}).status_code == 200
    assert [api.get("/apps", key=own.user_key).status_code for _ in range(3)] == [200, 200, 429]
    assert 1 <= int(api.get("/apps", key=own.user_key)["Retry-After"]) <= 3600


def test_rate_limit_counters_on_redis_always_get_their_expiry():
    """Found by tests/fuzz: the Redis path was dead (``cache`` is a proxy), so the counter was
    ``add`` then ``incr``: a counter that lost its expiry kept it lost, and one that vanished
    between the two commands failed open with a logged traceback."""
    from django.core.cache import caches

    from core.api.ratelimit import _increment

    backend = caches["default"]
    key = "herald:rl:test:identity:1"
    raw_key = backend.make_and_validate_key(key)
    client = backend._cache.get_client(raw_key, write=True)
    client.set(raw_key, 5)  # a counter without an expiry
    assert _increment(key, 60) == 6
    assert 0 < client.ttl(raw_key) <= 61
    client.delete(raw_key)
    assert _increment(key, 60) == 1 and 0 < client.ttl(raw_key) <= 61


def test_schema_and_swagger_are_served(api_root):
    schema = api_root.client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    document = json.loads(schema.content)
    assert "/players" in document["paths"] and "/apps/{app_id}" in document["paths"]
    assert not any(path.startswith("/api/v1/") for path in document["paths"])
    create_player = document["paths"]["/players"]["post"]
    assert create_player["operationId"] == "create_player"
    player = document["components"]["schemas"]["PlayerOutput"]["properties"]
    assert {"id", "identifier", "tags", "session_count", "invalid_identifier"} <= set(player)
    assert api_root.client.get("/api/docs/").status_code == 200


def test_the_openapi_schema_is_valid_and_warning_free(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "operationId: create_notification" in target.read_text()
