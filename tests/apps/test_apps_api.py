from __future__ import annotations

import pytest
from django.db import connection

from apps.models import App
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def test_list_returns_a_bare_array_of_the_organizations_apps_only(api, own, teammate, outsider):
    PlayerFactory.create_batch(3, app=own.app)
    PlayerFactory(app=own.app, notification_types=-2)
    response = api.get("/apps", key=own.user_key)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert {a["id"] for a in body} == {str(own.app.id), str(teammate.app.id)}
    mine = next(a for a in body if a["id"] == str(own.app.id))
    assert mine["players"] == 4
    assert mine["messageable_players"] == 3
    assert mine["gcm_key"] is None and mine["basic_auth_key"] is None
    assert mine["created_at"].endswith("Z") and len(mine["created_at"]) == 24


def test_list_runs_a_fixed_number_of_queries(api, own, django_assert_num_queries):
    for _ in range(5):
        App.objects.create(organization=own.organization, name="more")
    # key lookup + last_used touch + one annotated list query
    with django_assert_num_queries(3):
        assert api.get("/apps", key=own.user_key).status_code == 200


def test_create_requires_a_name_with_onesignals_message(api, own):
    response = api.post("/apps", {"chrome_web_origin": "https://x.example"}, key=own.user_key)
    assert response.status_code == 400
    assert response.json() == {"errors": ["Name Enter an app name"]}
    assert App.objects.filter(organization=own.organization).count() == 1


def test_create_shows_the_first_app_key_once_and_it_works(api, own):
    response = api.post(
        "/apps", {"name": "Shop", "apns_env": "sandbox", "gcm_key": "secret-gcm"}, key=own.user_key
    )
    assert response.status_code == 200
    created = response.json()
    assert created["name"] == "Shop" and created["apns_env"] == "sandbox"
    assert created["gcm_key"] is None
    app_key = created["basic_auth_key"]
    assert app_key.startswith("hak_")
    listed = api.get(f"/players?app_id={created['id']}", key=app_key)
    assert listed.status_code == 200
    assert api.get(f"/apps/{created['id']}", key=own.user_key).json()["basic_auth_key"] is None
    assert App.objects.get(pk=created["id"]).gcm_key == "secret-gcm"


def test_get_unknown_or_foreign_app_is_404_with_the_array_error(api, own, outsider):
    for app_id in (str(outsider.app.id), "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = api.get(f"/apps/{app_id}", key=own.user_key)
        assert response.status_code == 404
        assert response.json() == {"errors": [f"Couldn't find app with id = {app_id}"]}


def test_update_is_partial_and_returns_the_full_app(api, own):
    response = api.put(f"/apps/{own.app.id}", {"site_name": "Example", "chrome_key": "ck"}, key=own.user_key)
    assert response.status_code == 200
    body = response.json()
    assert body["site_name"] == "Example" and body["name"] == own.app.name and body["chrome_key"] is None
    own.app.refresh_from_db()
    assert own.app.site_name == "Example" and own.app.chrome_key == "ck"


def test_update_of_a_foreign_app_changes_nothing(api, own, outsider):
    response = api.put(f"/apps/{outsider.app.id}", {"name": "hijacked"}, key=own.user_key)
    assert response.status_code == 404
    outsider.app.refresh_from_db()
    assert outsider.app.name != "hijacked"


def test_update_with_a_bad_certificate_writes_nothing(api, own):
    response = api.put(
        f"/apps/{own.app.id}", {"name": "Renamed", "apns_p12": "bm90IGEgcDEy"}, key=own.user_key
    )
    assert response.status_code == 400
    assert "apns_p12" in response.json()["errors"][0]
    own.app.refresh_from_db()
    assert own.app.name != "Renamed" and own.app.apns_p12 is None


def test_update_rejects_wrong_types(api, own):
    response = api.put(f"/apps/{own.app.id}", {"apns_env": "staging"}, key=own.user_key)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("apns_env:")


def test_app_endpoints_refuse_app_keys_and_revoked_user_keys(api, api_root, own):
    assert api.get("/apps", key=own.app_key).status_code == 400
    assert api_root.get("/apps", key=own.app_key).status_code == 403
    assert api.get("/apps").json()["errors"][0].endswith("with a valid User Auth key.")


def test_secrets_are_encrypted_in_the_raw_row(api, own):
    from apps.vapid import vapid_key_pair

    plain_vapid, _public = vapid_key_pair()  # a VAPID key must be a real P-256 key
    api.put(
        f"/apps/{own.app.id}",
        {"gcm_key": "plain-gcm-secret", "vapid_private_key": plain_vapid},
        key=own.user_key,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT gcm_key, vapid_private_key FROM apps_app WHERE id = %s", [own.app.id])
        gcm, vapid = cursor.fetchone()
    assert gcm and "plain-gcm-secret" not in gcm and gcm.startswith("gAAAA")
    assert vapid and plain_vapid not in vapid
