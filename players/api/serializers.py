from __future__ import annotations

from rest_framework import serializers

from players.models import Player


def unix(value) -> int | None:
    return int(value.timestamp()) if value is not None else None


class PlayerInputSerializer(serializers.Serializer):
    """Every writable Player field (onesignal-api.md §5.2). All optional: POST checks device_type."""

    app_id = serializers.CharField(required=False)
    device_type = serializers.JSONField(required=False, help_text="0 to 14, see onesignal-api.md §5.1")
    identifier = serializers.JSONField(required=False, help_text="Push token, email address or E.164 phone")
    language = serializers.JSONField(required=False)
    timezone = serializers.IntegerField(required=False, allow_null=True, min_value=-50400, max_value=50400)
    timezone_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    game_version = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    device_model = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    device_os = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    ad_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    sdk = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=32)
    sdk_type = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=32)
    android_package = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    carrier = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    net_type = serializers.IntegerField(required=False, allow_null=True, min_value=-32768, max_value=32767)
    rooted = serializers.BooleanField(required=False, allow_null=True)
    ip = serializers.IPAddressField(required=False, allow_null=True)
    session_count = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    tags = serializers.JSONField(required=False, help_text='String values; "" or null deletes a key')
    amount_spent = serializers.DecimalField(
        required=False, max_digits=14, decimal_places=2, min_value=0, coerce_to_string=False
    )
    created_at = serializers.IntegerField(required=False, min_value=0, max_value=2**37)
    last_active = serializers.IntegerField(required=False, min_value=0, max_value=2**37)
    playtime = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    badge_count = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)
    notification_types = serializers.IntegerField(required=False, min_value=-99, max_value=99)
    test_type = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2)
    lat = serializers.FloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    long = serializers.FloatField(required=False, allow_null=True, min_value=-180, max_value=180)
    loc_acc = serializers.FloatField(required=False, allow_null=True)
    loc_type = serializers.IntegerField(required=False, allow_null=True)
    loc_bg = serializers.BooleanField(required=False, allow_null=True)
    loc_time_stamp = serializers.IntegerField(required=False, allow_null=True)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_null=True, allow_blank=True)
    external_user_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    parent_player_id = serializers.UUIDField(required=False, allow_null=True)
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=320)
    sms_number = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=20)
    web_auth = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    web_p256 = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    identifier_auth_hash = serializers.CharField(required=False, allow_null=True, write_only=True)
    external_user_id_auth_hash = serializers.CharField(required=False, allow_null=True, write_only=True)
    email_auth_hash = serializers.CharField(required=False, allow_null=True, write_only=True)
    sms_auth_hash = serializers.CharField(required=False, allow_null=True, write_only=True)


class SessionInputSerializer(PlayerInputSerializer):
    """on_session: any Player field, applied as for PUT, plus the session bump."""


class PurchaseSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=200)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, default=0)
    iso = serializers.CharField(max_length=3, required=False, default="USD")


class PurchaseInputSerializer(serializers.Serializer):
    app_id = serializers.CharField(required=False)
    purchases = PurchaseSerializer(many=True, allow_empty=False, max_length=100)
    existing = serializers.BooleanField(required=False, default=False)


class FocusInputSerializer(serializers.Serializer):
    app_id = serializers.CharField(required=False)
    type = serializers.IntegerField(required=False)
    state = serializers.CharField(required=False)
    active_time = serializers.IntegerField(min_value=0, max_value=86400 * 7)
    device_type = serializers.JSONField(required=False)
    net_type = serializers.IntegerField(required=False, allow_null=True)
    # The attributed variant: the session counts as os__session_duration, direct (true) or
    # influenced (false) by these notifications; absent means unattributed.
    direct = serializers.BooleanField(required=False, allow_null=True)
    notification_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, allow_null=True, max_length=100
    )


class TagsInputSerializer(serializers.Serializer):
    tags = serializers.JSONField(help_text='String values; "" or null deletes a key')


class CsvExportInputSerializer(serializers.Serializer):
    extra_fields = serializers.ListField(child=serializers.CharField(), required=False, max_length=20)
    last_active_since = serializers.CharField(required=False, help_text="Unix seconds, as a string")
    segment_name = serializers.CharField(required=False, max_length=128)


class CsvExportOutputSerializer(serializers.Serializer):
    csv_file_url = serializers.URLField()


class PlayerOutputSerializer(serializers.Serializer):
    """The Player object. Fields OneSignal's clients type as non-nullable (language, country,
    lat, long) are omitted when unset; other unset fields are null."""

    id = serializers.UUIDField()
    app_id = serializers.UUIDField()
    identifier = serializers.CharField(allow_null=True)
    session_count = serializers.IntegerField()
    language = serializers.CharField(required=False)
    timezone = serializers.IntegerField(allow_null=True)
    game_version = serializers.CharField(allow_null=True)
    device_os = serializers.CharField(allow_null=True)
    device_type = serializers.IntegerField()
    device_model = serializers.CharField(allow_null=True)
    ad_id = serializers.CharField(allow_null=True)
    tags = serializers.DictField(child=serializers.CharField(), allow_null=True)
    last_active = serializers.IntegerField()
    playtime = serializers.IntegerField()
    amount_spent = serializers.FloatField()
    created_at = serializers.IntegerField()
    invalid_identifier = serializers.BooleanField()
    badge_count = serializers.IntegerField()
    sdk = serializers.CharField(allow_null=True)
    test_type = serializers.IntegerField(allow_null=True)
    external_user_id = serializers.CharField(allow_null=True)
    notification_types = serializers.IntegerField()
    country = serializers.CharField(required=False)
    lat = serializers.FloatField(required=False)
    long = serializers.FloatField(required=False)

    def to_representation(self, player: Player) -> dict:
        data = {
            "id": str(player.id),
            "app_id": str(player.app_id),
            "identifier": player.identifier,
            "session_count": player.session_count,
            "timezone": player.timezone,
            "game_version": player.game_version,
            "device_os": player.device_os,
            "device_type": player.device_type,
            "device_model": player.device_model,
            "ad_id": player.ad_id,
            "tags": player.tags or {},
            "last_active": unix(player.last_active),
            "playtime": player.playtime,
            "amount_spent": float(player.amount_spent),
            "created_at": unix(player.created_at),
            "invalid_identifier": player.invalid_identifier,
            "badge_count": player.badge_count,
            "sdk": player.sdk,
            "test_type": player.test_type,
            "external_user_id": player.external_user_id,
            "notification_types": player.notification_types,
        }
        for field in ("language", "country", "lat", "long"):
            value = getattr(player, field)
            if value is not None and value != "":
                data[field] = value
        return data


class PlayerPageSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    players = PlayerOutputSerializer(many=True)


class CsvImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1 is the first line after the header")
    error = serializers.CharField()


class CsvImportOutputSerializer(serializers.Serializer):
    """A CSV import job (Herald's extension; OneSignal has no import endpoint)."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "running", "completed", "failed"])
    file_name = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    size_bytes = serializers.IntegerField()
    bytes_read = serializers.IntegerField()
    rows_processed = serializers.IntegerField()
    rows_created = serializers.IntegerField()
    rows_updated = serializers.IntegerField(help_text="Existing players whose values changed")
    rows_failed = serializers.IntegerField()
    errors = CsvImportErrorSerializer(many=True, help_text="The first 100 rows refused")
    error = serializers.CharField(allow_null=True, help_text="Why the whole import failed")
    created_at = serializers.IntegerField()
    started_at = serializers.IntegerField(allow_null=True)
    finished_at = serializers.IntegerField(allow_null=True)

    def to_representation(self, job) -> dict:
        return {
            "id": str(job.id),
            "status": job.status,
            "file_name": job.file_name,
            "columns": job.columns,
            "size_bytes": job.size_bytes,
            "bytes_read": job.bytes_read,
            "rows_processed": job.rows_processed,
            "rows_created": job.rows_created,
            "rows_updated": job.rows_updated,
            "rows_failed": job.rows_failed,
            "errors": job.errors,
            "error": job.error or None,
            "created_at": unix(job.created_at),
            "started_at": unix(job.started_at),
            "finished_at": unix(job.finished_at),
        }
