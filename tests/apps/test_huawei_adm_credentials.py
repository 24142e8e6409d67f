"""Huawei Push Kit and ADM credentials through PUT /apps/{id}, POST /apps and the dashboard: validated,
encrypted at rest, never echoed back."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection

from apps.models import App, Membership

pytestmark = pytest.mark.django_db

HUAWEI_SECRET = "f3a1c0de9b8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e"
ADM_SECRET = "amzn1.oa2-cs.v1.0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
FIELDS = {
    "huawei_app_id": "104421234",
    "huawei_app_secret": HUAWEI_SECRET,
    "adm_client_id": "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef",
    "adm_client_secret": ADM_SECRET,
}


def raw_row(app_id) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT huawei_app_secret, adm_client_secret FROM apps_app WHERE id = %s", [app_id])
        columns = [c.name for c in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def test_put_stores_the_credentials_and_echoes_none(api, own):
    before = api.get(f"/apps/{own.app.id}", key=own.user_key).json()
    response = api.put(f"/apps/{own.app.id}", FIELDS, key=own.user_key)
    assert response.status_code == 200, response.content
    text = response.content.decode()
    for value in FIELDS.values():
        assert value not in text
    assert set(response.json()) == set(before)  # OneSignal's App shape is unchanged
    assert HUAWEI_SECRET not in api.get(f"/apps/{own.app.id}", key=own.user_key).content.decode()
    app = App.objects.get(pk=own.app.pk)
    assert (app.huawei_app_id, app.huawei_app_secret) == ("104421234", HUAWEI_SECRET)
    assert (app.adm_client_id, app.adm_client_secret) == (FIELDS["adm_client_id"], ADM_SECRET)


def test_the_secrets_are_encrypted_in_the_raw_row(api, own):
    assert api.put(f"/apps/{own.app.id}", FIELDS, key=own.user_key).status_code == 200
    row = raw_row(own.app.id)
    assert row["huawei_app_secret"] and HUAWEI_SECRET not in row["huawei_app_secret"]
    assert row["adm_client_secret"] and ADM_SECRET not in row["adm_client_secret"]


def test_post_apps_accepts_them_too(api, own):
    response = api.post("/apps", {"name": "Fire and Huawei", **FIELDS}, key=own.user_key)
    assert response.status_code == 200, response.content
    assert HUAWEI_SECRET not in response.content.decode() and ADM_SECRET not in response.content.decode()
    app = App.objects.get(pk=response.json()["id"])
    assert app.huawei_app_secret == HUAWEI_SECRET and app.adm_client_secret == ADM_SECRET


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"huawei_app_id": "com.example.app"}, "huawei_app_id must be the App ID"),
        ({"huawei_app_id": "12 34"}, "huawei_app_id must be the App ID"),
        ({"huawei_app_id": "1" * 33}, "huawei_app_id"),
        ({"adm_client_id": "my-client"}, "adm_client_id must be a Login with Amazon client ID"),
        ({"adm_client_id": "amzn1.application-oa2-client.ab/../x"}, "adm_client_id"),
        ({"huawei_app_secret": "has a space"}, "huawei_app_secret must be the client secret"),
        ({"adm_client_secret": "x" * 513}, "adm_client_secret must be the client secret"),
        ({"adm_client_secret": "tab\there"}, "adm_client_secret"),
    ],
)
def test_invalid_values_are_a_400_and_change_nothing(api, own, fields, message):
    response = api.put(f"/apps/{own.app.id}", {**fields, "name": "Renamed"}, key=own.user_key)
    assert response.status_code == 400, response.content
    assert message in response.json()["errors"][0]
    for name, value in fields.items():
        if "secret" in name:
            assert value not in response.content.decode()  # a refused secret is not echoed either
    own.app.refresh_from_db()
    assert own.app.name != "Renamed"
    assert (own.app.huawei_app_id, own.app.huawei_app_secret, own.app.adm_client_id) == (None, None, None)


def test_null_or_blank_clears_and_absent_keeps(api, own):
    assert api.put(f"/apps/{own.app.id}", FIELDS, key=own.user_key).status_code == 200
    assert api.put(f"/apps/{own.app.id}", {"name": "Renamed"}, key=own.user_key).status_code == 200
    own.app.refresh_from_db()
    assert own.app.huawei_app_secret == HUAWEI_SECRET and own.app.adm_client_secret == ADM_SECRET
    cleared = {"huawei_app_id": "", "huawei_app_secret": None, "adm_client_secret": ""}
    assert api.put(f"/apps/{own.app.id}", cleared, key=own.user_key).status_code == 200
    own.app.refresh_from_db()
    assert own.app.huawei_app_id is None and own.app.huawei_app_secret is None
    assert own.app.adm_client_secret is None and own.app.adm_client_id == FIELDS["adm_client_id"]


def test_the_app_key_and_an_outsider_cannot_set_them(api, own, outsider):
    assert api.put(f"/apps/{own.app.id}", FIELDS, key=own.app_key).status_code in (400, 401, 403)
    assert api.put(f"/apps/{own.app.id}", FIELDS, key=outsider.user_key).status_code in (403, 404)
    own.app.refresh_from_db()
    assert own.app.huawei_app_secret is None and own.app.adm_client_secret is None


# --- the dashboard --------------------------------------------------------------------------------


@pytest.fixture
def browser(client, own):
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="apps"))
    Membership.objects.create(organization=own.organization, user=user, role=Membership.Role.ADMIN)
    client.force_login(user)
    return client


def change_form(browser, app: App, **changes) -> dict:
    """The change form's current values (as the browser would post them back), with ``changes``."""
    response = browser.get(f"/admin/apps/app/{app.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = getattr(value, "pk", value)
    for prefix in ("keys",):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(changes)
    return data


def test_the_dashboard_sets_them_write_only_and_validates(browser, own):
    own.app.huawei_app_secret = HUAWEI_SECRET
    own.app.save()
    page = browser.get(f"/admin/apps/app/{own.app.pk}/change/").content.decode()
    assert 'name="huawei_app_secret"' in page and 'name="adm_client_secret"' in page
    assert HUAWEI_SECRET not in page

    refused = browser.post(
        f"/admin/apps/app/{own.app.pk}/change/", change_form(browser, own.app, huawei_app_id="not-digits")
    )
    assert refused.status_code == 200 and "huawei_app_id must be the App ID" in refused.content.decode()

    saved = browser.post(
        f"/admin/apps/app/{own.app.pk}/change/",
        change_form(
            browser,
            own.app,
            huawei_app_id="104421234",
            adm_client_id=FIELDS["adm_client_id"],
            adm_client_secret=ADM_SECRET,
        ),
    )
    assert saved.status_code == 302, saved.content.decode()[:3000]
    own.app.refresh_from_db()
    assert own.app.huawei_app_id == "104421234" and own.app.adm_client_id == FIELDS["adm_client_id"]
    assert own.app.adm_client_secret == ADM_SECRET
    assert own.app.huawei_app_secret == HUAWEI_SECRET  # left blank: kept
    page = browser.get(f"/admin/apps/app/{own.app.pk}/change/").content.decode()
    assert ADM_SECRET not in page and HUAWEI_SECRET not in page
    assert "adm_client_secret" in page and "huawei_app_secret" in page
