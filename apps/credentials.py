"""Validation of uploaded platform credentials, so a bad one fails at upload, not at send time."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils import timezone

from core.api import limits
from core.api.errors import ApiError
from core.ssrf import UnsafeUrl, check_public_url


@dataclass(frozen=True)
class CertificateSummary:
    subject: str
    expires_at: datetime
    # The subject's UID: the topic Apple issued the certificate for (a bundle id, or a Website Push
    # ID such as web.com.example for Safari).
    uid: str | None = None


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
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        expires_at=cert.not_valid_after_utc,
        uid=str(uids[0].value) if uids else None,
    )


def website_push_id(summary: CertificateSummary) -> str:
    """The Website Push ID a Safari push certificate is for (its UID, ``web.`` + reverse domain),
    or a 400: an iOS certificate uploaded as the Safari one would be refused by APNs at every send
    (TopicDisallowed), so it is refused here."""
    if not summary.uid or not summary.uid.startswith("web.") or len(summary.uid) > 200:
        raise ApiError.bad_request(
            "safari_apns_p12 must be a Website Push ID certificate (its subject UID starts with web.)"
        )
    return summary.uid


def check_apns_p8(pem: str) -> None:
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ApiError.bad_request("apns_p8 must be the PEM text of an APNs auth key (.p8)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ApiError.bad_request("apns_p8 must be a P-256 (ES256) key")


FCM_REQUIRED_KEYS = ("project_id", "client_email", "private_key", "token_uri")
# Google's token endpoints besides *.googleapis.com (older key files name accounts.google.com).
GOOGLE_HOSTS = ("accounts.google.com",)


def read_fcm_service_account(value) -> tuple[str, str]:
    """Returns ``(json_text, project_id)`` for a Google service-account file (object or string)."""
    if isinstance(value, str):
        try:
            value = limits.loads(value)
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
    if not fcm_token_uri_allowed(value["token_uri"]):
        raise ApiError.bad_request(
            "fcm_v1_service_account_json token_uri must be Google's (https://oauth2.googleapis.com/token)"
        )
    return json.dumps(value), value["project_id"]


# --- Email (SMTP), the HTTP SMS gateway (MobileFirst smsConf) and WNS -------------------------

# A DNS name or an IP literal, nothing else: no scheme, path, credentials or spaces.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9\-._]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
SMS_GATEWAY_KEYS = {"host", "port", "programName", "name", "parameters", "method", "https"}
SMS_PARAMETER_KEYS = {"name", "value", "encode"}
PHONE_PLACEHOLDER = "{phoneNumber}"
MESSAGE_PLACEHOLDER = "{message}"


def check_hostname(field: str, value: str) -> str:
    value = value.strip()
    if not _HOSTNAME.match(value):
        raise ApiError.bad_request(f"{field} must be a host name or IP address, without scheme or path")
    return value.strip("[]")


def check_public_host(field: str, host: str, port: int) -> None:
    """SSRF policy at save time (core/ssrf.py): the host must not be, or resolve to, a non-public
    address unless HERALD_ALLOWED_PRIVATE_NETWORKS lists it. A name that does not resolve yet is
    accepted; the provider checks again, pinned, at every send."""
    url_host = f"[{host}]" if ":" in host else host
    try:
        url = f"http://{url_host}:{port}/"
        check_public_url(url, purpose=field, allow_unresolvable=True, require_https=False)
    except UnsafeUrl as exc:
        raise ApiError.bad_request(str(exc)) from exc


def fcm_token_uri_allowed(uri) -> bool:
    """Whether Herald may POST a service account's signed assertion to its ``token_uri``: https on
    Google's own hosts, or the origin of the operator's HERALD_FCM_BASE_URL (the gateway simulator
    serves its token endpoint there). Anything else would let a tenant make Herald POST wherever
    it likes (SSRF), so it is refused when uploaded and again before each token request."""
    if not isinstance(uri, str):
        return False
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname or "@" in parts.netloc:
        return False
    host = parts.hostname.lower()
    google = host.endswith(".googleapis.com") or host in GOOGLE_HOSTS
    if google and parts.scheme == "https" and port in (None, 443):
        return True
    base = urlsplit(settings.HERALD_FCM_BASE_URL)
    return (parts.scheme, host, port) == (base.scheme, (base.hostname or "").lower(), base.port)


def check_port(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ApiError.bad_request(f"{field} must be an integer port between 1 and 65535")
    return value


def read_sms_gateway(value, *, public_host: bool = True) -> str:
    """The JSON text stored for an ``sms_gateway`` object in MobileFirst's ``smsConf`` shape:
    ``{"host", "port", "programName", "name"?, "parameters": [{"name", "value", "encode"?}]}``,
    plus Herald's optional ``method`` (GET, the default, or POST) and ``https`` (default: port 443).
    ``public_host=False`` skips the save-time SSRF check for a gateway the operator configures
    (bootstrap_demo's simulator on loopback); the provider still checks it at every send.
    """
    if isinstance(value, str):
        try:
            value = limits.loads(value)
        except ValueError as exc:
            raise ApiError.bad_request("sms_gateway must be an object") from exc
    if not isinstance(value, dict):
        raise ApiError.bad_request("sms_gateway must be an object")
    unknown = set(value) - SMS_GATEWAY_KEYS
    if unknown:
        raise ApiError.bad_request(f"sms_gateway has unknown keys: {', '.join(sorted(unknown))}"[:300])
    if not isinstance(value.get("host"), str) or not value["host"].strip():
        raise ApiError.bad_request("sms_gateway.host is required")
    config: dict = {"host": check_hostname("sms_gateway.host", value["host"])}
    https = value.get("https")
    if https is not None and not isinstance(https, bool):
        raise ApiError.bad_request("sms_gateway.https must be a boolean")
    port = value.get("port")
    config["port"] = check_port("sms_gateway.port", port) if port is not None else (443 if https else 80)
    if public_host:
        check_public_host("sms_gateway.host", config["host"], config["port"])
    program = value.get("programName")
    if not isinstance(program, str) or not program.startswith("/") or any(c.isspace() for c in program):
        raise ApiError.bad_request("sms_gateway.programName must be a path starting with /")
    config["programName"] = program
    if value.get("name") is not None:
        if not isinstance(value["name"], str) or len(value["name"]) > 200:
            raise ApiError.bad_request("sms_gateway.name must be a string of at most 200 characters")
        config["name"] = value["name"]
    method = value.get("method", "GET")
    if method not in ("GET", "POST"):
        raise ApiError.bad_request("sms_gateway.method must be GET or POST")
    config["method"] = method
    if https is not None:
        config["https"] = https
    parameters = value.get("parameters")
    if not isinstance(parameters, list) or not parameters:
        raise ApiError.bad_request("sms_gateway.parameters must be a non-empty array of {name, value}")
    config["parameters"] = []
    for parameter in parameters:
        if (
            not isinstance(parameter, dict)
            or set(parameter) - SMS_PARAMETER_KEYS
            or not isinstance(parameter.get("name"), str)
            or not parameter["name"]
            or not isinstance(parameter.get("value"), str)
            or not isinstance(parameter.get("encode", True), bool)
        ):
            raise ApiError.bad_request(
                "each sms_gateway parameter must be {name: string, value: string, encode?: boolean}"
            )
        config["parameters"].append(
            {"name": parameter["name"], "value": parameter["value"], "encode": parameter.get("encode", True)}
        )
    for placeholder in (PHONE_PLACEHOLDER, MESSAGE_PLACEHOLDER):
        if not any(placeholder in p["value"] for p in config["parameters"]):
            raise ApiError.bad_request(f"sms_gateway.parameters must use {placeholder} in a value")
    return json.dumps(config)


def check_wns_package_sid(value: str) -> str:
    value = value.strip()
    if not value.startswith("ms-app://") or len(value) <= len("ms-app://") or " " in value:
        raise ApiError.bad_request(
            "wns_package_sid must be the app's Package SID, like ms-app://S-1-15-2-..."
        )
    return value


# --- Huawei Push Kit and Amazon Device Messaging --------------------------------------------------

# AppGallery Connect shows an app's OAuth 2.0 client id (its App ID) as a decimal number; it is also
# the {appId} path segment of the v1 send URL, so nothing else may get through.
_HUAWEI_APP_ID = re.compile(r"^[0-9]{1,32}$")
# Login with Amazon security profiles: "amzn1.application-oa2-client.<hex>".
ADM_CLIENT_ID_PREFIX = "amzn1.application-oa2-client."
_ADM_CLIENT_ID = re.compile(r"^amzn1\.application-oa2-client\.[A-Za-z0-9]{1,200}$")
MAX_CLIENT_SECRET_LENGTH = 512


def check_huawei_app_id(value: str) -> str:
    value = value.strip()
    if not _HUAWEI_APP_ID.match(value):
        raise ApiError.bad_request(
            "huawei_app_id must be the App ID (OAuth 2.0 client ID) from AppGallery Connect, digits only"
        )
    return value


def check_adm_client_id(value: str) -> str:
    value = value.strip()
    if not _ADM_CLIENT_ID.match(value):
        raise ApiError.bad_request(
            f"adm_client_id must be a Login with Amazon client ID, like {ADM_CLIENT_ID_PREFIX}0123abcd..."
        )
    return value


def check_client_secret(field: str, value: str) -> str:
    """An OAuth client secret: sent as a form field, so printable, without spaces, and bounded."""
    if len(value) > MAX_CLIENT_SECRET_LENGTH or not value.isprintable() or any(c.isspace() for c in value):
        raise ApiError.bad_request(
            f"{field} must be the client secret as shown by the console: at most "
            f"{MAX_CLIENT_SECRET_LENGTH} printable characters, no spaces"
        )
    return value


# An APNs certificate this close to its expiry gets a warning in the dashboard.
CERTIFICATE_WARNING_DAYS = 30


@dataclass(frozen=True)
class CertificateStatus:
    text: str
    warn: bool
    color: str


def certificate_status(
    expires_at: datetime | None, *, now: datetime | None = None
) -> CertificateStatus | None:
    """How the dashboard shows an uploaded certificate's expiry: expired, expiring soon, or valid."""
    if expires_at is None:
        return None
    now = now or timezone.now()
    days = (expires_at - now).days
    if expires_at <= now:
        return CertificateStatus(f"expired on {expires_at:%Y-%m-%d}: deliveries will fail", True, "#c62828")
    if days < CERTIFICATE_WARNING_DAYS:
        return CertificateStatus(f"expires in {days} days ({expires_at:%Y-%m-%d}): renew it", True, "#ef6c00")
    return CertificateStatus(f"valid until {expires_at:%Y-%m-%d}", False, "#2e7d32")
