from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Template(models.Model):
    """Stored notification content, referenced by ``template_id`` (managed in the dashboard)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=128)
    fields = models.JSONField(default=dict, help_text="Notification fields: contents, headings, data, url, …")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"

    class Kind(models.IntegerChoices):
        DASHBOARD = 0, "Dashboard"
        API = 1, "API"
        AUTOMATED = 3, "Automated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="notifications")
    kind = models.PositiveSmallIntegerField(choices=Kind.choices, default=Kind.API)
    # The request as sent (after template merge), so GET can echo every field back.
    request = models.JSONField()
    name = models.CharField(max_length=128, null=True, blank=True)
    channel = models.CharField(max_length=8, default="push")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    response = models.JSONField(default=dict, help_text="The POST response, replayed for the idempotency key")

    queued_at = models.DateTimeField(default=timezone.now)
    send_after = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled = models.BooleanField(default=False)
    delayed_option = models.CharField(max_length=12, null=True, blank=True)
    delivery_time_of_day = models.TimeField(null=True, blank=True)
    throttle_rate_per_minute = models.PositiveIntegerField(null=True, blank=True)
    ttl = models.PositiveIntegerField(default=259_200)

    # Fan-out progress: players are streamed in id order; the cursor makes it resumable.
    fanout_cursor = models.UUIDField(null=True, blank=True)
    fanout_done = models.BooleanField(default=False)
    fanout_heartbeat = models.DateTimeField(null=True, blank=True)

    recipients = models.PositiveIntegerField(default=0)
    successful = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    received = models.PositiveIntegerField(default=0)
    remaining = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uniq_notification_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["app", "-queued_at"], name="notification_app_queued_idx"),
            models.Index(fields=["status", "send_after"], name="notification_due_idx"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.id)


class PlatformStats(models.Model):
    """Per-platform counters (``platform_delivery_stats``), updated atomically per batch."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="platform_stats")
    platform = models.CharField(max_length=20)
    successful = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    received = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "platform"], name="uniq_platform_stats")
        ]

    def __str__(self) -> str:
        return f"{self.platform} of {self.notification_id}"


class DeliveryBatch(models.Model):
    """A few hundred to a few thousand recipients of one device type, sent by one task.

    pending -> sending (claimed by a conditional UPDATE, with a lease) -> done | pending (retry)
    A sending batch whose lease ran out (worker killed) is put back to pending by the sweeper.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        CANCELED = "canceled", "Canceled"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="batches")
    device_type = models.PositiveSmallIntegerField()
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    available_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Outcomes recorded on the batch's delivery rows, step by step, and not yet added to the
    # notification's and the platform's counters: they are added once, when the batch ends
    # (pipeline.batch_outcomes_count), so that the steps of concurrent batches never wait for
    # each other on those two rows.
    uncounted_sent = models.PositiveIntegerField(default=0)
    uncounted_failed = models.PositiveIntegerField(default=0)
    uncounted_errored = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["status", "available_at"], name="batch_due_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="batch_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.size} x device type {self.device_type}, {self.status})"


class Delivery(models.Model):
    """One recipient of one notification: the audit trail, the stats source and the dedupe key."""

    class Status(models.IntegerChoices):
        QUEUED = 0, "Queued"
        SENT = 1, "Sent"
        FAILED = 2, "Failed"
        ERRORED = 3, "Errored"
        CANCELED = 4, "Canceled"

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    batch = models.ForeignKey(DeliveryBatch, on_delete=models.CASCADE, related_name="deliveries")
    player = models.ForeignKey("players.Player", on_delete=models.CASCADE, related_name="deliveries")
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.QUEUED)
    error = models.CharField(max_length=64, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "player"], name="uniq_delivery_per_player"),
        ]
        indexes = [models.Index(fields=["batch", "status"], name="delivery_batch_status_idx")]

    def __str__(self) -> str:
        return f"{self.player_id} ← {self.notification_id} ({self.get_status_display()})"


class OutcomeEvent(models.Model):
    """One outcome an SDK reported (``/outcomes/measure*``) or a built-in one Herald records
    (``os__session_duration`` on every on_focus). Read back by ``GET /apps/{id}/outcomes``.

    Clicks (``os__click``) are not stored here: they are ``Delivery.opened_at``.
    """

    class Attribution(models.TextChoices):
        DIRECT = "direct", "Direct"
        INFLUENCED = "influenced", "Influenced"
        UNATTRIBUTED = "unattributed", "Unattributed"

    id = models.BigAutoField(primary_key=True)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="outcome_events")
    name = models.CharField(max_length=128)
    weight = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    device_type = models.PositiveSmallIntegerField()
    attribution = models.CharField(max_length=12, choices=Attribution.choices)
    notification_ids = models.JSONField(default=list, blank=True)
    player = models.ForeignKey(
        "players.Player", on_delete=models.SET_NULL, null=True, blank=True, related_name="outcome_events"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["app", "name", "created_at"], name="outcome_app_name_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.attribution}, {self.weight})"
