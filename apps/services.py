"""Writes for organizations, apps and their keys."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone

from apps.credentials import (
    check_adm_client_id,
    check_apns_p8,
    check_client_secret,
    check_hostname,
    check_huawei_app_id,
    check_public_host,
    check_wns_package_sid,
    read_fcm_service_account,
    read_p12,
    read_sms_gateway,
    website_push_id,
)
from apps.models import App, AppKey, Membership, Organization, UserKey
from apps.vapid import apply_vapid_fields, vapid_key_pair
from core.api.errors import ApiError
from core.models import ApiKey
from core.ssrf import UnsafeUrl, check_public_url

# Fields written to the App as given (after serializer validation).
PLAIN_APP_FIELDS = (
    "name",
    "site_name",
    "chrome_web_origin",
    "chrome_web_default_notification_icon",
    "chrome_web_sub_domain",
    "chrome_web_gcm_sender_id",
    "safari_site_origin",
    "safari_icon_256_256",
    "android_gcm_sender_id",
    "additional_data_is_root_payload",
    "apns_env",
    "apns_key_id",
    "apns_team_id",
    "apns_bundle_id",
    "vapid_subject",
    "allow_unauthenticated_device_calls",
    "gcm_key",
    "chrome_key",
)


@transaction.atomic
def organization_create(*, name: str, owner: AbstractUser | None = None) -> Organization:
    organization = Organization.objects.create(name=name)
    if owner is not None:
        Membership.objects.create(organization=organization, user=owner, role=Membership.Role.OWNER)
    return organization


def _issue(key: ApiKey) -> str:
    plaintext = key.assign_new_secret().plaintext
    key.save()
    return plaintext


def user_key_issue(*, organization: Organization, label: str = "") -> tuple[UserKey, str]:
    key = UserKey(organization=organization, label=label)
    return key, _issue(key)


def app_key_issue(*, app: App, label: str = "") -> tuple[AppKey, str]:
    key = AppKey(app=app, label=label)
    return key, _issue(key)


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        type(key).objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db(fields=["revoked_at"])


@transaction.atomic
def api_key_rotate(*, key: ApiKey) -> tuple[ApiKey, str]:
    """Revoke ``key`` and issue a replacement with the same label and owner."""
    api_key_revoke(key=key)
    replacement = type(key)(label=key.label, **_owner_of(key))
    return replacement, _issue(replacement)


def _owner_of(key: ApiKey) -> dict[str, Any]:
    if isinstance(key, AppKey):
        return {"app_id": key.app_id}
    return {"organization_id": key.organization_id}


# Image URLs devices fetch (the web push default icon, Safari's icon): the same SSRF policy as
# a notification's image fields (notifications/validation.py IMAGE_URL_FIELDS).
APP_IMAGE_FIELDS = ("chrome_web_default_notification_icon", "safari_icon_256_256")


def _apply_app_fields(app: App, data: dict[str, Any]) -> None:
    for field in PLAIN_APP_FIELDS:
        if field in data:
            setattr(app, field, data[field])
    for field in APP_IMAGE_FIELDS:
        value = data.get(field)
        if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")):
            try:
                check_public_url(value, purpose=field, allow_unresolvable=True, require_https=False)
            except UnsafeUrl as exc:
                raise ApiError.bad_request(str(exc)) from exc
    if data.get("apns_p8"):
        check_apns_p8(data["apns_p8"])
        app.apns_p8 = data["apns_p8"]
    elif "apns_p8" in data:
        app.apns_p8 = None
    for prefix in ("apns", "safari_apns"):
        p12, password = data.get(f"{prefix}_p12"), data.get(f"{prefix}_p12_password")
        if p12:
            summary = read_p12(f"{prefix}_p12", p12, password)
            if prefix == "safari_apns":
                app.safari_push_id = website_push_id(summary)  # legacy Safari's apns-topic
            setattr(app, f"{prefix}_p12", p12)
            setattr(app, f"{prefix}_p12_password", password or None)
            setattr(app, f"{prefix}_certificate_subject", summary.subject)
            setattr(app, f"{prefix}_certificate_expires_at", summary.expires_at)
    service_account = data.get("fcm_v1_service_account_json")
    if service_account:
        app.fcm_service_account_json, app.fcm_project_id = read_fcm_service_account(service_account)
    _apply_channel_fields(app, data)
    apply_vapid_fields(app, data)  # vapid_private_key / vapid_public_key / vapid_subject, validated


def _blank_to_none(value):
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _apply_channel_fields(app: App, data: dict[str, Any]) -> None:
    """Email (SMTP), the HTTP SMS gateway, WNS, Huawei Push Kit and ADM. Blank or null clears a field."""
    if "smtp_host" in data:
        host = _blank_to_none(data["smtp_host"])
        app.smtp_host = check_hostname("smtp_host", host) if host else None
        if app.smtp_host:
            check_public_host("smtp_host", app.smtp_host, 25)
    for field in ("smtp_port", "smtp_username", "email_from_address", "email_from_name"):
        if field in data:
            setattr(app, field, _blank_to_none(data[field]))
    if "smtp_use_tls" in data:
        app.smtp_use_tls = data["smtp_use_tls"]
    if "smtp_password" in data:
        app.smtp_password = data["smtp_password"] or None
    if "sms_gateway" in data:
        gateway = data["sms_gateway"]
        app.sms_gateway_json = read_sms_gateway(gateway) if gateway not in (None, "", {}) else None
    if "wns_package_sid" in data:
        sid = _blank_to_none(data["wns_package_sid"])
        app.wns_package_sid = check_wns_package_sid(sid) if sid else None
    if "wns_client_secret" in data:
        app.wns_client_secret = data["wns_client_secret"] or None
    for field, check_id in (("huawei_app_id", check_huawei_app_id), ("adm_client_id", check_adm_client_id)):
        if field in data:
            value = _blank_to_none(data[field])
            setattr(app, field, check_id(value) if value else None)
    for field in ("huawei_app_secret", "adm_client_secret"):
        if field in data:
            value = data[field] or None
            setattr(app, field, check_client_secret(field, value) if value else None)


@transaction.atomic
def app_create(*, organization: Organization, data: dict[str, Any]) -> tuple[App, str]:
    """Create an app with its first App key; returns the key's plaintext, shown only now."""
    app = App(organization=organization)
    _apply_app_fields(app, data)
    if not app.vapid_private_key:  # every app gets a Web Push (VAPID) key pair
        app.vapid_private_key, app.vapid_public_key = vapid_key_pair()
    app.save()
    _apply_webhooks(app, data)
    _key, plaintext = app_key_issue(app=app, label="default")
    return app, plaintext


@transaction.atomic
def app_update(*, app: App, data: dict[str, Any]) -> App:
    _apply_app_fields(app, data)
    app.save()
    _apply_webhooks(app, data)
    return app


def _apply_webhooks(app: App, data: dict[str, Any]) -> None:
    """``webhooks`` replaces the app's OneSignal-side event webhooks (a 400 names a bad item)."""
    if "webhooks" not in data:
        return
    from webhooks.services import WebhookInvalid, onesignal_webhooks_parse, onesignal_webhooks_replace

    try:
        items = onesignal_webhooks_parse([] if data["webhooks"] is None else data["webhooks"])
    except WebhookInvalid as exc:
        raise ApiError.bad_request(f"{exc.field} {exc.reason}"[:300]) from exc
    onesignal_webhooks_replace(app=app, items=items)
