"""Segments: named, saved filter lists that notifications target by name (onesignal-api.md §3.4).

Custom segments are rows of ``Segment``. The built-in segments are defined here in code and
exist for every app without a row or a per-app migration: the selectors and the list endpoint
merge them in. Each has a stable id, ``uuid5(app.id, name)``, and is read-only (PATCH and DELETE
answer 403), so a definition changed here applies to every app at once.

§ Built-in segments (our choice). "Member" means "matches the definition"; whatever a segment
§ holds, counts (``subscriber_count``) and notification audiences only ever take its
§ *subscribed* players (§5.2, §6.4: "only subscribed players are ever recipients").
§
§ - ``Subscribed Users``: every subscribed player (notification_types > 0, a token, not
§   invalid_identifier). It is not expressible in the filter language, so its filters are [].
§ - ``All``: the same players as Subscribed Users, unless the app has a custom segment
§   literally named "All", which then replaces it (OneSignal 5.x's wording).
§ - ``Active Users``: a session within the last 7 days (last_session < 168 hours).
§ - ``Engaged Users``: more than 10 sessions, and a session within the last 7 days.
§ - ``Inactive Users``: no session for more than 7 days (last_session > 168 hours).
§
§ Active and Inactive partition the app's players (a session exactly 168 h ago aside).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db import models
from django.utils import timezone


class Segment(models.Model):
    class Source(models.TextChoices):
        DEFAULT = "default", "Default"
        CUSTOM = "custom", "Custom"
        QUICKSTART = "quickstart", "Quickstart"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=255, null=True, blank=True)
    # The normalised filter list (segments.filters.validate_filters), 1 to 200 entries.
    filters = models.JSONField(default=list)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CUSTOM)
    read_only = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Names are what included_segments / excluded_segments refer to (§3.4).
            models.UniqueConstraint(fields=["app", "name"], name="uniq_segment_name_per_app"),
        ]
        indexes = [models.Index(fields=["app", "created_at", "id"], name="segment_app_created_idx")]

    def __str__(self) -> str:
        return self.name


# --- built-ins ----------------------------------------------------------------------------------

SUBSCRIBED_USERS = "Subscribed Users"
ALL = "All"
ACTIVE_HOURS = "168"  # 7 days
ENGAGED_MIN_SESSIONS = "10"  # "more than 10 sessions"


@dataclass(frozen=True)
class BuiltinSegment:
    """A segment every app has. ``filters`` is its whole definition, except for the two
    subscription segments (``subscribed_only``), whose definition is the subscription itself."""

    name: str
    description: str
    filters: list[dict] = field(default_factory=list)
    subscribed_only: bool = False

    def segment_id(self, app_id: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(app_id, self.name)


BUILTIN_SEGMENTS: tuple[BuiltinSegment, ...] = (
    BuiltinSegment(SUBSCRIBED_USERS, "All subscribed players", subscribed_only=True),
    BuiltinSegment(
        ALL,
        "All subscribed players (replaced by a custom segment named All, if any)",
        subscribed_only=True,
    ),
    BuiltinSegment(
        "Active Users",
        "Players with a session in the last 7 days",
        [{"field": "last_session", "relation": "<", "hours_ago": ACTIVE_HOURS}],
    ),
    BuiltinSegment(
        "Engaged Users",
        "Players with more than 10 sessions and a session in the last 7 days",
        [
            {"field": "session_count", "relation": ">", "value": ENGAGED_MIN_SESSIONS},
            {"field": "last_session", "relation": "<", "hours_ago": ACTIVE_HOURS},
        ],
    ),
    BuiltinSegment(
        "Inactive Users",
        "Players with no session for more than 7 days",
        [{"field": "last_session", "relation": ">", "hours_ago": ACTIVE_HOURS}],
    ),
)
BUILTINS_BY_NAME = {builtin.name: builtin for builtin in BUILTIN_SEGMENTS}
# Names a custom segment may not take: every built-in except All, which a custom one replaces.
RESERVED_NAMES = frozenset(BUILTINS_BY_NAME) - {ALL}
