"""Event webhooks: where an App's events are sent, and the log of every call.

One machinery serves both APIs: a ``Webhook`` comes from the MobileFirst API (``source="mfp"``,
events such as ``onDeviceRegister``) or from the OneSignal side (``source="onesignal"``, events
such as ``notification.sent``, set through ``PUT /apps/{id}`` or the dashboard). Each event that
matches a webhook becomes one ``WebhookCall`` row, written before anything is sent: that row is the
delivery's state machine, its retry counter and its audit trail.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from core.crypto import EncryptedTextField

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """A fresh signing secret (256 bits, URL-safe)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class Webhook(models.Model):
    class Source(models.TextChoices):
        MFP = "mfp", "MobileFirst (/imfpush)"
        ONESIGNAL = "onesignal", "OneSignal API / dashboard"

    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="webhooks")
    # MFP's webhookName: 1 to 255 characters, immutable. OneSignal-side webhooks get generated names.
    name = models.CharField(max_length=255)
    url = models.CharField(max_length=2048)
    event_types = models.JSONField(default=list, blank=True)
    # HMAC-SHA256 key for the X-Herald-Signature header; Fernet-encrypted at rest, never echoed.
    secret = EncryptedTextField(default=new_secret)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MFP)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            # Unique per app and API: an MFP name never collides with a dashboard webhook's.
            models.UniqueConstraint(fields=["app", "source", "name"], name="uniq_webhook_name"),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name

    def listens_to(self, event_type: str) -> bool:
        return event_type in (self.event_types or [])


class WebhookCall(models.Model):
    """One event for one webhook: pending → sending → delivered, or back to pending for a retry,
    or failed once the attempts are used up (or the URL became unsafe)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="calls")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    # What went wrong, for the operator: a status line or a network error, never a secret.
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Not before this time (the retry's backoff); also the lease start while sending.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookcall_due"),
            models.Index(fields=["webhook", "-created_at"], name="webhookcall_log"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.webhook_id} ({self.status})"
