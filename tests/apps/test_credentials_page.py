"""The dashboard's platform-credentials page: the API's validation, encrypted, never shown back."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.models import App, Membership
from tests.apps.test_credentials import make_p12

pytestmark = pytest.mark.django_db


def _login(client, tenant, role, username):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_app", "change_app"]))
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    client.force_login(user)
    return client


def test_uploading_a_p12_validates_it_encrypts_it_and_never_shows_it(client, own):
    browser = _login(client, own, Membership.Role.ADMIN, "creds-admin")
    p12_base64, not_after = make_p12(b"s3cret-pw")
    url = f"/admin/apps/app/{own.app.pk}/credentials/"
    response = browser.post(
        url,
        {
            "apns_p12": SimpleUploadedFile("cert.p12", base64.b64decode(p12_base64)),
            "apns_p12_password": "s3cret-pw",
            "wns_client_secret": "wns-secret-value-123",
        },
    )
    assert response.status_code == 302
    app = App.objects.get(pk=own.app.pk)
    assert app.apns_p12 == p12_base64 and app.wns_client_secret == "wns-secret-value-123"
    assert app.apns_certificate_expires_at.date() == not_after.date()
    with connection.cursor() as cursor:
        cursor.execute("SELECT apns_p12, wns_client_secret FROM apps_app WHERE id = %s", [own.app.pk])
        stored = cursor.fetchone()
    assert p12_base64 not in stored[0] and "wns-secret-value-123" not in stored[1]  # encrypted at rest
    page = browser.get(url).content.decode()
    assert "apns_p12" in page and "wns-secret-value-123" not in page and "s3cret-pw" not in page
    assert p12_base64[:40] not in page


def test_invalid_uploads_get_the_apis_error_and_change_nothing(client, own):
    browser = _login(client, own, Membership.Role.OWNER, "creds-owner")
    p12_base64, _ = make_p12(b"right")
    response = browser.post(
        f"/admin/apps/app/{own.app.pk}/credentials/",
        {
            "apns_p12": SimpleUploadedFile("cert.p12", base64.b64decode(p12_base64)),
            "apns_p12_password": "wrong",
            "fcm_v1_service_account_json": SimpleUploadedFile("sa.json", b'{"type": "service_account"}'),
        },
    )
    assert response.status_code == 200 and "readable with the given password" in response.content.decode()
    bad_json = browser.post(f"/admin/apps/app/{own.app.pk}/credentials/", {"sms_gateway": "{nope"})
    assert "Invalid JSON" in bad_json.content.decode()
    app = App.objects.get(pk=own.app.pk)
    assert app.apns_p12 is None and app.fcm_service_account_json is None and app.sms_gateway_json is None


def test_viewers_and_other_tenants_cannot_use_the_page(client, own, outsider):
    viewer = _login(client, own, Membership.Role.VIEWER, "creds-viewer")
    assert viewer.get(f"/admin/apps/app/{own.app.pk}/credentials/").status_code == 403
    client.logout()
    admin = _login(client, own, Membership.Role.ADMIN, "creds-admin2")
    assert admin.get(f"/admin/apps/app/{outsider.app.pk}/credentials/").status_code == 404
