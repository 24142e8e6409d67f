from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.crypto import EncryptedTextField
from core.models import ApiKey


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="organizations"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ADMIN)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class UserKey(ApiKey):
    """OneSignal's "User Auth Key" / "Organization API Key": manages every app of an organization."""

    KIND = "huk"
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="user_keys")

    class Meta:
        verbose_name = "User key"


class App(models.Model):
    class ApnsEnv(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"
        PRODUCTION = "production", "Production"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="apps")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # Device SDKs call POST /players, on_session and friends without a key, as OneSignal's do.
    allow_unauthenticated_device_calls = models.BooleanField(default=True)

    site_name = models.CharField(max_length=200, null=True, blank=True)
    chrome_web_origin = models.CharField(max_length=500, null=True, blank=True)
    chrome_web_default_notification_icon = models.CharField(max_length=1000, null=True, blank=True)
    chrome_web_sub_domain = models.CharField(max_length=200, null=True, blank=True)
    chrome_web_gcm_sender_id = models.CharField(max_length=100, null=True, blank=True)
    safari_site_origin = models.CharField(max_length=500, null=True, blank=True)
    safari_icon_256_256 = models.CharField(max_length=1000, null=True, blank=True)
    android_gcm_sender_id = models.CharField(max_length=100, null=True, blank=True)
    additional_data_is_root_payload = models.BooleanField(default=False)

    apns_env = models.CharField(max_length=10, choices=ApnsEnv.choices, default=ApnsEnv.PRODUCTION)
    apns_key_id = models.CharField(max_length=20, null=True, blank=True)
    apns_team_id = models.CharField(max_length=20, null=True, blank=True)
    apns_bundle_id = models.CharField(max_length=200, null=True, blank=True)
    # Non-secret summaries read from the uploaded certificates ("subject, expiry").
    apns_certificate_subject = models.CharField(max_length=500, null=True, blank=True, editable=False)
    apns_certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    safari_apns_certificate_subject = models.CharField(max_length=500, null=True, blank=True, editable=False)
    safari_apns_certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The Website Push ID (web.com.example) of the Safari certificate, read from it on upload:
    # OneSignal's read-only ``safari_push_id``, and the apns-topic of legacy Safari (device type 7).
    safari_push_id = models.CharField(max_length=200, null=True, blank=True, editable=False)

    fcm_project_id = models.CharField(max_length=200, null=True, blank=True, editable=False)
    vapid_public_key = models.CharField(max_length=200, null=True, blank=True)
    vapid_subject = models.CharField(max_length=500, null=True, blank=True)

    # Email (SMTP), the HTTP SMS gateway (MobileFirst smsConf shape) and WNS.
    smtp_host = models.CharField(max_length=255, null=True, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_username = models.CharField(max_length=255, null=True, blank=True)
    smtp_use_tls = models.BooleanField(default=False)
    email_from_address = models.EmailField(null=True, blank=True)
    email_from_name = models.CharField(max_length=200, null=True, blank=True)
    wns_package_sid = models.CharField(max_length=255, null=True, blank=True)
    # Huawei Push Kit (device type 13): the AppGallery Connect app's OAuth 2.0 client id (its App ID),
    # which is also the {appId} of the send URL. Amazon Device Messaging (device type 2): the Login
    # with Amazon security profile's client id.
    huawei_app_id = models.CharField(max_length=32, null=True, blank=True)
    adm_client_id = models.CharField(max_length=255, null=True, blank=True)

    # Secrets: encrypted at rest, write-only through the API, never echoed back.
    gcm_key = EncryptedTextField(null=True, blank=True)
    chrome_key = EncryptedTextField(null=True, blank=True)
    apns_p8 = EncryptedTextField(null=True, blank=True)
    apns_p12 = EncryptedTextField(null=True, blank=True)
    apns_p12_password = EncryptedTextField(null=True, blank=True)
    safari_apns_p12 = EncryptedTextField(null=True, blank=True)
    safari_apns_p12_password = EncryptedTextField(null=True, blank=True)
    fcm_service_account_json = EncryptedTextField(null=True, blank=True)
    vapid_private_key = EncryptedTextField(null=True, blank=True)
    smtp_password = EncryptedTextField(null=True, blank=True)
    # {"host", "port", "programName", "name", "parameters": [{"name", "value"}], ...}: parameters may
    # carry the gateway's API key, so the whole configuration is a secret.
    sms_gateway_json = EncryptedTextField(null=True, blank=True)
    wns_client_secret = EncryptedTextField(null=True, blank=True)
    huawei_app_secret = EncryptedTextField(null=True, blank=True)
    adm_client_secret = EncryptedTextField(null=True, blank=True)

    SECRET_FIELDS = (
        "gcm_key",
        "chrome_key",
        "apns_p8",
        "apns_p12",
        "apns_p12_password",
        "safari_apns_p12",
        "safari_apns_p12_password",
        "fcm_service_account_json",
        "vapid_private_key",
        "smtp_password",
        "sms_gateway_json",
        "wns_client_secret",
        "huawei_app_secret",
        "adm_client_secret",
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return self.name


class AppKey(ApiKey):
    """OneSignal's "REST API Key" / "App API Key": several per app, labelled, revocable."""

    KIND = "hak"
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="keys")

    class Meta:
        verbose_name = "App key"
