from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone as dj_timezone


class DeviceType(models.IntegerChoices):
    IOS = 0, "iOS"
    ANDROID = 1, "Android"
    AMAZON = 2, "Amazon"
    WINDOWS_PHONE = 3, "Windows Phone (MPNS)"
    CHROME_APP = 4, "Chrome App / Extension"
    CHROME_WEB = 5, "Chrome Web Push"
    WINDOWS = 6, "Windows (WNS)"
    SAFARI = 7, "Safari"
    FIREFOX = 8, "Firefox"
    MACOS = 9, "macOS"
    ALEXA = 10, "Alexa"
    EMAIL = 11, "Email"
    UNUSED = 12, "Unused"
    HUAWEI = 13, "Huawei"
    SMS = 14, "SMS"


class PlayerQuerySet(models.QuerySet):
    def subscribed(self):
        """OneSignal's "messageable": opted in, token accepted, and a token to send to."""
        return self.filter(notification_types__gt=0, invalid_identifier=False).exclude(
            Q(identifier__isnull=True) | Q(identifier="")
        )


class Player(models.Model):
    """One device or channel subscription (OneSignal player = v5 subscription)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: every index below starts with the app, so a lone app_id index only
    # cost writes (an SDK ping's UPDATE and a bulk import write into every index).
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="players", db_index=False)
    device_type = models.PositiveSmallIntegerField(choices=DeviceType.choices)
    identifier = models.CharField(max_length=1024, null=True, blank=True)
    external_user_id = models.CharField(max_length=255, null=True, blank=True)
    parent_player_id = models.UUIDField(null=True, blank=True)

    language = models.CharField(max_length=16, null=True, blank=True)
    timezone = models.IntegerField(null=True, blank=True)
    timezone_id = models.CharField(max_length=64, null=True, blank=True)
    country = models.CharField(max_length=2, null=True, blank=True)
    game_version = models.CharField(max_length=64, null=True, blank=True)
    device_model = models.CharField(max_length=100, null=True, blank=True)
    device_os = models.CharField(max_length=64, null=True, blank=True)
    ad_id = models.CharField(max_length=100, null=True, blank=True)
    sdk = models.CharField(max_length=32, null=True, blank=True)
    sdk_type = models.CharField(max_length=32, null=True, blank=True)
    android_package = models.CharField(max_length=200, null=True, blank=True)
    carrier = models.CharField(max_length=100, null=True, blank=True)
    net_type = models.SmallIntegerField(null=True, blank=True)
    rooted = models.BooleanField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    tags = models.JSONField(default=dict, blank=True)
    session_count = models.PositiveIntegerField(default=1)
    playtime = models.PositiveBigIntegerField(default=0)
    amount_spent = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    badge_count = models.IntegerField(default=0)
    notification_types = models.IntegerField(default=1)
    invalid_identifier = models.BooleanField(default=False)
    # Why the player stopped being messageable: a provider's permanent error ("Unregistered",
    # "UNREGISTERED", "bounced", ...) or "unsubscribed" (the email one-click link).
    unsubscribed_reason = models.CharField(max_length=64, blank=True, default="", db_default="")
    test_type = models.PositiveSmallIntegerField(null=True, blank=True)

    lat = models.FloatField(null=True, blank=True)
    long = models.FloatField(null=True, blank=True)
    location_meta = models.JSONField(default=dict, blank=True)  # loc_acc, loc_type, loc_bg, loc_time_stamp

    web_auth = models.CharField(max_length=200, null=True, blank=True)
    web_p256 = models.CharField(max_length=200, null=True, blank=True)

    created_at = models.DateTimeField(default=dj_timezone.now)
    last_active = models.DateTimeField(default=dj_timezone.now)

    objects = PlayerQuerySet.as_manager()

    class Meta:
        constraints = [
            # The upsert key of POST /players; players without a token may repeat.
            models.UniqueConstraint(
                fields=["app", "identifier"],
                condition=Q(identifier__isnull=False) & ~Q(identifier=""),
                name="uniq_player_identifier_per_app",
            ),
        ]
        indexes = [
            models.Index(fields=["app", "id"], name="player_app_id_idx"),
            models.Index(fields=["app", "external_user_id"], name="player_app_external_idx"),
            models.Index(fields=["app", "last_active"], name="player_app_last_active_idx"),
            # Indexes for the filter language (segments/filters.py). Tag equality and in_array
            # compile to ``tags @> {...}``, which jsonb_path_ops answers (it is smaller and faster
            # than the default jsonb_ops, but cannot answer key existence: ``exists`` scans).
            GinIndex(fields=["tags"], opclasses=["jsonb_path_ops"], name="player_tags_gin"),
            models.Index(fields=["app", "created_at"], name="player_app_created_idx"),
            # session_count changes together with last_active (already indexed), so indexing it
            # costs no extra HOT updates. playtime is not indexed: on_focus pings update it alone
            # and an index would make every one of them a non-HOT update.
            models.Index(fields=["app", "session_count"], name="player_app_sessions_idx"),
            models.Index(fields=["app", "amount_spent"], name="player_app_spent_idx"),
            models.Index(fields=["app", "language"], name="player_app_language_idx"),
            # The country filter is case-insensitive: it compares UPPER(country).
            models.Index(F("app"), Upper("country"), name="player_app_country_idx"),
            # The location filter's bounding box (lat range, long checked from the index).
            models.Index(fields=["app", "lat", "long"], name="player_app_lat_long_idx"),
            # Subscribed players in id order: "Subscribed Users" counts and recipient paging.
            # The condition must stay exactly PlayerQuerySet.subscribed() (and segments.selectors
            # SUBSCRIBED) for the planner to match it.
            models.Index(
                fields=["app", "id"],
                condition=Q(notification_types__gt=0, invalid_identifier=False)
                & ~(Q(identifier__isnull=True) | Q(identifier="")),
                name="player_app_subscribed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_device_type_display()} {self.id}"

    @property
    def is_subscribed(self) -> bool:
        return self.notification_types > 0 and not self.invalid_identifier and bool(self.identifier)


class Purchase(models.Model):
    player = models.ForeignKey(Player, on_delete=models.CASCADE, related_name="purchases")
    sku = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    iso = models.CharField(max_length=3, blank=True, default="USD")
    imported = models.BooleanField(default=False, help_text="Sent with existing=true (purchase history).")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["player", "sku"]),
            # bought_sku: "players with a purchase of this SKU" starts from the SKU.
            models.Index(fields=["sku", "player"], name="purchase_sku_player_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.amount} {self.iso}"


class CsvExport(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    class Kind(models.TextChoices):
        PLAYERS = "players", "Players (csv_export)"
        SENT = "sent", "Notification history: sent"
        CLICKED = "clicked", "Notification history: clicked"
        EVENTS = "events", "Notification events (export_events)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="csv_exports")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PLAYERS)
    notification = models.ForeignKey(
        "notifications.Notification", on_delete=models.CASCADE, null=True, blank=True, related_name="exports"
    )
    # Where to mail the link when ready (notification history's ``email``), and the link itself.
    email = models.EmailField(null=True, blank=True)
    url = models.URLField(max_length=500, blank=True, default="")
    # The unguessable part of the download URL (a v4 UUID's hex).
    token = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    extra_fields = models.JSONField(default=list, blank=True)
    last_active_since = models.DateTimeField(null=True, blank=True)
    segment_name = models.CharField(max_length=128, null=True, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["app", "status"])]

    def __str__(self) -> str:
        return self.file_name

    FILE_PREFIXES = {
        "players": "users",
        "sent": "history_sent",
        "clicked": "history_clicked",
        "events": "events",
    }

    @property
    def file_name(self) -> str:
        return f"{self.FILE_PREFIXES[self.kind]}_{self.token}_{self.created_at:%Y-%m-%d}.csv.gz"

    @property
    def relative_path(self) -> str:
        return f"csv_exports/{self.app_id}/{self.file_name}"


class CsvImport(models.Model):
    """A CSV file of players being upserted into an app (players/imports.py does the work).

    Progress is committed after every chunk: ``rows_processed`` rows have been read and either
    written (``rows_created`` + ``rows_updated``) or refused (``rows_failed``, the first
    ``errors`` of them listed as ``{"row", "error"}``; row 1 is the first line after the header).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="csv_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the uploader called the file, and where it is kept under MEDIA_ROOT while it waits.
    file_name = models.CharField(max_length=255, blank=True, default="")
    relative_path = models.CharField(max_length=300)
    size_bytes = models.PositiveBigIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows_processed = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "CSV import"
        indexes = [models.Index(fields=["app", "status"], name="csv_import_app_status_idx")]

    def __str__(self) -> str:
        return f"{self.file_name or 'players.csv'} ({self.status})"

    @property
    def percent_read(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        return min(100, self.bytes_read * 100 // self.size_bytes) if self.size_bytes else 0
