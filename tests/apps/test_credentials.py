from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.db import connection

pytestmark = pytest.mark.django_db


def make_p12(password: bytes, uid: str | None = None) -> tuple[str, dt.datetime]:
    """A self-signed push certificate (.p12, base64) and its expiry; ``uid``: the subject's UID, the
    topic Apple issues it for (a Website Push ID for Safari)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.USER_ID, uid)] if uid else []
    name = x509.Name(
        [*attributes, x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: com.example.app")]
    )
    not_after = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    blob = pkcs12.serialize_key_and_certificates(
        b"apns", key, cert, None, serialization.BestAvailableEncryption(password)
    )
    return base64.b64encode(blob).decode(), not_after


def test_a_p12_upload_is_summarised_and_never_echoed(api, own):
    p12, not_after = make_p12(b"pw")
    response = api.put(f"/apps/{own.app.id}", {"apns_p12": p12, "apns_p12_password": "pw"}, key=own.user_key)
    assert response.status_code == 200
    body = response.json()
    assert (
        body["apns_certificates"]
        == "CN=Apple Push Services: com.example.app; expires 2031-01-02T03:04:05.000Z"
    )
    assert p12 not in response.content.decode() and "apns_p12" not in body
    own.app.refresh_from_db()
    assert own.app.apns_p12 == p12 and own.app.apns_certificate_expires_at == not_after
    with connection.cursor() as cursor:
        cursor.execute("SELECT apns_p12, apns_p12_password FROM apps_app WHERE id = %s", [own.app.id])
        raw_p12, raw_password = cursor.fetchone()
    assert p12 not in raw_p12 and raw_password != "pw"


def test_a_p12_with_the_wrong_password_is_refused(api, own):
    p12, _ = make_p12(b"pw")
    response = api.put(
        f"/apps/{own.app.id}", {"apns_p12": p12, "apns_p12_password": "nope"}, key=own.user_key
    )
    assert response.status_code == 400
    own.app.refresh_from_db()
    assert own.app.apns_p12 is None


def test_an_apns_p8_must_be_a_p256_key(api, own):
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    assert api.put(f"/apps/{own.app.id}", {"apns_p8": rsa_pem}, key=own.user_key).status_code == 400
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    response = api.put(
        f"/apps/{own.app.id}", {"apns_p8": ec_pem, "apns_key_id": "ABC123DEFG"}, key=own.user_key
    )
    assert response.status_code == 200 and response.json()["apns_p8"] is None
    own.app.refresh_from_db()
    assert own.app.apns_p8 == ec_pem


def test_an_fcm_service_account_is_validated_and_its_project_recorded(api, own):
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    account = {
        "type": "service_account",
        "project_id": "demo-project",
        "client_email": "sa@demo.iam",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    assert (
        api.put(
            f"/apps/{own.app.id}", {"fcm_v1_service_account_json": {"project_id": "x"}}, key=own.user_key
        ).status_code
        == 400
    )
    response = api.put(
        f"/apps/{own.app.id}", {"fcm_v1_service_account_json": json.dumps(account)}, key=own.user_key
    )
    assert response.status_code == 200
    assert "private_key" not in response.content.decode()
    own.app.refresh_from_db()
    assert own.app.fcm_project_id == "demo-project"
    assert json.loads(own.app.fcm_service_account_json)["client_email"] == "sa@demo.iam"
