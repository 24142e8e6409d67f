from __future__ import annotations

from rest_framework import serializers

from apps.models import App


def secret_field() -> serializers.CharField:
    # Whitespace is part of PEM files; keep secrets byte for byte.
    return serializers.CharField(
        required=False, allow_null=True, allow_blank=True, write_only=True, trim_whitespace=False
    )


class AppInputSerializer(serializers.Serializer):
    """OneSignal's App fields plus Herald's credential extensions. Every field is optional here;
    ``name`` is required on create by the view (with OneSignal's own message)."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    site_name = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    chrome_web_origin = serializers.CharField(
        max_length=500, required=False, allow_null=True, allow_blank=True
    )
    chrome_web_default_notification_icon = serializers.CharField(
        max_length=1000, required=False, allow_null=True, allow_blank=True
    )
    chrome_web_sub_domain = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    chrome_web_gcm_sender_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    safari_site_origin = serializers.CharField(
        max_length=500, required=False, allow_null=True, allow_blank=True
    )
    safari_icon_256_256 = serializers.CharField(
        max_length=1000, required=False, allow_null=True, allow_blank=True
    )
    android_gcm_sender_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    additional_data_is_root_payload = serializers.BooleanField(required=False)
    apns_env = serializers.ChoiceField(choices=App.ApnsEnv.choices, required=False)
    apns_key_id = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True)
    apns_team_id = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True)
    apns_bundle_id = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    organization_id = serializers.UUIDField(required=False)
    # Write-only secrets.
    gcm_key = secret_field()
    chrome_key = secret_field()
    apns_p8 = secret_field()
    apns_p12 = secret_field()
    apns_p12_password = secret_field()
    safari_apns_p12 = secret_field()
    safari_apns_p12_password = secret_field()
    # Herald extensions.
    fcm_v1_service_account_json = serializers.JSONField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Google service-account JSON (object or string) for FCM HTTP v1.",
    )
    vapid_public_key = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    vapid_private_key = secret_field()
    vapid_subject = serializers.CharField(max_length=500, required=False, allow_null=True, allow_blank=True)
    allow_unauthenticated_device_calls = serializers.BooleanField(required=False)
    # Email (SMTP), the HTTP SMS gateway, WNS, Huawei and ADM: write-only, never echoed back.
    smtp_host = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, write_only=True
    )
    smtp_port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False, allow_null=True, write_only=True
    )
    smtp_username = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, write_only=True
    )
    smtp_password = secret_field()
    smtp_use_tls = serializers.BooleanField(required=False, write_only=True, help_text="STARTTLS.")
    email_from_address = serializers.EmailField(
        max_length=254, required=False, allow_null=True, allow_blank=True, write_only=True
    )
    email_from_name = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True, write_only=True
    )
    sms_gateway = serializers.JSONField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="HTTP SMS gateway in MobileFirst's smsConf shape: {host, port, programName, name?, "
        "parameters: [{name, value, encode?}]}; values use {phoneNumber} and {message}.",
    )
    wns_package_sid = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, write_only=True
    )
    wns_client_secret = secret_field()
    # Huawei Push Kit (device type 13) and Amazon Device Messaging (device type 2).
    huawei_app_id = serializers.CharField(
        max_length=32,
        required=False,
        allow_null=True,
        allow_blank=True,
        write_only=True,
        help_text="Huawei Push Kit: the App ID (OAuth 2.0 client ID) from AppGallery Connect.",
    )
    huawei_app_secret = secret_field()
    adm_client_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_null=True,
        allow_blank=True,
        write_only=True,
        help_text="Amazon Device Messaging: the Login with Amazon security profile's client ID.",
    )
    adm_client_secret = secret_field()
    # Herald's per-app event webhooks: when present, the list replaces the app's webhooks.
    webhooks = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='Event webhooks: [{"url": "https://...", "events": ["notification.sent", '
        '"notification.clicked", "notification.failed", "player.unsubscribed"], "secret": optional '
        "write-only signing key}]. Replaces the app's webhooks; [] or null removes them.",
    )


def iso_millis(value) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def certificate_summary(subject: str | None, expires_at) -> str | None:
    if not subject:
        return None
    return f"{subject}; expires {iso_millis(expires_at)}"


class AppOutputSerializer(serializers.Serializer):
    """The App object (onesignal-api.md §8). Secrets read as null.

    Fields that OneSignal's generated clients type as non-nullable strings are omitted when
    empty instead of sent as null, so those clients deserialize every response.
    """

    id = serializers.UUIDField()
    name = serializers.CharField()
    players = serializers.IntegerField()
    messageable_players = serializers.IntegerField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()
    organization_id = serializers.UUIDField()
    gcm_key = serializers.CharField(allow_null=True, help_text="Always null: secrets are write-only.")
    chrome_key = serializers.CharField(allow_null=True, help_text="Always null: secrets are write-only.")
    apns_p8 = serializers.CharField(allow_null=True, help_text="Always null: secrets are write-only.")
    chrome_web_origin = serializers.CharField(allow_null=True)
    chrome_web_default_notification_icon = serializers.CharField(allow_null=True)
    chrome_web_sub_domain = serializers.CharField(allow_null=True)
    apns_env = serializers.CharField(allow_null=True)
    apns_certificates = serializers.CharField(
        allow_null=True, help_text="Subject and expiry, never key material."
    )
    safari_apns_certificates = serializers.CharField(required=False)
    apns_key_id = serializers.CharField(allow_null=True)
    apns_team_id = serializers.CharField(allow_null=True)
    apns_bundle_id = serializers.CharField(allow_null=True)
    safari_site_origin = serializers.CharField(allow_null=True)
    safari_push_id = serializers.CharField(
        allow_null=True, help_text="The Website Push ID (web.…) read from the Safari .p12 on upload."
    )
    safari_icon_256_256 = serializers.CharField(required=False)
    site_name = serializers.CharField(allow_null=True)
    android_gcm_sender_id = serializers.CharField(required=False)
    vapid_public_key = serializers.CharField(
        required=False,
        help_text="The app's VAPID public key (base64url, uncompressed P-256 point): the web SDK's "
        "applicationServerKey. Also at GET /apps/{app_id}/web_push_public_key, without a key.",
    )
    additional_data_is_root_payload = serializers.BooleanField()
    basic_auth_key = serializers.CharField(
        allow_null=True,
        help_text="The app's first App key, only in the POST /apps response; null afterwards.",
    )
    webhooks = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='Event webhooks ({"url", "events"}; never the secret), on GET and PUT /apps/{id}, '
        "when the app has any.",
    )

    def to_representation(self, app: App) -> dict:
        data = {
            "id": str(app.id),
            "name": app.name,
            "players": getattr(app, "players_total", 0),
            "messageable_players": getattr(app, "players_messageable", 0),
            "created_at": iso_millis(app.created_at),
            "updated_at": iso_millis(app.updated_at),
            "organization_id": str(app.organization_id),
            "gcm_key": None,
            "chrome_key": None,
            "apns_p8": None,
            "chrome_web_origin": app.chrome_web_origin,
            "chrome_web_default_notification_icon": app.chrome_web_default_notification_icon,
            "chrome_web_sub_domain": app.chrome_web_sub_domain,
            "apns_env": app.apns_env,
            "apns_certificates": certificate_summary(
                app.apns_certificate_subject, app.apns_certificate_expires_at
            ),
            "apns_key_id": app.apns_key_id,
            "apns_team_id": app.apns_team_id,
            "apns_bundle_id": app.apns_bundle_id,
            "safari_site_origin": app.safari_site_origin,
            "safari_push_id": app.safari_push_id,
            "site_name": app.site_name,
            "additional_data_is_root_payload": app.additional_data_is_root_payload,
            "basic_auth_key": self.context.get("basic_auth_key"),
        }
        optional = {
            "safari_apns_certificates": certificate_summary(
                app.safari_apns_certificate_subject, app.safari_apns_certificate_expires_at
            ),
            "safari_icon_256_256": app.safari_icon_256_256,
            "android_gcm_sender_id": app.android_gcm_sender_id,
            "vapid_public_key": app.vapid_public_key,
        }
        data.update({k: v for k, v in optional.items() if v})
        return data
