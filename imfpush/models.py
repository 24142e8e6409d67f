"""MobileFirst's view of the shared model (mobilefirst-push-api.md §1.1).

An MFP application is an App, a device registration is a Player. What MFP has and OneSignal
does not lives here: the application id and its enabled flag, the device's own id and the
fields MFP returns for it, topic tags with their subscriptions, and the confidential clients
that obtain OAuth tokens.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication

PUSH_ALL = "Push.all"
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,255}")
APPLICATION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class ConfidentialClient(AbstractApplication):
    """An OAuth 2 confidential client (MFP's ``{id, secret, displayName, allowedScope}``).

    The client id is chosen by the operator and names the tenant: every token it obtains acts
    inside ``organization``. The secret is hashed by django-oauth-toolkit and shown once.
    """

    organization = models.ForeignKey(
        "apps.Organization", on_delete=models.CASCADE, related_name="confidential_clients"
    )
    allowed_scope = models.TextField(
        default="*",
        help_text="Space-separated scope patterns; * matches any characters (e.g. "
        "'messages.write push.application.com.acme.*'). A bare * allows every scope.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth confidential client"

    def clean(self) -> None:
        if not CLIENT_ID_PATTERN.fullmatch(self.client_id or ""):
            raise ValidationError({"client_id": "Use 1 to 255 of A-Z a-z 0-9 . _ ~ -"})
        self.client_type = self.CLIENT_CONFIDENTIAL
        self.authorization_grant_type = self.GRANT_CLIENT_CREDENTIALS


class MfpApplication(models.Model):
    """The App's MobileFirst application id (a bundle id or package name) and enabled flag."""

    app = models.OneToOneField("apps.App", on_delete=models.CASCADE, primary_key=True, related_name="mfp")
    organization = models.ForeignKey("apps.Organization", on_delete=models.CASCADE, related_name="+")
    application_id = models.CharField(max_length=255)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The file name of the .p12 uploaded through PUT settings/apnsConf (MFP echoes it back), and
    # the SHA-256 of the stored p12 it names: a p12 replaced through the OneSignal API has no name.
    apns_certificate_name = models.CharField(max_length=255, blank=True, default="", editable=False)
    apns_certificate_digest = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "application_id"], name="uniq_mfp_application_id"
            ),
        ]
        verbose_name = "MobileFirst application"

    def __str__(self) -> str:
        return self.application_id


class Registration(models.Model):
    """The MFP device record of a Player registered through ``/imfpush/v1``.

    Players registered through the OneSignal API have none; MFP shows them with their player id
    as ``deviceId``. ``sms_player`` is the SMS channel Player for ``phoneNumber``, which is
    how ``notificationType`` 2 and 3 reach the phone through the ordinary SMS pipeline.
    """

    player = models.OneToOneField(
        "players.Player", on_delete=models.CASCADE, primary_key=True, related_name="mfp_registration"
    )
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="+")
    device_id = models.CharField(max_length=255)
    phone_number = models.CharField(max_length=64, blank=True, default="")
    sms_player = models.ForeignKey(
        "players.Player", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_agent = models.CharField(max_length=512, blank=True, default="")
    variables = models.JSONField(default=dict, blank=True)
    created_mode = models.CharField(max_length=16, default="API")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app", "device_id"], name="uniq_mfp_device_id"),
        ]

    def __str__(self) -> str:
        return self.device_id


class Tag(models.Model):
    """An MFP topic tag; devices subscribe to it and messages target it by name."""

    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="mfp_tags")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    created_mode = models.CharField(max_length=16, default="API")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="uniq_mfp_tag_name")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """A device subscribed to a tag. The id is the opaque ``subscriptionId``."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="subscriptions")
    player = models.ForeignKey("players.Player", on_delete=models.CASCADE, related_name="mfp_subscriptions")
    created_mode = models.CharField(max_length=16, default="API")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "player"], name="uniq_mfp_subscription")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.player_id} → {self.tag_id}"
