"""``/imfpush/v1`` routes. Every path works with and without a trailing slash (§1.2)."""

from __future__ import annotations

from django.urls import re_path

from core.api.routing import api_path
from imfpush.api.apps import ApplicationCollectionView, ApplicationDetailView, ApplicationStatusView
from imfpush.api.devices import DeviceCollectionView, DeviceDetailView
from imfpush.api.errors import unknown_path
from imfpush.api.health import HealthView
from imfpush.api.messages import MessageBulkView, MessageCollectionView, MessageDetailView
from imfpush.api.settings import (
    ApnsCertView,
    ApnsConfView,
    GcmConfPublicView,
    GcmConfView,
    SettingsView,
    SmsConfView,
    WnsConfView,
)
from imfpush.api.subscriptions import SubscriptionCollectionView, SubscriptionDetailView
from imfpush.api.tags import TagCollectionView, TagDetailView
from imfpush.api.webhooks import WebhookCollectionView, WebhookDetailView
from imfpush.schema import MfpSchemaView, MfpSwaggerView

APP = "apps/<str:application_id>"

urlpatterns = [
    *api_path("health/status", HealthView.as_view(), "mfp-health"),
    *api_path("apps", ApplicationCollectionView.as_view(), "mfp-apps"),
    *api_path(APP, ApplicationDetailView.as_view(), "mfp-app"),
    *api_path(f"{APP}/status", ApplicationStatusView.as_view(), "mfp-app-status"),
    *api_path(f"{APP}/devices", DeviceCollectionView.as_view(), "mfp-devices"),
    *api_path(f"{APP}/devices/<str:device_id>", DeviceDetailView.as_view(), "mfp-device"),
    *api_path(f"{APP}/tags", TagCollectionView.as_view(), "mfp-tags"),
    *api_path(f"{APP}/tags/<str:tag_name>", TagDetailView.as_view(), "mfp-tag"),
    *api_path(f"{APP}/subscriptions", SubscriptionCollectionView.as_view(), "mfp-subscriptions"),
    *api_path(
        f"{APP}/subscriptions/<str:subscription_id>", SubscriptionDetailView.as_view(), "mfp-subscription"
    ),
    *api_path(f"{APP}/settings", SettingsView.as_view(), "mfp-settings"),
    *api_path(f"{APP}/settings/apnsConf", ApnsConfView.as_view(), "mfp-settings-apns"),
    *api_path(f"{APP}/settings/apnsCert", ApnsCertView.as_view(), "mfp-settings-apns-cert"),
    *api_path(f"{APP}/settings/gcmConf", GcmConfView.as_view(), "mfp-settings-gcm"),
    *api_path(f"{APP}/settings/gcmConfPublic", GcmConfPublicView.as_view(), "mfp-settings-gcm-public"),
    *api_path(f"{APP}/settings/wnsConf", WnsConfView.as_view(), "mfp-settings-wns"),
    *api_path(f"{APP}/settings/smsConf", SmsConfView.as_view(), "mfp-settings-sms"),
    *api_path(f"{APP}/webhooks", WebhookCollectionView.as_view(), "mfp-webhooks"),
    *api_path(f"{APP}/webhooks/<str:webhook_name>", WebhookDetailView.as_view(), "mfp-webhook"),
    *api_path(f"{APP}/messages", MessageCollectionView.as_view(), "mfp-messages"),
    *api_path(f"{APP}/messages/bulk", MessageBulkView.as_view(), "mfp-messages-bulk"),
    *api_path(f"{APP}/messages/<str:message_id>", MessageDetailView.as_view(), "mfp-message"),
    *api_path("swagger.json", MfpSchemaView.as_view(), "mfp-swagger"),
    *api_path("docs", MfpSwaggerView.as_view(), "mfp-docs"),
    re_path(r"^.*$", unknown_path),
]
