from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.models import App

SUBSCRIBED_PLAYER = Q(
    players__notification_types__gt=0, players__invalid_identifier=False, players__identifier__gt=""
)


def apps_with_player_counts(queryset: QuerySet[App]) -> QuerySet[App]:
    """Adds ``players_total`` and ``players_messageable`` in the same query."""
    return queryset.annotate(
        players_total=Count("players"),
        players_messageable=Count("players", filter=SUBSCRIBED_PLAYER),
    ).order_by("created_at", "id")
