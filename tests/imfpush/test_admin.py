"""Dashboard pages for /imfpush: confidential clients (secret shown once), applicationIds, tags."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Permission
from django.test import Client

from apps.models import Membership
from imfpush.models import ConfidentialClient, MfpApplication, Tag
from imfpush.services import mfp_application_create
from tests.factories import AppFactory
from tests.imfpush.conftest import basic

pytestmark = pytest.mark.django_db

CLIENTS = "/admin/imfpush/confidentialclient/"
SECRET = re.compile(r"not be shown again: <code>([A-Za-z0-9_\-]+)</code>")


def staff_member(tenant, username: str, role=Membership.Role.ADMIN):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["apps", "imfpush"]))
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    return user


@pytest.fixture
def browser(own):
    client = Client()
    client.force_login(staff_member(own, "staff"))
    return client


def token_response(client_id: str, secret: str, scope: str = "apps.read push.application.*"):
    return Client().post(
        "/mfp/api/az/v1/token",
        {"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": basic(client_id, secret)},
    )


def add_client(browser, tenant, client_id="backend", allowed_scope="messages.write push.application.*"):
    return browser.post(
        f"{CLIENTS}add/",
        {
            "organization": str(tenant.organization.pk),
            "client_id": client_id,
            "name": "Back end",
            "allowed_scope": allowed_scope,
        },
        follow=True,
    )


def test_creating_a_client_shows_its_secret_once_and_it_works(browser, own):
    response = add_client(browser, own, allowed_scope="  messages.write\n  push.application.*  ")
    assert response.status_code == 200
    shown = SECRET.search(response.content.decode())
    assert shown, "the secret is displayed once"
    client = ConfidentialClient.objects.get(client_id="backend")
    assert (
        client.organization == own.organization
        and client.allowed_scope == "messages.write push.application.*"
    )
    assert client.client_secret != shown[1] and check_password(shown[1], client.client_secret)  # hashed
    assert token_response("backend", shown[1], "messages.write push.application.app").status_code == 200
    assert token_response("backend", shown[1], "apps.read push.application.*").status_code == 400  # beyond
    for page in (CLIENTS, f"{CLIENTS}{client.pk}/change/"):
        assert shown[1] not in browser.get(page).content.decode()


def test_rotating_a_secret_shows_the_new_one_and_the_old_one_and_its_tokens_stop_working(browser, own):
    first = SECRET.search(add_client(browser, own, allowed_scope="*").content.decode())[1]
    token = token_response("backend", first).json()["access_token"]
    client = ConfidentialClient.objects.get(client_id="backend")
    response = browser.post(
        CLIENTS, {"action": "rotate_secrets", "_selected_action": [str(client.pk)]}, follow=True
    )
    second = SECRET.search(response.content.decode())[1]
    assert second != first
    assert token_response("backend", first).status_code == 401
    assert token_response("backend", second).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert Client().get("/imfpush/v1/apps", headers=headers).status_code == 401


def test_narrowing_allowed_scope_in_the_dashboard_invalidates_tokens(browser, own):
    secret = SECRET.search(add_client(browser, own, allowed_scope="*").content.decode())[1]
    token = token_response("backend", secret).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert Client().get("/imfpush/v1/apps", headers=headers).status_code == 200
    client = ConfidentialClient.objects.get(client_id="backend")
    form = browser.get(f"{CLIENTS}{client.pk}/change/").content.decode()
    assert "Space-separated scope patterns" in form  # the help text
    response = browser.post(
        f"{CLIENTS}{client.pk}/change/",
        {"name": "Back end", "allowed_scope": "messages.write push.application.*"},
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.allowed_scope == "messages.write push.application.*" and client.client_id == "backend"
    assert Client().get("/imfpush/v1/apps", headers=headers).status_code == 401
    assert token_response("backend", secret).status_code == 400  # apps.read is no longer allowed


@pytest.mark.parametrize(
    ("client_id", "allowed_scope", "error"),
    [
        ("backend", "   ", "This field is required"),
        ("backend", "push.application.\u00e9", "Not a scope pattern"),
        ("bad id", "*", "Use 1 to 255"),
        ("bäd", "*", "Use 1 to 255"),
    ],
)
def test_client_form_validation(browser, own, client_id, allowed_scope, error):
    response = add_client(browser, own, client_id=client_id, allowed_scope=allowed_scope)
    assert error in response.content.decode()
    assert not ConfidentialClient.objects.exists()


def test_a_client_id_is_unique_across_organizations(browser, own, outsider, mfp_client_factory):
    mfp_client_factory(outsider, client_id="taken")
    response = add_client(browser, own, client_id="taken")
    assert "already exists" in response.content.decode()
    assert ConfidentialClient.objects.filter(client_id="taken").get().organization == outsider.organization


def test_staff_neither_see_nor_pick_another_organizations_clients_apps_or_tags(
    browser, own, outsider, mfp_client_factory
):
    mfp_client_factory(own, client_id="mine")
    mfp_client_factory(outsider, client_id="theirs")
    theirs = ConfidentialClient.objects.get(client_id="theirs")
    mfp_application_create(organization=own.organization, body={"applicationId": "com.own.app"})
    mfp_application_create(organization=outsider.organization, body={"applicationId": "com.their.app"})
    Tag.objects.create(app=MfpApplication.objects.get(application_id="com.own.app").app, name="OwnTag")
    Tag.objects.create(app=MfpApplication.objects.get(application_id="com.their.app").app, name="TheirTag")

    listing = browser.get(CLIENTS).content.decode()
    assert "mine" in listing and "theirs" not in listing
    assert browser.get(f"{CLIENTS}{theirs.pk}/change/").status_code in (302, 404)
    form = browser.get(f"{CLIENTS}add/").content.decode()
    assert str(outsider.organization.pk) not in form and outsider.organization.name not in form
    response = add_client(browser, outsider, client_id="planted")
    assert "Select a valid choice" in response.content.decode()
    assert not ConfidentialClient.objects.filter(client_id="planted").exists()
    browser.post(CLIENTS, {"action": "rotate_secrets", "_selected_action": [str(theirs.pk)]})
    assert token_response("theirs", "nope").status_code == 401  # unchanged; and its secret was not shown

    applications = browser.get("/admin/imfpush/mfpapplication/").content.decode()
    assert "com.own.app" in applications and "com.their.app" not in applications
    tags = browser.get("/admin/imfpush/tag/").content.decode()
    assert "OwnTag" in tags and "TheirTag" not in tags


def test_viewers_see_no_clients_and_cannot_add_one(own, mfp_client_factory):
    mfp_client_factory(own, client_id="mine")
    viewer = Client()
    viewer.force_login(staff_member(own, "viewer", role=Membership.Role.VIEWER))
    assert "mine" not in viewer.get(CLIENTS).content.decode()
    assert viewer.get(f"{CLIENTS}add/").status_code == 403
    response = viewer.post(
        f"{CLIENTS}add/",
        {"organization": str(own.organization.pk), "client_id": "x", "name": "", "allowed_scope": "*"},
    )
    assert response.status_code == 403 and not ConfidentialClient.objects.filter(client_id="x").exists()


def test_oauth_toolkit_pages_that_are_not_scoped_are_not_served(browser, superuser_browser):
    for path in ("/admin/oauth2_provider/accesstoken/", "/admin/oauth2_provider/grant/"):
        assert superuser_browser.get(path).status_code == 404
    assert superuser_browser.get(CLIENTS).status_code == 200


@pytest.fixture
def superuser_browser(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))
    return client


def test_giving_an_app_a_mobilefirst_application_id(browser, own, outsider, mfp, token_for):
    second = AppFactory(organization=own.organization)
    form = browser.get("/admin/imfpush/mfpapplication/add/").content.decode()
    assert str(second.pk) in form and str(outsider.app.pk) not in form
    response = browser.post(
        "/admin/imfpush/mfpapplication/add/",
        {"app": str(second.pk), "application_id": "com.acme.shop", "enabled": "on"},
    )
    assert response.status_code == 302
    record = MfpApplication.objects.get(app=second)
    assert record.application_id == "com.acme.shop" and record.organization == own.organization
    assert Tag.objects.filter(app=second, name="Push.all").exists()
    got = mfp.get("apps/com.acme.shop", token=token_for(own, "apps.read push.application.com.acme.shop"))
    assert got.status_code == 200 and got.json()["enabled"] is True

    duplicate = browser.post(
        "/admin/imfpush/mfpapplication/add/", {"app": str(own.app.pk), "application_id": "com.acme.shop"}
    )
    assert "Another app of the organization uses this id." in duplicate.content.decode()
    planted = browser.post(
        "/admin/imfpush/mfpapplication/add/", {"app": str(outsider.app.pk), "application_id": "planted"}
    )
    assert planted.status_code == 200 and not MfpApplication.objects.filter(application_id="planted").exists()

    browser.post(f"/admin/imfpush/mfpapplication/{second.pk}/change/", {})  # enabled unticked
    record.refresh_from_db()
    assert record.enabled is False and record.application_id == "com.acme.shop"


def test_tags_are_read_only(browser, own):
    record = mfp_application_create(organization=own.organization, body={"applicationId": "com.own.app"})
    tag = Tag.objects.get(app=record.app, name="Push.all")
    assert browser.get("/admin/imfpush/tag/add/").status_code == 403
    page = browser.get(f"/admin/imfpush/tag/{tag.pk}/change/")
    assert page.status_code == 200 and 'name="description"' not in page.content.decode()
    assert browser.post(f"/admin/imfpush/tag/{tag.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Tag.objects.filter(pk=tag.pk).exists()
