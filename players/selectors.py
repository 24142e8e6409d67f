from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.models import App
from players.models import Player
from segments.selectors import segment_players as named_segment_players

MAX_PAGE_SIZE = 300
TOTAL_SUBSCRIPTIONS = "Total Subscriptions"


def player_page(*, app: App, limit: int, offset: int) -> tuple[int, list[Player]]:
    players = Player.objects.filter(app=app)
    total = players.count()
    page = list(players.order_by("id")[offset : offset + limit]) if offset < total else []
    return total, page


def player_get(*, app: App, player_id: uuid.UUID | None) -> Player | None:
    if player_id is None:
        return None
    return Player.objects.filter(app=app, pk=player_id).first()


def segment_players(*, app: App, segment_name: str | None) -> QuerySet[Player]:
    """The players of a segment, for the CSV export: no name means every player of the app.

    Named segments (built-in or custom) resolve in segments.selectors; an unknown name is 400
    ``Segment "<name>" does not exist``. "Total Subscriptions" (OneSignal's newer name for every
    subscription, subscribed or not) is kept as the export's other name for "no segment".
    """
    if segment_name in (None, "", TOTAL_SUBSCRIPTIONS):
        return Player.objects.filter(app=app)
    return named_segment_players(app=app, name=segment_name)
