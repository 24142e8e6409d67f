"""OAuth tokens (§2) and the applications resource (§3.1), including the common error paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from imfpush.models import MfpApplication, Tag
from tests.imfpush.conftest import basic, request_token


def token_post(client_id, secret, **data):
    return Client().post("/mfp/api/az/v1/token", data, headers={"Authorization": basic(client_id, secret)})


def test_token_exchange_matches_mfp_shape(own, mfp_client_factory):
    client_id, secret = mfp_client_factory(own, "messages.write push.application.*")
    response = token_post(
        client_id, secret, grant_type="client_credentials", scope="messages.write push.application.com.acme"
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "messages.write push.application.com.acme"
    stored = get_access_token_model().objects.get()
    assert stored.token == "" and body["access_token"] not in stored.token_checksum  # only a hash at rest


def test_token_scope_beyond_allowance_is_invalid_scope(own, mfp_client_factory):
    client_id, secret = mfp_client_factory(own, "messages.write push.application.com.acme.*")
    refused = token_post(
        client_id,
        secret,
        grant_type="client_credentials",
        scope="messages.write devices.write push.application.com.acme.shop",
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    allowed = token_post(
        client_id,
        secret,
        grant_type="client_credentials",
        scope="messages.write push.application.com.acme.shop",
    )
    assert allowed.status_code == 200


def test_token_without_scope_gets_registered_client(own, mfp_client_factory):
    client_id, secret = mfp_client_factory(own)
    body = token_post(client_id, secret, grant_type="client_credentials").json()
    assert body["scope"] == "RegisteredClient"


@pytest.mark.parametrize(
    ("secret", "grant", "status", "error"),
    [
        ("wrong", "client_credentials", 401, "invalid_client"),
        (None, "password", 400, "unsupported_grant_type"),
        (None, "", 400, "invalid_request"),
    ],
)
def test_token_errors(own, mfp_client_factory, secret, grant, status, error):
    client_id, real = mfp_client_factory(own)
    response = token_post(client_id, secret or real, grant_type=grant, scope="apps.read")
    assert response.status_code == status and response.json()["error"] == error
    if status == 401:
        assert response["WWW-Authenticate"] == 'Basic realm="mfp"'


def test_token_accepts_form_client_credentials_and_plus_separated_scope(own, mfp_client_factory):
    client_id, secret = mfp_client_factory(own)
    response = Client().post(
        "/mfp/api/az/v1/token",
        "grant_type=client_credentials&scope=push.application.app+messages.write"
        f"&client_id={client_id}&client_secret={secret}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert set(response.json()["scope"].split()) == {"push.application.app", "messages.write"}


def test_create_list_get_status_delete_application(own, mfp, token_for):
    token = token_for(own, "apps.read apps.write push.application.*")
    created = mfp.post("apps/", {"applicationId": "testApp", "enabled": True}, token=token)
    assert created.status_code == 201
    assert created.json() == {
        "applicationId": "testApp",
        "enabled": True,
        "href": "http://testserver/imfpush/v1/apps/testApp",
    }
    assert created["Location"] == "http://testserver/imfpush/v1/apps/testApp"
    assert created["Content-Type"] == "application/json; charset=UTF-8"
    record = MfpApplication.objects.get(application_id="testApp")
    assert record.app.organization == own.organization and record.app.name == "testApp"
    assert Tag.objects.filter(app=record.app, name="Push.all").exists()

    assert mfp.post("apps", {"applicationId": "testApp"}, token=token).status_code == 409
    listed = mfp.get("apps/?expand=true&offset=0&size=10", token=token).json()
    assert listed["applications"] == [created.json()]
    assert listed["pageInfo"] == {"count": 1, "next": "", "previous": "", "totalCount": 1}
    assert mfp.get("apps", token=token).json()["applications"] == [
        {"applicationId": "testApp", "href": "http://testserver/imfpush/v1/apps/testApp"}
    ]
    assert mfp.get("apps/testApp", token=token).json()["enabled"] is True
    assert mfp.get("apps/testApp/status", token=token).json() == {"enabled": True}
    assert mfp.put("apps/testApp/status", {"enabled": "false"}, token=token).json() == {
        "applicationId": "testApp",
        "enabled": False,
    }
    assert mfp.delete("apps/testApp", token=token).status_code == 204
    assert not MfpApplication.objects.filter(application_id="testApp").exists()
    assert mfp.get("apps/testApp", token=token).status_code == 404


def test_paging_links(own, mfp, token_for):
    token = token_for(own, "apps.read apps.write push.application.*")
    for n in range(3):
        assert mfp.post("apps", {"applicationId": f"app{n}"}, token=token).status_code == 201
    first = mfp.get("apps?size=2", token=token).json()
    assert [a["applicationId"] for a in first["applications"]] == ["app0", "app1"]
    assert first["pageInfo"]["next"] == "http://testserver/imfpush/v1/apps?size=2&offset=2"
    second = Client().get(first["pageInfo"]["next"], headers={"Authorization": f"Bearer {token}"}).json()
    assert [a["applicationId"] for a in second["applications"]] == ["app2"]
    assert second["pageInfo"]["previous"].endswith("offset=0") and second["pageInfo"]["next"] == ""
    assert mfp.get("apps?offset=-1", token=token).json()["code"] == "FPWSE1079E"
    assert mfp.get("apps?size=0", token=token).json()["code"] == "FPWSE1080E"
    filtered = mfp.get("apps?filter=applicationId=@P1", token=token).json()
    assert [a["applicationId"] for a in filtered["applications"]] == ["app1"]
    assert mfp.get("apps?filter=name==x", token=token).json()["code"] == "FPWSE0007E"


def test_onesignal_app_is_addressed_by_its_uuid(own, mfp, token_for):
    token = token_for(own, "apps.read push.application.*")
    response = mfp.get(f"apps/{own.app.pk}", token=token)
    assert response.status_code == 200 and response.json()["applicationId"] == str(own.app.pk)


class TestAuthorizationFailures:
    def test_no_token(self, own, mfp):
        response = mfp.get("apps")
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
        assert response.json()["code"] == "FPWSE9001E"

    def test_bad_and_expired_token(self, own, mfp, token_for):
        assert mfp.get("apps", token="nope")["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        token = token_for(own, "apps.read push.application.*")
        get_access_token_model().objects.update(expires=timezone.now() - timedelta(seconds=1))
        expired = mfp.get("apps", token=token)
        assert expired.status_code == 401 and expired["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    def test_missing_operation_scope(self, own, mfp, token_for):
        token = token_for(own, "apps.write push.application.*")
        response = mfp.get("apps", token=token)
        assert response.status_code == 403
        assert (
            response["WWW-Authenticate"]
            == 'Bearer error="insufficient_scope", scope="apps.read push.application.*"'
        )
        assert response.json()["code"] == "FPWSE9002E"

    def test_missing_application_scope(self, own, mfp, token_for):
        admin = token_for(own, "apps.write push.application.*")
        mfp.post("apps", {"applicationId": "mine"}, token=admin)
        other_app = token_for(own, "apps.read push.application.other")
        response = mfp.get("apps/mine", token=other_app)
        assert response.status_code == 403
        assert 'scope="apps.read push.application.mine"' in response["WWW-Authenticate"]

    def test_outsider_gets_404_for_another_tenants_app(self, own, outsider, mfp, token_for):
        mfp.post("apps", {"applicationId": "mine"}, token=token_for(own, "apps.write push.application.*"))
        response = mfp.get("apps/mine", token=token_for(outsider, "apps.read push.application.*"))
        assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"
        listed = mfp.get("apps", token=token_for(outsider, "apps.read push.application.*")).json()
        assert listed["applications"] == []

    def test_narrowed_allowance_revokes_token(self, own, mfp, mfp_client_factory):
        client_id, secret = mfp_client_factory(own, "*")
        token = request_token(client_id, secret, "apps.read push.application.*")["access_token"]
        assert mfp.get("apps", token=token).status_code == 200
        from imfpush.models import ConfidentialClient

        ConfidentialClient.objects.filter(client_id=client_id).update(allowed_scope="messages.write")
        assert mfp.get("apps", token=token).status_code == 401


class TestNegotiation:
    def test_406_on_unacceptable_accept(self, own, mfp, token_for):
        token = token_for(own, "apps.read push.application.*")
        response = mfp.get("apps", token=token, headers={"Accept": "application/xml"})
        assert response.status_code == 406 and response.json()["code"] == "FPWSE9004E"
        assert mfp.get("apps", token=token, headers={"Accept": "text/html, */*;q=0.1"}).status_code == 200
        assert mfp.get("apps", token=token, headers={"Accept": "application/json;q=0"}).status_code == 406

    def test_405_on_non_json_body_and_on_wrong_method(self, own, mfp, token_for):
        token = token_for(own, "apps.write push.application.*")
        response = mfp.post("apps", data=b"applicationId=x", content_type="text/plain", token=token)
        assert response.status_code == 405 and response.json()["code"] == "FPWSE9003E"
        wrong = mfp.put("apps", {"applicationId": "x"}, token=token)
        assert wrong.status_code == 405 and wrong["Allow"] == "GET, POST"
        assert wrong.json()["code"] == "FPWSE9005E"

    def test_400_on_invalid_json(self, own, mfp, token_for):
        token = token_for(own, "apps.write push.application.*")
        response = mfp.post("apps", data=b"{nope", content_type="application/json", token=token)
        assert response.status_code == 400 and response.json()["code"] == "FPWSE0004E"

    def test_unknown_path(self, mfp):
        response = mfp.get("nothing/here")
        assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"

    @pytest.mark.parametrize(
        ("language", "expected"),
        [
            ("es-ES,es;q=0.9", "es"),
            ("de", "de"),
            ("fr-FR", "en-US"),
        ],
    )
    def test_error_messages_follow_accept_language(self, mfp, language, expected):
        english = mfp.get("apps").json()["message"]
        response = mfp.get("apps", headers={"Accept-Language": language})
        assert response["Content-Language"] == expected
        assert response.json()["code"] == "FPWSE9001E"
        if expected == "en-US":
            assert response.json()["message"] == english
        else:
            assert response.json()["message"] != english


def test_health_needs_no_token(db, mfp):
    response = mfp.get("health/status")
    assert response.status_code == 200
    assert response.json() == {"broker": "ok", "database": "ok", "status": "ok"}


def test_rate_limit_answers_429_with_retry_after(own, mfp, token_for, settings):
    settings.HERALD_RATE_LIMITS = {**settings.HERALD_RATE_LIMITS, "mfp": "2/m"}
    token = token_for(own, "apps.read push.application.*")
    assert [mfp.get("apps", token=token).status_code for _ in range(2)] == [200, 200]
    limited = mfp.get("apps", token=token)
    assert limited.status_code == 429 and limited.json()["code"] == "FPWSE9007E"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_nul_characters_are_refused_without_a_database_error(own, mfp, token_for):
    token = token_for(own, "apps.read apps.write devices.read push.application.*")
    assert mfp.get("apps/a%00b/devices", token=token).json()["code"] == "FPWSE0001E"
    response = mfp.post("apps", {"applicationId": "ok", "enabled": "tr\x00ue"}, token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert mfp.get("apps?filter=applicationId==a%00", token=token).json()["code"] == "FPWSE0007E"
