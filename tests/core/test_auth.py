from __future__ import annotations

import pytest

from apps.models import AppKey, UserKey
from apps.services import api_key_revoke, api_key_rotate
from core.api.errors import CURRENT_KEY_ERROR, LEGACY_APP_KEY_ERROR, LEGACY_USER_KEY_ERROR

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("scheme", ["Basic", "basic", "Key", "KEY", "Bearer", "bearer"])
def test_every_scheme_carries_the_key_case_insensitively(api, own, scheme):
    assert api.get("/apps", key=own.user_key, scheme=scheme).status_code == 200
    assert api.get(f"/players?app_id={own.app.id}", key=own.app_key, scheme=scheme).status_code == 200


def test_basic_is_never_base64_decoded(api, own):
    import base64

    encoded = base64.b64encode(f"{own.user_key}:".encode()).decode()
    assert api.get("/apps", key=encoded, scheme="Basic").status_code == 400


@pytest.mark.parametrize("header", ["", "Token abc", "Key", "Key    ", "Basic not-a-key"])
def test_missing_or_malformed_keys_get_the_legacy_bodies_under_api_v1(api, own, header):
    extra = {"authorization": header} if header else {}
    apps = api.get("/apps", **extra)
    assert apps.status_code == 400 and apps.json() == LEGACY_USER_KEY_ERROR
    players = api.get(f"/players?app_id={own.app.id}", **extra)
    assert players.status_code == 400 and players.json() == LEGACY_APP_KEY_ERROR


def test_the_current_root_answers_403_access_denied(api_root, own):
    response = api_root.get("/apps", key="wrong")
    assert response.status_code == 403 and response.json() == CURRENT_KEY_ERROR
    assert "denied.  Please" in response.json()["errors"][0]


def test_a_revoked_key_is_refused(api, own):
    key = AppKey.objects.get(app=own.app, label="test")
    api_key_revoke(key=key)
    assert api.get(f"/players?app_id={own.app.id}", key=own.app_key).status_code == 400
    user_key = UserKey.objects.get(organization=own.organization)
    api_key_revoke(key=user_key)
    assert api.get("/apps", key=own.user_key).status_code == 400


def test_rotation_revokes_the_old_key_and_the_new_one_works(api, own):
    key = AppKey.objects.get(app=own.app, label="test")
    _replacement, plaintext = api_key_rotate(key=key)
    assert api.get(f"/players?app_id={own.app.id}", key=own.app_key).status_code == 400
    assert api.get(f"/players?app_id={own.app.id}", key=plaintext).status_code == 200


def test_keys_are_stored_as_hashes_only(own):
    for key in [*AppKey.objects.all(), *UserKey.objects.all()]:
        assert own.app_key[len(key.prefix) :] not in key.prefix + key.digest
        assert len(key.digest) == 64 and key.digest not in (own.app_key, own.user_key)
    stored = AppKey.objects.get(app=own.app, label="test")
    assert own.app_key.startswith(stored.prefix) and own.app_key != stored.prefix


def test_another_apps_key_looks_like_a_wrong_key(api, api_root, own, teammate):
    wrong = api.get(f"/players?app_id={own.app.id}", key="hak_nonsense")
    other = api.get(f"/players?app_id={own.app.id}", key=teammate.app_key)
    assert other.status_code == wrong.status_code == 400 and other.json() == wrong.json()
    assert api_root.get(f"/players?app_id={own.app.id}", key=teammate.app_key).status_code == 403


def test_a_user_key_is_not_an_app_key(api, own):
    assert api.get(f"/players?app_id={own.app.id}", key=own.user_key).status_code == 400


def test_a_key_sent_to_a_device_endpoint_is_validated(api, own):
    body = {"app_id": str(own.app.id), "device_type": 1, "identifier": "t"}
    assert api.post("/players", body, key="bogus").status_code == 400
    assert api.post("/players", body, key=own.app_key).status_code == 200


def test_no_key_plaintext_is_in_any_raw_row(own):
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("apps_appkey", "apps_userkey"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed table names)
            dumped = repr(cursor.fetchall())
            assert own.app_key not in dumped and own.user_key not in dumped
            assert own.app_key[12:] not in dumped and own.user_key[12:] not in dumped
