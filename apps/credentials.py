"""Validation of uploaded platform credentials, so a bad one fails at upload, not at send time."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

from core.api.errors import ApiError


@dataclass(frozen=True)
class CertificateSummary:
    subject: str
    expires_at: datetime


def read_p12(field: str, p12_base64: str, password: str | None) -> CertificateSummary:
    try:
        raw = base64.b64decode(p12_base64, validate=True)
        _key, cert, _extra = pkcs12.load_key_and_certificates(raw, password.encode() if password else None)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ApiError.bad_request(
            f"{field} must be a base64 PKCS#12 file readable with the given password"
        ) from exc
    if cert is None:
        raise ApiError.bad_request(f"{field} holds no certificate")
    return summarize_certificate(cert)


def summarize_certificate(cert: x509.Certificate) -> CertificateSummary:
    return CertificateSummary(subject=cert.subject.rfc4514_string(), expires_at=cert.not_valid_after_utc)


def check_apns_p8(pem: str) -> None:
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ApiError.bad_request("apns_p8 must be the PEM text of an APNs auth key (.p8)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ApiError.bad_request("apns_p8 must be a P-256 (ES256) key")


FCM_REQUIRED_KEYS = ("project_id", "client_email", "private_key", "token_uri")


def read_fcm_service_account(value) -> tuple[str, str]:
    """Returns ``(json_text, project_id)`` for a Google service-account file (object or string)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ApiError.bad_request("fcm_v1_service_account_json must be a service-account JSON") from exc
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in FCM_REQUIRED_KEYS):
        raise ApiError.bad_request("fcm_v1_service_account_json must hold " + ", ".join(FCM_REQUIRED_KEYS))
    try:
        load_pem_private_key(value["private_key"].encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ApiError.bad_request(
            "fcm_v1_service_account_json private_key is not a PEM private key"
        ) from exc
    return json.dumps(value), value["project_id"]
