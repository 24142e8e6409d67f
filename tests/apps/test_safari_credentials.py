"""The Safari certificate through PUT /apps/{id}: a Website Push ID certificate is required, its id
becomes the read-only ``safari_push_id`` (legacy Safari's apns-topic), and the certificate and its
password are encrypted at rest and never echoed back."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.db import connection

from apps.models import App
from tests.apps.test_credentials import make_p12

pytestmark = pytest.mark.django_db

WEBSITE_PUSH_ID = "web.com.example.news"
PASSWORD = "safari-cert-password"


def safari_fields(uid: str | None = WEBSITE_PUSH_ID, password: str = PASSWORD) -> dict:
    p12, _expires = make_p12(password.encode(), uid=uid)
    return {"safari_apns_p12": p12, "safari_apns_p12_password": password}


def test_a_website_push_certificate_sets_safari_push_id_and_is_never_echoed(api, own):
    fields = safari_fields()

    response = api.put(f"/apps/{own.app.id}", fields, key=own.user_key)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["safari_push_id"] == WEBSITE_PUSH_ID
    assert f"UID={WEBSITE_PUSH_ID}" in body["safari_apns_certificates"]  # the subject, never key material
    text = response.content.decode()
    assert fields["safari_apns_p12"] not in text and PASSWORD not in text
    assert api.get(f"/apps/{own.app.id}", key=own.user_key).json()["safari_push_id"] == WEBSITE_PUSH_ID
    app = App.objects.get(pk=own.app.pk)
    assert (app.safari_push_id, app.safari_apns_p12) == (WEBSITE_PUSH_ID, fields["safari_apns_p12"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT safari_apns_p12, safari_apns_p12_password FROM apps_app WHERE id = %s", [own.app.id]
        )
        raw_p12, raw_password = cursor.fetchone()
    assert fields["safari_apns_p12"] not in raw_p12 and PASSWORD not in raw_password


@pytest.mark.parametrize("uid", [None, "com.example.news"])
def test_a_certificate_without_a_website_push_id_is_a_400_and_changes_nothing(api, own, uid):
    response = api.put(f"/apps/{own.app.id}", {**safari_fields(uid), "name": "Renamed"}, key=own.user_key)

    assert response.status_code == 400
    assert "safari_apns_p12 must be a Website Push ID certificate" in response.json()["errors"][0]
    app = App.objects.get(pk=own.app.pk)
    assert (app.name, app.safari_apns_p12, app.safari_push_id) == (own.app.name, None, None)


def test_the_wrong_password_is_a_400(api, own):
    fields = {**safari_fields(), "safari_apns_p12_password": "nope"}

    response = api.put(f"/apps/{own.app.id}", fields, key=own.user_key)

    assert response.status_code == 400 and "nope" not in response.content.decode()
    assert App.objects.get(pk=own.app.pk).safari_apns_p12 is None


def test_safari_push_id_is_read_only(api, own):
    response = api.put(f"/apps/{own.app.id}", {"safari_push_id": "web.com.evil"}, key=own.user_key)

    assert response.status_code in (200, 400)
    assert App.objects.get(pk=own.app.pk).safari_push_id is None


def test_the_app_key_and_an_outsider_can_neither_set_nor_see_it(api, own, outsider):
    assert api.put(f"/apps/{own.app.id}", safari_fields(), key=own.user_key).status_code == 200

    other = safari_fields("web.com.example.outsider")
    assert api.put(f"/apps/{own.app.id}", other, key=own.app_key).status_code in (400, 401, 403)
    assert api.put(f"/apps/{own.app.id}", other, key=outsider.user_key).status_code in (403, 404)
    seen = api.get(f"/apps/{own.app.id}", key=outsider.user_key)
    assert seen.status_code in (403, 404) and WEBSITE_PUSH_ID not in seen.content.decode()
    listed = api.get("/apps", key=outsider.user_key)
    assert listed.status_code == 200 and WEBSITE_PUSH_ID not in listed.content.decode()
    assert App.objects.get(pk=own.app.pk).safari_push_id == WEBSITE_PUSH_ID


def test_the_migration_reads_existing_apps_website_push_ids_from_their_subjects(own, outsider):
    App.objects.filter(pk=own.app.pk).update(
        safari_apns_certificate_subject=f"UID={WEBSITE_PUSH_ID},CN=Website Push ID: {WEBSITE_PUSH_ID}"
    )
    App.objects.filter(pk=outsider.app.pk).update(safari_apns_certificate_subject="CN=No UID here")
    migration = import_module("apps.migrations.0004_safari_push_id")

    migration.website_push_ids_from_subjects(django_apps, None)

    assert App.objects.get(pk=own.app.pk).safari_push_id == WEBSITE_PUSH_ID
    assert App.objects.get(pk=outsider.app.pk).safari_push_id is None
