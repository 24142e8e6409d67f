from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.models import App
from core.api.errors import ApiError
from players.models import Player

MAX_PAGE_SIZE = 300


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
    """Players of a built-in segment. Custom segments arrive with the segments app."""
    players = Player.objects.filter(app=app)
    if segment_name in (None, "", "All", "Total Subscriptions"):
        return players
    if segment_name == "Subscribed Users":
        return players.subscribed()
    raise ApiError.bad_request(f'Segment "{segment_name}" does not exist'[:300])
