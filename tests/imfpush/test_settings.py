"""Settings (mobilefirst-push-api.md §3.2): one credential store seen by both APIs."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs12
from django.test import Client

from core import ssrf
from imfpush.models import MfpApplication
from imfpush.services import mfp_application_create
from notifications.providers.sms import SmsProvider, build_query
from tests.apps.test_credentials import make_p12
from tests.imfpush.support import APP_ID as SUPPORT_APP
from tests.imfpush.support import Endpoint, check_common_failures, expire_latest_token, mfp_app

pytestmark = pytest.mark.django_db

APP_ID = "testApp"
BASE = f"apps/{APP_ID}/settings"
PUBLIC_ADDRESSES = {
    "xyz.com": "93.184.216.34",
    "sms.example.com": "93.184.216.35",
    "intranet.example": "10.0.0.7",
}
SMS_EXAMPLE = {
    "host": "xyz.com",
    "name": "TestGateway",
    "parameters": [{"encode": "true", "name": "TestKey", "value": "TestValue"}],
    "port": "80",
    "programName": "/sendsms",
}


@pytest.fixture(autouse=True)
def _dns(monkeypatch, settings):
    """Resolve the test host names without a network."""
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    ssrf.clear_dns_cache()

    def resolve(host, port, *args, **kwargs):
        if host not in PUBLIC_ADDRESSES:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESSES[host], port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", resolve)


@pytest.fixture
def record(own) -> MfpApplication:
    return mfp_application_create(organization=own.organization, body={"applicationId": APP_ID})


def token(token_for, own, scope: str) -> str:
    return token_for(own, f"{scope} push.application.{APP_ID}")


def p12_file(password: bytes = b"pw"):
    """A .p12 (certificate and key) made by the OneSignal credential tests; b"" for no password."""
    encoded, not_after = make_p12(password or b"pw")
    blob = base64.b64decode(encoded)
    if not password:
        key, cert, _chain = pkcs12.load_key_and_certificates(blob, b"pw")
        blob = pkcs12.serialize_key_and_certificates(b"apns", key, cert, None, NoEncryption())
    return blob, not_after


def put_certificate(
    token_value: str,
    blob: bytes,
    *,
    password="pw",  # noqa: S107
    sandbox="true",
    name="apns-certificate.p12",
):
    upload = {"certificate": _Upload(name, blob), "password": password, "isSandBox": sandbox}
    return Client().put(
        f"/imfpush/v1/{BASE}/apnsConf",
        data=_multipart(upload),
        content_type="multipart/form-data; boundary=BoUnDaRy",
        headers={"Authorization": f"Bearer {token_value}"},
    )


class _Upload:
    def __init__(self, name: str, content: bytes):
        self.name, self.content = name, content


def _multipart(fields: dict) -> bytes:
    """A multipart/form-data body as the Go SDK sends it (PUT, so the test client cannot encode it)."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, _Upload):
            head = (
                f'Content-Disposition: form-data; name="{key}"; filename="{value.name}"\r\n'
                "Content-Type: application/x-pkcs12\r\n\r\n"
            )
            parts.append(b"--BoUnDaRy\r\n" + head.encode() + value.content + b"\r\n")
        else:
            head = f'Content-Disposition: form-data; name="{key}"\r\n\r\n'
            parts.append(b"--BoUnDaRy\r\n" + head.encode() + str(value).encode() + b"\r\n")
    return b"".join(parts) + b"--BoUnDaRy--\r\n"


# --- GET settings -------------------------------------------------------------------------------


def test_settings_links_are_always_present(record, mfp, token_for, own):
    response = mfp.get(BASE, token=token(token_for, own, "settings.read"))
    assert response.status_code == 200
    base = f"http://testserver/imfpush/v1/{BASE}"
    assert response.json() == {
        "apnsConf": f"{base}/apnsConf",
        "applicationId": APP_ID,
        "gcmConf": f"{base}/gcmConf",
        "mode": "PRODUCTION",
        "smsConf": f"{base}/smsConf",
        "wnsConf": f"{base}/wnsConf",
    }


# --- APNs -----------------------------------------------------------------------------------------


def test_apns_certificate_upload_is_the_onesignal_apps_certificate(record, mfp, token_for, own, api):
    blob, not_after = p12_file()
    write = token(token_for, own, "apnsConf.write")
    response = put_certificate(write, blob)
    assert response.status_code == 200, response.content
    expected = {
        "certificate": "apns-certificate.p12",
        "isSandBox": True,
        "validUntil": "2031-01-02T03:04:05.000Z",
    }
    assert response.json() == expected
    assert b"pw" not in response.content and response["Content-Type"] == "application/json; charset=UTF-8"

    record.app.refresh_from_db()
    assert base64.b64decode(record.app.apns_p12) == blob and record.app.apns_p12_password == "pw"
    assert record.app.apns_env == "sandbox" and record.app.apns_certificate_expires_at == not_after
    onesignal = api.get(f"/apps/{record.app.id}", key=own.user_key).json()
    assert "com.example.app" in onesignal["apns_certificates"]

    read = token(token_for, own, "apnsConf.read")
    assert mfp.get(f"{BASE}/apnsConf", token=read).json() == expected

    # The same store seen from the other side: a p12 replaced through the OneSignal API keeps its
    # expiry visible here but loses the file name it was never given.
    other, _ = make_p12(b"other")
    assert (
        api.put(
            f"/apps/{record.app.id}", {"apns_p12": other, "apns_p12_password": "other"}, key=own.user_key
        ).status_code
        == 200
    )
    replaced = mfp.get(f"{BASE}/apnsConf", token=read).json()
    assert "certificate" not in replaced and replaced["validUntil"] == "2031-01-02T03:04:05.000Z"


def test_apns_certificate_replaces_a_token_key_and_production_is_the_default(record, mfp, token_for, own):
    record.app.apns_p8, record.app.apns_key_id, record.app.apns_team_id = (
        "-----BEGIN PRIVATE KEY-----",
        "K",
        "T",
    )
    record.app.save()
    read = token(token_for, own, "apnsConf.read")
    only_key = mfp.get(f"{BASE}/apnsConf", token=read)
    assert only_key.status_code == 404 and only_key.json()["code"] == "FPWSE0003E"
    blob, _ = p12_file(b"")
    response = put_certificate(
        token(token_for, own, "apnsConf.write"), blob, password="", sandbox="", name="prod.p12"
    )
    assert response.status_code == 200, response.content
    assert response.json()["isSandBox"] is False and response.json()["certificate"] == "prod.p12"
    record.app.refresh_from_db()
    assert (
        record.app.apns_p8 is None and record.app.apns_key_id is None and record.app.apns_env == "production"
    )


@pytest.mark.parametrize(
    ("password", "blob", "reason"),
    [("wrong", None, "password"), ("pw", b"not a p12", "PKCS#12"), ("pw", b"", "required")],
)
def test_apns_certificate_that_cannot_be_opened_is_a_400(record, token_for, own, password, blob, reason):
    good, _ = p12_file()
    write = token(token_for, own, "apnsConf.write")
    if blob == b"":
        response = Client().put(
            f"/imfpush/v1/{BASE}/apnsConf",
            data=_multipart({"password": "pw"}),
            content_type="multipart/form-data; boundary=BoUnDaRy",
            headers={"Authorization": f"Bearer {write}"},
        )
    else:
        response = put_certificate(write, good if blob is None else blob, password=password)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert reason in response.json()["message"]
    record.app.refresh_from_db()
    assert record.app.apns_p12 is None


def test_apns_conf_put_takes_multipart_only(record, mfp, token_for, own):
    write = token(token_for, own, "apnsConf.write")
    response = mfp.put(f"{BASE}/apnsConf", {"certificate": "x"}, token=write)
    assert response.status_code == 405 and response.json()["code"] == "FPWSE9003E"
    garbled = Client().put(
        f"/imfpush/v1/{BASE}/apnsConf",
        data=b"--x\r\nnonsense",
        content_type="multipart/form-data; boundary=BoUnDaRy",
        headers={"Authorization": f"Bearer {write}"},
    )
    assert garbled.status_code == 400 and garbled.json()["code"] == "FPWSE0005E"


def test_apns_cert_is_the_public_certificate_in_der(record, mfp, token_for, own):
    blob, _ = p12_file()
    cert_token = token(token_for, own, "apnsCert.read")
    missing = mfp.get(f"{BASE}/apnsCert", token=cert_token)
    assert missing.status_code == 404 and missing.json()["code"] == "FPWSE0003E"
    put_certificate(token(token_for, own, "apnsConf.write"), blob)
    response = mfp.get(f"{BASE}/apnsCert", token=cert_token, headers={"Accept": "application/octet-stream"})
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    _key, certificate, _chain = pkcs12.load_key_and_certificates(blob, b"pw")
    assert response.content == certificate.public_bytes(Encoding.DER)
    assert b"PRIVATE" not in response.content
    json_only = mfp.get(f"{BASE}/apnsCert", token=cert_token, headers={"Accept": "application/json"})
    assert json_only.status_code == 406 and json_only.json()["code"] == "FPWSE9004E"


def test_apns_conf_delete_is_idempotent(record, mfp, token_for, own):
    blob, _ = p12_file()
    write = token(token_for, own, "apnsConf.write")
    put_certificate(write, blob)
    assert mfp.delete(f"{BASE}/apnsConf", token=write).status_code == 204
    assert mfp.delete(f"{BASE}/apnsConf", token=write).status_code == 204
    record.app.refresh_from_db()
    assert record.app.apns_p12 is None and record.app.apns_certificate_expires_at is None
    assert mfp.get(f"{BASE}/apnsConf", token=token(token_for, own, "apnsConf.read")).status_code == 404


# --- GCM / FCM ------------------------------------------------------------------------------------


def service_account() -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    return {
        "type": "service_account",
        "project_id": "push-project",
        "client_email": "sa@push-project.iam",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_gcm_conf_round_trip_with_redacted_key(record, mfp, token_for, own, api):
    write = token(token_for, own, "gcmConf.write")
    response = mfp.put(f"{BASE}/gcmConf", {"apiKey": "AxBNGYUwehjokn", "senderId": "123456789"}, token=write)
    assert response.status_code == 200
    assert response.json() == {"apiKey": "****jokn", "senderId": "123456789"}
    record.app.refresh_from_db()
    assert record.app.gcm_key == "AxBNGYUwehjokn" and record.app.android_gcm_sender_id == "123456789"
    assert api.get(f"/apps/{record.app.id}", key=own.user_key).json()["android_gcm_sender_id"] == "123456789"

    read = mfp.get(f"{BASE}/gcmConf", token=token(token_for, own, "gcmConf.read"))
    assert read.json() == {"apiKey": "****jokn", "senderId": "123456789"}
    assert b"AxBNGY" not in read.content
    public = mfp.get(f"{BASE}/gcmConfPublic", token=token(token_for, own, "gcmConfPublic.read"))
    assert public.json() == {"senderId": "123456789"}
    device = mfp.get(f"{BASE}/gcmConfPublic", token=token(token_for, own, "push.mobileclient"))
    assert device.status_code == 200


def test_gcm_service_account_configures_fcm_v1(record, mfp, token_for, own):
    account = service_account()
    response = mfp.put(
        f"{BASE}/gcmConf",
        {"senderId": 42, "serviceAccount": account},
        token=token(token_for, own, "gcmConf.write"),
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"projectId": "push-project", "senderId": "42"}
    assert b"PRIVATE" not in response.content
    record.app.refresh_from_db()
    assert record.app.fcm_project_id == "push-project"
    assert json.loads(record.app.fcm_service_account_json)["client_email"] == "sa@push-project.iam"


def test_gcm_conf_put_accepts_the_apns_alias_scope_but_delete_does_not(record, mfp, token_for, own):
    alias = token(token_for, own, "apnsConf.write")
    assert mfp.put(f"{BASE}/gcmConf", {"apiKey": "short", "senderId": "1"}, token=alias).json() == {
        "apiKey": "****",
        "senderId": "1",
    }
    refused = mfp.delete(f"{BASE}/gcmConf", token=alias)
    assert (
        refused.status_code == 403
        and 'scope="gcmConf.write push.application.testApp"' in refused["WWW-Authenticate"]
    )


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"apiKey": "abc"}, "senderId"),
        ({"senderId": "1"}, "apiKey"),
        ({"senderId": "1", "serviceAccount": {"project_id": "x"}}, "serviceAccount"),
        ({"senderId": "1", "apiKey": "has space"}, "apiKey"),
        ({"senderId": ["1"], "apiKey": "abc"}, "senderId"),
    ],
)
def test_gcm_conf_put_validation(record, mfp, token_for, own, body, name):
    response = mfp.put(f"{BASE}/gcmConf", body, token=token(token_for, own, "gcmConf.write"))
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert name in response.json()["message"]
    record.app.refresh_from_db()
    assert record.app.gcm_key is None and record.app.android_gcm_sender_id is None


def test_gcm_conf_invalid_json_and_wrong_content_type(record, mfp, token_for, own):
    write = token(token_for, own, "gcmConf.write")
    invalid = mfp.put(f"{BASE}/gcmConf", data=b"{", content_type="application/json", token=write)
    assert invalid.status_code == 400 and invalid.json()["code"] == "FPWSE0004E"
    array = mfp.put(f"{BASE}/gcmConf", ["senderId"], token=write)
    assert array.status_code == 400 and array.json()["code"] == "FPWSE0004E"
    text = mfp.put(f"{BASE}/gcmConf", data=b"senderId=1", content_type="text/plain", token=write)
    assert text.status_code == 405 and text.json()["code"] == "FPWSE9003E"


def test_gcm_conf_delete_and_404(record, mfp, token_for, own):
    write = token(token_for, own, "gcmConf.write")
    mfp.put(f"{BASE}/gcmConf", {"senderId": "1", "serviceAccount": service_account()}, token=write)
    assert mfp.delete(f"{BASE}/gcmConf", token=write).status_code == 204
    record.app.refresh_from_db()
    assert record.app.fcm_service_account_json is None and record.app.android_gcm_sender_id is None
    for path, scope in (("gcmConf", "gcmConf.read"), ("gcmConfPublic", "gcmConfPublic.read")):
        response = mfp.get(f"{BASE}/{path}", token=token(token_for, own, scope))
        assert response.status_code == 404 and response.json()["code"] == "FPWSE0003E"
    assert mfp.delete(f"{BASE}/gcmConf", token=write).status_code == 204


# --- WNS ------------------------------------------------------------------------------------------

WNS = {
    "clientSecret": "Vex8L9WOFZuj95euaLrvSH7XyoDhLJc7",
    "packageSID": "ms-app://S-1-15-2-2972962901-2322836549-3722629029-1345238579-3987825745-2155616079-650196962",
}


def test_wns_conf_round_trip(record, mfp, token_for, own):
    write = token(token_for, own, "wnsConf.write")
    response = mfp.put(f"{BASE}/wnsConf", WNS, token=write)
    assert response.status_code == 200
    assert response.json() == {"clientSecret": "****LJc7", "packageSID": WNS["packageSID"]}
    record.app.refresh_from_db()
    assert (
        record.app.wns_client_secret == WNS["clientSecret"]
        and record.app.wns_package_sid == WNS["packageSID"]
    )
    read = token(token_for, own, "wnsConf.read")
    assert mfp.get(f"{BASE}/wnsConf", token=read).json() == response.json()
    assert mfp.delete(f"{BASE}/wnsConf", token=write).status_code == 204
    record.app.refresh_from_db()
    assert record.app.wns_client_secret is None and record.app.wns_package_sid is None
    assert mfp.get(f"{BASE}/wnsConf", token=read).json()["code"] == "FPWSE0003E"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"clientSecret": "abc"}, "packageSID"),
        ({"packageSID": WNS["packageSID"]}, "clientSecret"),
        ({**WNS, "packageSID": "S-1-15-2-1"}, "packageSID"),
    ],
)
def test_wns_conf_validation(record, mfp, token_for, own, body, name):
    response = mfp.put(f"{BASE}/wnsConf", body, token=token(token_for, own, "wnsConf.write"))
    assert response.status_code == 400 and name in response.json()["message"]
    record.app.refresh_from_db()
    assert record.app.wns_client_secret is None


# --- SMS ------------------------------------------------------------------------------------------


def test_sms_conf_round_trip_matches_the_mfp_example(record, mfp, token_for, own):
    write = token(token_for, own, "smsConf.write")
    response = mfp.put(f"{BASE}/smsConf", SMS_EXAMPLE, token=write)
    assert response.status_code == 200, response.content
    expected = {
        "host": "xyz.com",
        "name": "TestGateway",
        # A parameter named like a credential is redacted like apiKey (Herald policy, §3.2).
        "parameters": [{"encode": True, "name": "TestKey", "value": "****"}],
        "port": 80,
        "programName": "/sendsms",
    }
    assert response.json() == expected
    assert mfp.get(f"{BASE}/smsConf", token=token(token_for, own, "smsConf.read")).json() == expected

    # The SMS provider reads the same row: GET http://xyz.com:80/sendsms?TestKey=TestValue&to=…&text=…
    record.app.refresh_from_db()
    provider = SmsProvider(record.app)
    assert provider.url == "http://xyz.com:80/sendsms" and provider.method == "GET"
    query = build_query(provider.config, {"phoneNumber": "+15551234567", "message": "Hello & bye"})
    assert query == "TestKey=TestValue&to=%2B15551234567&text=Hello%20%26%20bye"


def test_sms_conf_never_echoes_credential_parameters(record, mfp, token_for, own):
    write = token(token_for, own, "smsConf.write")
    secret = "gw-api-key-0123456789abcdef"
    body = {
        **SMS_EXAMPLE,
        "parameters": [{"name": "apiKey", "value": secret}, {"name": "from", "value": "Herald"}],
    }
    shown = mfp.put(f"{BASE}/smsConf", body, token=write).json()
    assert shown["parameters"][0]["value"] == "****cdef" and secret not in str(shown)
    assert shown["parameters"][1]["value"] == "Herald"
    # GET, change another field, PUT back what GET showed: the stored secret is kept.
    shown["parameters"][1]["value"] = "Acme"
    assert mfp.put(f"{BASE}/smsConf", shown, token=write).status_code == 200
    record.app.refresh_from_db()
    stored = SmsProvider(record.app).config["parameters"]
    assert [p["value"] for p in stored] == [secret, "Acme"]


def test_sms_conf_encode_false_port_443_and_placeholders(record, mfp, token_for, own):
    body = {
        "host": "sms.example.com",
        "port": 443,
        "programName": "/api/send",
        "parameters": [
            {"name": "key", "value": "a b", "encode": False},
            {"name": "msg", "value": "{message}", "encode": True},
        ],
    }
    assert mfp.put(f"{BASE}/smsConf", body, token=token(token_for, own, "smsConf.write")).status_code == 200
    record.app.refresh_from_db()
    provider = SmsProvider(record.app)
    assert provider.url == "https://sms.example.com:443/api/send"
    query = build_query(provider.config, {"phoneNumber": "+1555", "message": "hi there"})
    assert query == "key=a b&msg=hi%20there&to=%2B1555"


def test_a_onesignal_sms_gateway_is_shown_as_sms_conf(record, mfp, token_for, own, api):
    gateway = {
        "host": "sms.example.com",
        "port": 8080,
        "programName": "/send",
        "method": "POST",
        "parameters": [{"name": "to", "value": "{phoneNumber}"}, {"name": "text", "value": "{message}"}],
    }
    assert api.put(f"/apps/{record.app.id}", {"sms_gateway": gateway}, key=own.user_key).status_code == 200
    shown = mfp.get(f"{BASE}/smsConf", token=token(token_for, own, "smsConf.read")).json()
    assert shown == {
        "host": "sms.example.com",
        "parameters": [
            {"encode": True, "name": "to", "value": "{phoneNumber}"},
            {"encode": True, "name": "text", "value": "{message}"},
        ],
        "port": 8080,
        "programName": "/send",
    }


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"host": "127.0.0.1"}, "host"),
        ({"host": "intranet.example"}, "host"),
        ({"host": "http://xyz.com/"}, "host"),
        ({"port": 0}, "port"),
        ({"port": "eighty"}, "port"),
        ({"programName": "sendsms"}, "programName"),
        ({"parameters": [{"value": "x"}]}, "parameters[0].name"),
        ({"parameters": [{"name": "a", "value": "x", "encode": "maybe"}]}, "parameters[0].encode"),
        ({"parameters": "a=b"}, "parameters"),
        ({"host": None}, "host"),
    ],
)
def test_sms_conf_validation_and_ssrf(record, mfp, token_for, own, change, name):
    response = mfp.put(
        f"{BASE}/smsConf", {**SMS_EXAMPLE, **change}, token=token(token_for, own, "smsConf.write")
    )
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert name in response.json()["message"]
    record.app.refresh_from_db()
    assert record.app.sms_gateway_json is None


def test_sms_conf_private_gateway_allowed_when_the_deployment_allows_it(
    record, mfp, token_for, own, settings
):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    body = {**SMS_EXAMPLE, "host": "127.0.0.1", "port": 9105}
    assert mfp.put(f"{BASE}/smsConf", body, token=token(token_for, own, "smsConf.write")).status_code == 200


def test_sms_conf_delete(record, mfp, token_for, own):
    write = token(token_for, own, "smsConf.write")
    mfp.put(f"{BASE}/smsConf", SMS_EXAMPLE, token=write)
    assert mfp.delete(f"{BASE}/smsConf", token=write).status_code == 204
    record.app.refresh_from_db()
    assert record.app.sms_gateway_json is None
    assert mfp.get(f"{BASE}/smsConf", token=token(token_for, own, "smsConf.read")).status_code == 404


# --- Every operation: 401, 403, 404 (unknown app, outsider), 405, 406, localized errors -------------

ENDPOINTS = [
    Endpoint("GET", "apps/{app}/settings", "settings.read"),
    Endpoint("GET", "apps/{app}/settings/apnsConf", "apnsConf.read"),
    Endpoint("DELETE", "apps/{app}/settings/apnsConf", "apnsConf.write"),
    Endpoint("GET", "apps/{app}/settings/apnsCert", "apnsCert.read", allow="GET"),
    Endpoint("GET", "apps/{app}/settings/gcmConf", "gcmConf.read", allow="GET, PUT, DELETE"),
    Endpoint("PUT", "apps/{app}/settings/gcmConf", "gcmConf.write", body={"senderId": "1", "apiKey": "k"}),
    Endpoint("DELETE", "apps/{app}/settings/gcmConf", "gcmConf.write"),
    Endpoint("GET", "apps/{app}/settings/gcmConfPublic", "gcmConfPublic.read"),
    Endpoint("GET", "apps/{app}/settings/wnsConf", "wnsConf.read"),
    Endpoint("PUT", "apps/{app}/settings/wnsConf", "wnsConf.write", body=WNS),
    Endpoint("DELETE", "apps/{app}/settings/wnsConf", "wnsConf.write"),
    Endpoint("GET", "apps/{app}/settings/smsConf", "smsConf.read"),
    Endpoint("PUT", "apps/{app}/settings/smsConf", "smsConf.write", body=SMS_EXAMPLE),
    Endpoint("DELETE", "apps/{app}/settings/smsConf", "smsConf.write"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for)


def test_common_failures_of_the_multipart_apns_conf_put(own, outsider, mfp, token_for):
    """PUT apnsConf takes multipart/form-data, so the JSON-bodied shared checks do not fit it."""
    mfp_app(own)
    url, scope = f"/imfpush/v1/apps/{SUPPORT_APP}/settings/apnsConf", "apnsConf.write"
    blob, _ = p12_file()
    body = _multipart({"certificate": _Upload("a.p12", blob), "password": "pw"})

    def put(token_value: str | None, **headers):
        if token_value:
            headers["Authorization"] = f"Bearer {token_value}"
        return Client().put(
            url.replace(SUPPORT_APP, headers.pop("app", SUPPORT_APP)),
            data=body,
            content_type="multipart/form-data; boundary=BoUnDaRy",
            headers=headers,
        )

    app_scope = f"push.application.{SUPPORT_APP}"
    assert put(None)["WWW-Authenticate"] == "Bearer"
    assert put("bad")["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    expired = token_for(own, f"{scope} {app_scope}")
    expire_latest_token()
    assert put(expired).status_code == 401
    for granted in (f"apnsConf.read {app_scope}", scope, f"{scope} push.application.other"):
        forbidden = put(token_for(own, granted))
        assert forbidden.status_code == 403, granted
        assert (
            forbidden["WWW-Authenticate"] == f'Bearer error="insufficient_scope", scope="{scope} {app_scope}"'
        )
    outsider_response = put(token_for(outsider, f"{scope} push.application.*"), **{"Accept-Language": "de"})
    assert outsider_response.status_code == 404 and outsider_response.json()["code"] == "FPWSE0001E"
    assert outsider_response["Content-Language"] == "de"
    assert outsider_response.json()["message"] == "Die Anwendung ist nicht vorhanden."
    good = token_for(own, f"{scope} {app_scope}")
    assert put(good, Accept="application/xml").status_code == 406
    assert mfp.post(f"apps/{SUPPORT_APP}/settings/apnsConf", {}, token=good).status_code == 405
    assert put(good).status_code == 200


def test_apns_conf_upload_over_one_mebibyte_is_413(record, token_for, own):
    write = token(token_for, own, "apnsConf.write")
    response = put_certificate(write, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413 and response.json()["code"] == "FPWSE9006E"
    record.app.refresh_from_db()
    assert record.app.apns_p12 is None
