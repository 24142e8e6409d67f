"""Application settings (mobilefirst-push-api.md §3.2): the App's own credentials, seen through MFP.

One store, two views. ``apnsConf``, ``gcmConf``, ``wnsConf`` and ``smsConf`` read and write the
same App fields as the OneSignal API (``apps.services.app_update`` and the validators of
``apps.credentials``), so a credential uploaded through either API is used by the same provider:

| MFP                                   | App field(s)                                              |
|---------------------------------------|-----------------------------------------------------------|
| apnsConf certificate, password        | ``apns_p12`` (base64), ``apns_p12_password`` (+ summary)  |
| apnsConf isSandBox                    | ``apns_env`` (``sandbox`` / ``production``)                |
| gcmConf apiKey, senderId              | ``gcm_key``, ``android_gcm_sender_id``                     |
| gcmConf serviceAccount (write-only)   | ``fcm_service_account_json`` and ``fcm_project_id``        |
| wnsConf clientSecret, packageSID      | ``wns_client_secret``, ``wns_package_sid``                 |
| smsConf                               | ``sms_gateway_json`` (the SMS provider's gateway object)   |

Secrets never leave: ``apiKey`` and ``clientSecret`` are read back as ``"****"`` plus their last
four characters, and ``apnsCert`` is the public certificate only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from django.db import transaction

from apps.api.serializers import iso_millis
from apps.credentials import check_client_secret, check_hostname, check_port
from apps.models import App
from apps.services import app_update
from core.api.errors import ApiError
from core.ssrf import UnsafeUrl, check_public_url
from imfpush.errors import MfpError
from imfpush.models import MfpApplication
from notifications.providers.sms import gateway_url

CONFIGURATIONS = ("apnsConf", "gcmConf", "smsConf", "wnsConf")
REDACTED = "****"
# A secret this short is masked entirely: its last four characters would be most of it.
REVEAL_MIN_LENGTH = 12
MAX_SMS_PARAMETERS = 50
MAX_SMS_VALUE_LENGTH = 2048
MAX_NAME_LENGTH = 200


def redact(secret: str) -> str:
    return REDACTED + secret[-4:] if len(secret) >= REVEAL_MIN_LENGTH else REDACTED


@contextmanager
def _reported_as(name: str, reason: str | None = None) -> Iterator[None]:
    """Turn an ``apps.credentials`` validation error into the MFP 400 naming ``name``."""
    try:
        yield
    except ApiError as exc:
        detail = reason or (exc.body.get("errors") or ["is invalid"])[0]
        raise MfpError.invalid(name, detail) from exc


def _text(
    body: dict, name: str, *, required: bool, max_length: int = MAX_NAME_LENGTH, label: str = ""
) -> str | None:
    """An optional or required string property (integers are accepted as their text)."""
    value = body.get(name)
    name = label or name
    if value is None or value == "":
        if required:
            raise MfpError.invalid(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MfpError.invalid(name, "must be a string")
    value = str(value)
    if len(value) > max_length or not value.isprintable():
        raise MfpError.invalid(name, f"must be at most {max_length} printable characters")
    return value


def as_boolean(value: Any, name: str, default: bool) -> bool:
    """Native booleans and their string forms (§1.5)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MfpError.invalid(name, "must be true or false")


def _fresh(record: MfpApplication) -> App:
    """The App row locked for this write, so concurrent settings writes apply one after the other."""
    return App.objects.select_for_update().get(pk=record.app_id)


# --- Selectors ----------------------------------------------------------------------------------


def settings_links(href, application_id: str) -> dict:
    """``GET settings``: the four links are always present, configured or not (our choice)."""
    links = {name: href("apps", application_id, "settings", name) for name in CONFIGURATIONS}
    return {**links, "applicationId": application_id, "mode": "PRODUCTION"}


def _p12_digest(p12_base64: str) -> str:
    return hashlib.sha256(p12_base64.encode()).hexdigest()


def apns_conf(record: MfpApplication, app: App) -> dict | None:
    """``None`` unless a .p12 is stored: a token key (.p8) alone cannot be represented (§3.2)."""
    if not app.apns_p12:
        return None
    body: dict[str, Any] = {"isSandBox": app.apns_env == App.ApnsEnv.SANDBOX}
    if app.apns_certificate_expires_at is not None:
        body["validUntil"] = iso_millis(app.apns_certificate_expires_at)
    if record.apns_certificate_name and record.apns_certificate_digest == _p12_digest(app.apns_p12):
        body["certificate"] = record.apns_certificate_name
    return body


def apns_certificate_der(app: App) -> bytes | None:
    """The public X.509 certificate of the stored .p12, DER-encoded; never its private key."""
    if not app.apns_p12:
        return None
    password = app.apns_p12_password
    try:
        _key, certificate, _chain = pkcs12.load_key_and_certificates(
            base64.b64decode(app.apns_p12), password.encode() if password else None
        )
    except (ValueError, TypeError):
        return None
    return certificate.public_bytes(Encoding.DER) if certificate is not None else None


def gcm_conf(app: App) -> dict | None:
    if not (app.gcm_key or app.fcm_service_account_json or app.android_gcm_sender_id):
        return None
    body = {}
    if app.gcm_key:
        body["apiKey"] = redact(app.gcm_key)
    if app.android_gcm_sender_id:
        body["senderId"] = app.android_gcm_sender_id
    if app.fcm_service_account_json and app.fcm_project_id:
        body["projectId"] = app.fcm_project_id
    return body


def gcm_conf_public(app: App) -> dict | None:
    """What a device needs before it registers: the sender id, nothing secret."""
    return {"senderId": app.android_gcm_sender_id} if app.android_gcm_sender_id else None


def wns_conf(app: App) -> dict | None:
    if not (app.wns_client_secret or app.wns_package_sid):
        return None
    body = {}
    if app.wns_client_secret:
        body["clientSecret"] = redact(app.wns_client_secret)
    if app.wns_package_sid:
        body["packageSID"] = app.wns_package_sid
    return body


# Gateway parameters whose name says they hold a credential are shown redacted, like apiKey.
SECRET_PARAMETER = re.compile(r"key|secret|password|passwd|token|auth|signature|pin", re.IGNORECASE)


def _shown_parameter(parameter: dict) -> str:
    value = parameter["value"]
    return redact(value) if SECRET_PARAMETER.search(parameter["name"]) else value


def _keep_redacted_secrets(new: list[dict], stored_json: str | None) -> None:
    """A PUT that echoes a redacted secret back (GET, edit, PUT) keeps the stored value."""
    stored = (
        {p["name"]: p["value"] for p in (json.loads(stored_json).get("parameters") or [])}
        if stored_json
        else {}
    )
    for parameter in new:
        old = stored.get(parameter["name"])
        if (
            old is not None
            and SECRET_PARAMETER.search(parameter["name"])
            and parameter["value"] == redact(old)
        ):
            parameter["value"] = old


def sms_conf(app: App) -> dict | None:
    """The stored gateway in MFP's shape; Herald's own ``method``/``https`` keys are not shown."""
    if not app.sms_gateway_json:
        return None
    config = json.loads(app.sms_gateway_json)
    body = {
        "host": config["host"],
        "port": config["port"],
        "programName": config["programName"],
        "parameters": [
            {"encode": p.get("encode", True), "name": p["name"], "value": _shown_parameter(p)}
            for p in config.get("parameters") or []
        ],
    }
    if config.get("name"):
        body["name"] = config["name"]
    return body


# --- Services -----------------------------------------------------------------------------------


@transaction.atomic
def apns_conf_set(
    *, record: MfpApplication, certificate: bytes, file_name: str, password: str, is_sandbox: bool
) -> dict:
    """Store an APNs certificate; it replaces any APNs credentials, a token key (.p8) included."""
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(certificate, password.encode() or None)
    except (ValueError, TypeError) as exc:
        raise MfpError.invalid(
            "certificate", "must be a PKCS#12 (.p12) file readable with the given password"
        ) from exc
    if key is None or cert is None:
        raise MfpError.invalid("certificate", "must hold the APNs certificate and its private key")
    p12 = base64.b64encode(certificate).decode()
    app = _fresh(record)
    with _reported_as("certificate"):
        app_update(
            app=app,
            data={
                "apns_p12": p12,
                "apns_p12_password": password or None,
                "apns_p8": None,
                "apns_key_id": None,
                "apns_team_id": None,
                "apns_env": App.ApnsEnv.SANDBOX if is_sandbox else App.ApnsEnv.PRODUCTION,
            },
        )
    record.apns_certificate_name = file_name[:255]
    record.apns_certificate_digest = _p12_digest(p12)
    MfpApplication.objects.filter(pk=record.pk).update(
        apns_certificate_name=record.apns_certificate_name,
        apns_certificate_digest=record.apns_certificate_digest,
    )
    return apns_conf(record, app) or {}


@transaction.atomic
def apns_conf_delete(*, record: MfpApplication) -> None:
    """Remove the certificate (what ``apnsConf`` shows); a token key set in the dashboard stays."""
    app = _fresh(record)
    app.apns_p12 = app.apns_p12_password = None
    app.apns_certificate_subject = app.apns_certificate_expires_at = None
    app.save(
        update_fields=[
            "apns_p12",
            "apns_p12_password",
            "apns_certificate_subject",
            "apns_certificate_expires_at",
            "updated_at",
        ]
    )
    MfpApplication.objects.filter(pk=record.pk).update(apns_certificate_name="", apns_certificate_digest="")


@transaction.atomic
def gcm_conf_set(*, record: MfpApplication, body: dict) -> dict:
    """``senderId`` plus ``apiKey`` and/or a write-only FCM v1 ``serviceAccount``; absent ones stay."""
    sender_id = _text(body, "senderId", required=True, max_length=100)
    api_key = _text(body, "apiKey", required=False, max_length=4096)
    service_account = body.get("serviceAccount")
    if service_account in ("", {}):
        service_account = None
    if api_key is None and service_account is None:
        raise MfpError.invalid("apiKey", "apiKey or serviceAccount is required")
    data: dict[str, Any] = {"android_gcm_sender_id": sender_id}
    if api_key is not None:
        with _reported_as("apiKey"):
            data["gcm_key"] = check_client_secret("apiKey", api_key)
    if service_account is not None:
        data["fcm_v1_service_account_json"] = service_account
    app = _fresh(record)
    with _reported_as(
        "serviceAccount",
        "must be a Google service-account JSON object with project_id, client_email, "
        "private_key (PEM) and token_uri",
    ):
        app_update(app=app, data=data)
    return gcm_conf(app) or {}


@transaction.atomic
def gcm_conf_delete(*, record: MfpApplication) -> None:
    app = _fresh(record)
    app.gcm_key = app.android_gcm_sender_id = None
    app.fcm_service_account_json = app.fcm_project_id = None
    app.save(
        update_fields=[
            "gcm_key",
            "android_gcm_sender_id",
            "fcm_service_account_json",
            "fcm_project_id",
            "updated_at",
        ]
    )


@transaction.atomic
def wns_conf_set(*, record: MfpApplication, body: dict) -> dict:
    secret = _text(body, "clientSecret", required=True, max_length=4096)
    package_sid = _text(body, "packageSID", required=True, max_length=255)
    with _reported_as("clientSecret"):
        check_client_secret("clientSecret", secret)
    app = _fresh(record)
    with _reported_as("packageSID", "must be the app's Package SID, like ms-app://S-1-15-2-..."):
        app_update(app=app, data={"wns_client_secret": secret, "wns_package_sid": package_sid})
    return wns_conf(app) or {}


@transaction.atomic
def wns_conf_delete(*, record: MfpApplication) -> None:
    app_update(app=_fresh(record), data={"wns_client_secret": None, "wns_package_sid": None})


def _sms_parameters(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_SMS_PARAMETERS:
        raise MfpError.invalid("parameters", f"must be an array of at most {MAX_SMS_PARAMETERS} objects")
    parameters = []
    for index, item in enumerate(value):
        where = f"parameters[{index}]"
        if not isinstance(item, dict):
            raise MfpError.invalid(where, "must be an object {name, value, encode}")
        name = _text(item, "name", required=True, label=f"{where}.name")
        text = item.get("value", "")
        if isinstance(text, int | float) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str) or len(text) > MAX_SMS_VALUE_LENGTH:
            raise MfpError.invalid(f"{where}.value", f"must be a string of at most {MAX_SMS_VALUE_LENGTH}")
        encode = as_boolean(item.get("encode"), f"{where}.encode", True)
        parameters.append({"name": name, "value": text, "encode": encode})
    return parameters


def read_sms_conf(body: dict) -> dict:
    """The SMS provider's gateway object for an MFP ``smsConf`` body.

    The provider sends ``GET http(s)://host:port/programName?<parameters>&to=<phone>&text=<alert>``
    (https when the port is 443): MFP parameter values are literal, so the provider appends
    ``to`` and ``text`` itself. Unlike the OneSignal ``sms_gateway`` field, no ``{phoneNumber}``
    or ``{message}`` placeholder is required; a value that uses one is filled in instead.
    """
    host = _text(body, "host", required=True, max_length=253)
    with _reported_as("host"):
        host = check_hostname("host", host)
    port = body.get("port", 80)
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    with _reported_as("port", "must be an integer between 1 and 65535"):
        port = check_port("port", port)
    program = _text(body, "programName", required=True, max_length=1024)
    if not program.startswith("/") or any(c.isspace() for c in program):
        raise MfpError.invalid("programName", "must be a path starting with /, without spaces")
    config: dict[str, Any] = {"host": host, "port": port, "programName": program, "method": "GET"}
    name = _text(body, "name", required=False)
    if name:
        config["name"] = name
    config["parameters"] = _sms_parameters(body.get("parameters"))
    try:  # the rule of webhook URLs (§3.7); checked again, with pinning, at every send
        check_public_url(gateway_url(config), purpose="smsConf", allow_unresolvable=True, require_https=False)
    except UnsafeUrl as exc:
        raise MfpError.invalid("host", str(exc)) from exc
    return config


@transaction.atomic
def sms_conf_set(*, record: MfpApplication, body: dict) -> dict:
    config = read_sms_conf(body)
    app = _fresh(record)
    _keep_redacted_secrets(config["parameters"], app.sms_gateway_json)
    app.sms_gateway_json = json.dumps(config)
    app.save(update_fields=["sms_gateway_json", "updated_at"])
    return sms_conf(app) or {}


@transaction.atomic
def sms_conf_delete(*, record: MfpApplication) -> None:
    app = _fresh(record)
    app.sms_gateway_json = None
    app.save(update_fields=["sms_gateway_json", "updated_at"])
