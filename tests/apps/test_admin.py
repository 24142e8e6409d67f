"""The dashboard (Django admin): staff login, key lifecycle shown once, tenant scoping, players."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection

from apps.models import App, AppKey, Membership
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(own):
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["apps", "players"]))
    Membership.objects.create(organization=own.organization, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def browser(client, staff):
    client.force_login(staff)
    return client


def test_the_dashboard_requires_a_staff_login(client, own):
    response = client.get("/admin/apps/app/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_creating_an_app_key_shows_it_once_and_it_works(browser, own, api):
    response = browser.post("/admin/apps/appkey/add/", {"app": str(own.app.id), "label": "ci"}, follow=True)
    assert response.status_code == 200
    shown = re.search(r"<code>(hak_[A-Za-z0-9_\-]+)</code>", response.content.decode())
    assert shown, "the new key is displayed once"
    key = AppKey.objects.get(label="ci")
    assert key.digest != shown[1] and shown[1].startswith(key.prefix)
    assert api.get(f"/players?app_id={own.app.id}", key=shown[1]).status_code == 200
    listing = browser.get("/admin/apps/appkey/").content.decode()
    assert shown[1] not in listing


def test_revoking_and_rotating_keys_from_the_dashboard(browser, own, api):
    key = AppKey.objects.get(app=own.app, label="test")
    response = browser.post(
        "/admin/apps/appkey/", {"action": "rotate_keys", "_selected_action": [str(key.pk)]}, follow=True
    )
    replacement = re.search(r"<code>(hak_[A-Za-z0-9_\-]+)</code>", response.content.decode())[1]
    assert api.get(f"/players?app_id={own.app.id}", key=own.app_key).status_code == 400
    assert api.get(f"/players?app_id={own.app.id}", key=replacement).status_code == 200
    new_key = AppKey.objects.active().get(app=own.app, label="test")
    browser.post("/admin/apps/appkey/", {"action": "revoke_keys", "_selected_action": [str(new_key.pk)]})
    assert api.get(f"/players?app_id={own.app.id}", key=replacement).status_code == 400


def test_staff_see_only_their_organizations_rows(browser, own, outsider):
    PlayerFactory(app=own.app, identifier="mine-token")
    PlayerFactory(app=outsider.app, identifier="their-token")
    apps_page = browser.get("/admin/apps/app/").content.decode()
    assert own.app.name in apps_page and outsider.app.name not in apps_page
    players_page = browser.get("/admin/players/player/").content.decode()
    assert "mine-token" in players_page and "their-token" not in players_page
    form = browser.get("/admin/apps/appkey/add/").content.decode()
    assert str(outsider.app.id) not in form
    response = browser.post("/admin/apps/appkey/add/", {"app": str(outsider.app.id), "label": "steal"})
    assert response.status_code == 200 and not AppKey.objects.filter(label="steal").exists()
    assert browser.get(f"/admin/apps/app/{outsider.app.id}/change/").status_code in (302, 404)


@pytest.mark.parametrize("field", ["id", "identifier", "external_user_id"])
def test_players_are_searchable_by_id_identifier_and_external_id(browser, own, field):
    wanted = PlayerFactory(app=own.app, identifier="needle-token", external_user_id="needle-user")
    PlayerFactory(app=own.app, identifier="hay-token", external_user_id="hay-user")
    term = str(getattr(wanted, field))
    page = browser.get("/admin/players/player/", {"q": term}).content.decode()
    assert str(wanted.id) in page and "hay-token" not in page


def test_players_filter_by_device_type_subscription_language_and_country(browser, own):
    PlayerFactory(
        app=own.app, identifier="ios-es", device_type=0, language="es", country="ES", notification_types=-2
    )
    PlayerFactory(app=own.app, identifier="android-en", language="en", country="US")
    assert "ios-es" not in browser.get("/admin/players/player/", {"device_type__exact": 1}).content.decode()
    assert "android-en" not in browser.get("/admin/players/player/", {"subscribed": "no"}).content.decode()
    assert "ios-es" in browser.get("/admin/players/player/", {"language": "es"}).content.decode()
    assert "ios-es" not in browser.get("/admin/players/player/", {"country": "US"}).content.decode()
    assert browser.get("/admin/players/player/", {"q": "not-a-uuid"}).status_code == 200


def test_rotate_encryption_reencrypts_under_the_first_key(own, settings):
    old, new = settings.HERALD_ENCRYPTION_KEYS
    settings.HERALD_ENCRYPTION_KEYS = [new]
    own.app.gcm_key = "secret"
    own.app.save()
    settings.HERALD_ENCRYPTION_KEYS = [old, new]
    call_command("rotate_encryption", stdout=None)
    settings.HERALD_ENCRYPTION_KEYS = [old]
    assert App.objects.get(pk=own.app.pk).gcm_key == "secret"
    with connection.cursor() as cursor:
        cursor.execute("SELECT gcm_key FROM apps_app WHERE id = %s", [own.app.id])
        assert "secret" not in cursor.fetchone()[0]
