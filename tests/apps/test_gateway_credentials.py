"""SMTP, SMS gateway and WNS credentials through POST /apps and PUT /apps/{id}: validated on save,
encrypted at rest, never echoed back."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.models import App

pytestmark = pytest.mark.django_db

SMTP_PASSWORD = "smtp-pa55word-not-in-any-response"
WNS_SECRET = "Vex8L9WOFZuj95euaLrvSH7XyoDhLJc7"
SMS_API_KEY = "sms-api-key-0123456789"
SMS_GATEWAY = {
    "host": "sms.example.com",
    "port": 8443,
    "programName": "/cgi-bin/sendsms",
    "name": "TestGateway",
    "parameters": [
        {"name": "api_key", "value": SMS_API_KEY},
        {"name": "to", "value": "{phoneNumber}"},
        {"name": "text", "value": "{message}", "encode": True},
    ],
}
CHANNEL_FIELDS = {
    "smtp_host": "smtp.example.com",
    "smtp_port": 587,
    "smtp_username": "mailer",
    "smtp_password": SMTP_PASSWORD,
    "smtp_use_tls": True,
    "email_from_address": "news@example.com",
    "email_from_name": "Example News",
    "sms_gateway": SMS_GATEWAY,
    "wns_package_sid": "ms-app://S-1-15-2-2972962901-2322836549-3722629029",
    "wns_client_secret": WNS_SECRET,
}
SECRETS = (SMTP_PASSWORD, WNS_SECRET, SMS_API_KEY, "sms.example.com", "mailer", "ms-app://")


def raw_row(app_id) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password, sms_gateway_json, wns_client_secret FROM apps_app WHERE id = %s", [app_id]
        )
        columns = [c.name for c in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def test_put_stores_every_channel_credential_and_echoes_none(api, own):
    before = api.get(f"/apps/{own.app.id}", key=own.user_key).json()
    response = api.put(f"/apps/{own.app.id}", CHANNEL_FIELDS, key=own.user_key)
    assert response.status_code == 200, response.content
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text
    body = response.json()
    assert set(body) == set(before)  # the OneSignal App shape is unchanged
    assert not any(key.startswith(("smtp", "sms", "wns", "email")) for key in body)
    assert api.get(f"/apps/{own.app.id}", key=own.user_key).content.decode().count(SMTP_PASSWORD) == 0

    app = App.objects.get(pk=own.app.pk)
    assert (app.smtp_host, app.smtp_port, app.smtp_username, app.smtp_use_tls) == (
        "smtp.example.com",
        587,
        "mailer",
        True,
    )
    assert app.smtp_password == SMTP_PASSWORD
    assert (app.email_from_address, app.email_from_name) == ("news@example.com", "Example News")
    assert app.wns_package_sid == CHANNEL_FIELDS["wns_package_sid"]
    assert app.wns_client_secret == WNS_SECRET
    stored = json.loads(app.sms_gateway_json)
    assert stored["host"] == "sms.example.com" and stored["port"] == 8443
    assert stored["programName"] == "/cgi-bin/sendsms" and stored["method"] == "GET"
    assert stored["parameters"][0] == {"name": "api_key", "value": SMS_API_KEY, "encode": True}


def test_secrets_are_encrypted_in_the_raw_row(api, own):
    assert api.put(f"/apps/{own.app.id}", CHANNEL_FIELDS, key=own.user_key).status_code == 200
    row = raw_row(own.app.id)
    assert all(row.values())
    assert SMTP_PASSWORD not in row["smtp_password"]
    assert WNS_SECRET not in row["wns_client_secret"]
    for leaked in (SMS_API_KEY, "sms.example.com", "{phoneNumber}", "programName"):
        assert leaked not in row["sms_gateway_json"]


def test_post_apps_accepts_the_same_fields(api, own):
    response = api.post("/apps", {"name": "Channels", **CHANNEL_FIELDS}, key=own.user_key)
    assert response.status_code == 200, response.content
    for secret in SECRETS:
        assert secret not in response.content.decode()
    app = App.objects.get(pk=response.json()["id"])
    assert app.smtp_password == SMTP_PASSWORD and app.wns_client_secret == WNS_SECRET
    assert json.loads(app.sms_gateway_json)["parameters"][1]["value"] == "{phoneNumber}"


def test_the_sms_gateway_may_arrive_as_a_json_string(api, own):
    response = api.put(f"/apps/{own.app.id}", {"sms_gateway": json.dumps(SMS_GATEWAY)}, key=own.user_key)
    assert response.status_code == 200
    own.app.refresh_from_db()
    assert json.loads(own.app.sms_gateway_json)["host"] == "sms.example.com"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": None}, "sms_gateway.host is required"),
        ({"host": "http://sms.example.com"}, "sms_gateway.host"),
        ({"port": "80"}, "sms_gateway.port"),
        ({"port": 70000}, "sms_gateway.port"),
        ({"programName": "sendsms"}, "sms_gateway.programName"),
        ({"parameters": []}, "sms_gateway.parameters"),
        ({"parameters": [{"name": "to", "value": "{phoneNumber}"}]}, "{message}"),
        ({"parameters": [{"name": "text", "value": "{message}"}]}, "{phoneNumber}"),
        ({"parameters": [{"name": "to", "value": 5}]}, "each sms_gateway parameter"),
        ({"method": "PUT"}, "sms_gateway.method"),
        ({"hots": "typo"}, "unknown keys"),
    ],
)
def test_an_invalid_sms_gateway_is_a_400_and_changes_nothing(api, own, change, message):
    gateway = {**SMS_GATEWAY, **change}
    response = api.put(f"/apps/{own.app.id}", {"sms_gateway": gateway}, key=own.user_key)
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    own.app.refresh_from_db()
    assert own.app.sms_gateway_json is None


def test_a_non_object_sms_gateway_is_a_400(api, own):
    for value in ([1, 2], "not json", 12):
        response = api.put(f"/apps/{own.app.id}", {"sms_gateway": value}, key=own.user_key)
        assert response.status_code == 400, value


@pytest.mark.parametrize(
    "fields",
    [
        {"smtp_host": "smtp://mail.example.com"},
        {"smtp_host": "mail example.com"},
        {"smtp_port": 0},
        {"smtp_port": "many"},
        {"email_from_address": "not-an-address"},
        {"wns_package_sid": "S-1-15-2-123"},
        {"smtp_use_tls": "sometimes"},
    ],
)
def test_invalid_smtp_and_wns_fields_are_a_400(api, own, fields):
    response = api.put(f"/apps/{own.app.id}", fields, key=own.user_key)
    assert response.status_code == 400, response.content
    own.app.refresh_from_db()
    assert own.app.smtp_host is None and own.app.wns_package_sid is None


def test_a_bad_field_rolls_back_the_whole_update(api, own):
    response = api.put(
        f"/apps/{own.app.id}",
        {"smtp_password": SMTP_PASSWORD, "sms_gateway": {**SMS_GATEWAY, "programName": "x"}},
        key=own.user_key,
    )
    assert response.status_code == 400
    own.app.refresh_from_db()
    assert own.app.smtp_password is None


def test_null_or_blank_clears_and_absent_keeps(api, own):
    assert api.put(f"/apps/{own.app.id}", CHANNEL_FIELDS, key=own.user_key).status_code == 200
    response = api.put(f"/apps/{own.app.id}", {"name": "Renamed"}, key=own.user_key)
    assert response.status_code == 200
    own.app.refresh_from_db()
    assert own.app.smtp_password == SMTP_PASSWORD and own.app.sms_gateway_json
    cleared = {"smtp_host": "", "smtp_password": None, "sms_gateway": None, "wns_client_secret": ""}
    assert api.put(f"/apps/{own.app.id}", cleared, key=own.user_key).status_code == 200
    own.app.refresh_from_db()
    assert own.app.smtp_host is None and own.app.smtp_password is None
    assert own.app.sms_gateway_json is None and own.app.wns_client_secret is None
    assert own.app.wns_package_sid == CHANNEL_FIELDS["wns_package_sid"]


def test_the_app_key_cannot_set_credentials(api, own):
    response = api.put(f"/apps/{own.app.id}", {"smtp_password": SMTP_PASSWORD}, key=own.app_key)
    assert response.status_code in (400, 401, 403)
    own.app.refresh_from_db()
    assert own.app.smtp_password is None


def test_another_tenant_cannot_set_credentials(api, own, outsider):
    response = api.put(f"/apps/{own.app.id}", {"smtp_password": SMTP_PASSWORD}, key=outsider.user_key)
    assert response.status_code in (403, 404)
    own.app.refresh_from_db()
    assert own.app.smtp_password is None
