"""Request and response shapes for the docs. Requests are validated by notifications.validation,
because OneSignal's order of checks and exact messages matter more than field-by-field errors."""

from __future__ import annotations

from rest_framework import serializers


class LanguageMap(serializers.DictField):
    child = serializers.CharField()


class NotificationInputSerializer(serializers.Serializer):
    app_id = serializers.UUIDField()
    contents = LanguageMap(required=False)
    headings = LanguageMap(required=False)
    subtitle = LanguageMap(required=False)
    included_segments = serializers.ListField(child=serializers.CharField(), required=False)
    excluded_segments = serializers.ListField(child=serializers.CharField(), required=False)
    filters = serializers.ListField(child=serializers.DictField(), required=False)
    include_player_ids = serializers.ListField(child=serializers.UUIDField(), required=False)
    include_subscription_ids = serializers.ListField(child=serializers.UUIDField(), required=False)
    include_external_user_ids = serializers.ListField(child=serializers.CharField(), required=False)
    channel_for_external_user_ids = serializers.ChoiceField(["push", "email", "sms"], required=False)
    include_aliases = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    target_channel = serializers.ChoiceField(["push", "email", "sms"], required=False)
    include_ios_tokens = serializers.ListField(child=serializers.CharField(), required=False)
    include_android_reg_ids = serializers.ListField(child=serializers.CharField(), required=False)
    include_chrome_web_reg_ids = serializers.ListField(child=serializers.CharField(), required=False)
    email_to = serializers.ListField(child=serializers.CharField(), required=False)
    include_phone_numbers = serializers.ListField(child=serializers.CharField(), required=False)
    isIos = serializers.BooleanField(required=False)
    isAndroid = serializers.BooleanField(required=False)
    isAnyWeb = serializers.BooleanField(required=False)
    data = serializers.DictField(required=False)
    url = serializers.CharField(required=False)
    buttons = serializers.ListField(child=serializers.DictField(), required=False, max_length=3)
    ios_badgeType = serializers.ChoiceField(["None", "SetTo", "Increase"], required=False)
    ios_badgeCount = serializers.IntegerField(required=False)
    collapse_id = serializers.CharField(required=False, max_length=64)
    priority = serializers.IntegerField(required=False)
    ttl = serializers.IntegerField(required=False)
    send_after = serializers.CharField(required=False)
    delayed_option = serializers.ChoiceField(["timezone", "last-active"], required=False)
    delivery_time_of_day = serializers.CharField(required=False)
    throttle_rate_per_minute = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False, max_length=128)
    template_id = serializers.UUIDField(required=False)
    idempotency_key = serializers.CharField(required=False, max_length=255)


class CreateNotificationOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"" when nobody was reachable')
    recipients = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True, required=False)
    errors = serializers.JSONField(required=False)


class DeliveryStatsSerializer(serializers.Serializer):
    successful = serializers.IntegerField(allow_null=True)
    failed = serializers.IntegerField(allow_null=True)
    errored = serializers.IntegerField(allow_null=True)
    converted = serializers.IntegerField(allow_null=True)
    received = serializers.IntegerField(allow_null=True)


class NotificationOutputSerializer(NotificationInputSerializer):
    id = serializers.UUIDField()
    # The read model says "immediate" when no delayed_option was sent (onesignal-api.md §7).
    delayed_option = serializers.ChoiceField(["immediate", "timezone", "last-active"])
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    errored = serializers.IntegerField()
    converted = serializers.IntegerField()
    received = serializers.IntegerField()
    remaining = serializers.IntegerField()
    queued_at = serializers.IntegerField()
    send_after = serializers.IntegerField(allow_null=True)
    completed_at = serializers.IntegerField(allow_null=True)
    canceled = serializers.BooleanField()
    platform_delivery_stats = serializers.DictField(child=DeliveryStatsSerializer())


class NotificationPageSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    notifications = NotificationOutputSerializer(many=True)


class DeviceEventInputSerializer(serializers.Serializer):
    app_id = serializers.UUIDField()
    player_id = serializers.UUIDField()
    opened = serializers.BooleanField(required=False)
    device_type = serializers.IntegerField(required=False)


# --- Outcomes (onesignal-api.md §3.5). Requests are checked by notifications.outcomes, for clear
# messages that name the field; these shapes are for the docs.


class OutcomeMeasureInputSerializer(serializers.Serializer):
    app_id = serializers.UUIDField()
    device_type = serializers.IntegerField(min_value=0, max_value=14)
    id = serializers.CharField(max_length=128, help_text="The outcome name")
    weight = serializers.FloatField(required=False, help_text="Summed by <name>.sum; 0 when absent")
    timestamp = serializers.IntegerField(required=False, help_text="Unix seconds; now when absent")
    direct = serializers.BooleanField(
        required=False, help_text="Absent: unattributed; true: direct; false: influenced"
    )
    notification_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)


class OutcomeSourceSerializer(serializers.Serializer):
    notification_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    in_app_message_ids = serializers.ListField(child=serializers.CharField(), required=False, max_length=100)


class OutcomeSourcesSerializer(serializers.Serializer):
    direct = OutcomeSourceSerializer(required=False)
    indirect = OutcomeSourceSerializer(required=False)


class OutcomeMeasureSourcesInputSerializer(serializers.Serializer):
    app_id = serializers.UUIDField()
    device_type = serializers.IntegerField(min_value=0, max_value=14)
    id = serializers.CharField(max_length=128, help_text="The outcome name")
    weight = serializers.FloatField(required=False, help_text="Summed by <name>.sum; 0 when absent")
    timestamp = serializers.IntegerField(required=False, help_text="Unix seconds; now when absent")
    sources = OutcomeSourcesSerializer(
        required=False,
        help_text="Direct when direct.notification_ids is non-empty, else influenced when "
        "indirect.notification_ids is, else unattributed",
    )


class OutcomeDataSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The outcome name")
    value = serializers.FloatField(help_text="The count, or the summed weight (an integer when whole)")
    aggregation = serializers.ChoiceField(["count", "sum"])


class OutcomesOutputSerializer(serializers.Serializer):
    outcomes = OutcomeDataSerializer(many=True)


class HistoryInputSerializer(serializers.Serializer):
    app_id = serializers.UUIDField()
    events = serializers.ChoiceField(["sent", "clicked"])
    email = serializers.EmailField(required=False)


class HistoryOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    destination_url = serializers.URLField(help_text="403 until the CSV is ready")
