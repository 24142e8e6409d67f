"""Reads: which players a segment holds, who a notification reaches, and segment listings.

Name resolution (the same everywhere): a built-in name other than "All" is always the built-in
(custom segments may not take those names); otherwise the app's custom segment of that name;
otherwise "All" is the built-in All; anything else is 400 ``Segment "<name>" does not exist``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.models import App
from core.api.errors import ApiError
from players.models import Player
from segments.filters import USER_BASED_FIELDS, FilterError, compile_filters
from segments.models import ALL, BUILTIN_SEGMENTS, BUILTINS_BY_NAME, RESERVED_NAMES, BuiltinSegment, Segment

MAX_PAGE_SIZE = 300
USER_BASED_SEGMENT = (
    "User-based segments (with message event or custom event filters) are not yet supported via the API"
)

# PlayerQuerySet.subscribed() as a Q, so it can be ORed and negated with other segments.
# tests/segments/test_selectors.py checks that the two agree.
SUBSCRIBED = Q(notification_types__gt=0, invalid_identifier=False) & ~(
    Q(identifier__isnull=True) | Q(identifier="")
)

AnySegment = Segment | BuiltinSegment


def unknown_segment(name: str) -> ApiError:
    return ApiError.bad_request(f'Segment "{name}" does not exist'[:300])


def membership(*, segment: AnySegment, now: datetime | None = None) -> Q:
    """The condition a player of the segment's app meets to be a member (not scoped to the app).

    Built-ins: the subscription itself, or their filters. Custom: the stored filters; a stored
    list that no longer compiles is a 400 (user-based filters get OneSignal's wording).
    """
    if isinstance(segment, BuiltinSegment):
        return SUBSCRIBED if segment.subscribed_only else compile_filters(segment.filters, now=now)
    try:
        # An empty stored list (only an import could hold one) means every player, explicitly:
        # an empty Q would vanish under exclude() and exclude nobody.
        return compile_filters(segment.filters, now=now) or Q(pk__isnull=False)
    except FilterError as exc:
        if is_user_based(segment.filters):
            raise ApiError.bad_request(USER_BASED_SEGMENT) from exc
        raise ApiError.bad_request(exc.message) from exc


def _among_subscribed(*, segment: AnySegment, now: datetime | None = None) -> Q:
    """``membership`` for a query already limited to SUBSCRIBED (no second copy of it)."""
    if isinstance(segment, BuiltinSegment) and segment.subscribed_only:
        return Q()
    return membership(segment=segment, now=now)


def is_user_based(filters: object) -> bool:
    return isinstance(filters, list) and any(
        isinstance(entry, dict) and entry.get("field") in USER_BASED_FIELDS for entry in filters
    )


def _resolve(*, app: App, names: list[str]) -> dict[str, AnySegment]:
    """Every name resolved (one query for the custom ones); the first unknown name is a 400."""
    wanted = [name for name in dict.fromkeys(names) if name not in RESERVED_NAMES]
    custom = {segment.name: segment for segment in Segment.objects.filter(app=app, name__in=wanted)}
    resolved: dict[str, AnySegment] = {}
    for name in names:
        if name in RESERVED_NAMES:
            resolved[name] = BUILTINS_BY_NAME[name]
        elif name in custom:
            resolved[name] = custom[name]
        elif name == ALL:
            resolved[name] = BUILTINS_BY_NAME[ALL]
        else:
            raise unknown_segment(name)
    return resolved


def segment_players(*, app: App, name: str) -> QuerySet[Player]:
    """The app's players that are members of the named segment (built-in or custom).

    Members, not recipients: a custom or Active/Engaged/Inactive segment also holds players
    who are not subscribed; chain ``.subscribed()`` for those who can receive a push.
    """
    segment = _resolve(app=app, names=[name])[name]
    return Player.objects.filter(app=app).filter(membership(segment=segment))


def audience(*, app: App, included_segments: list[str], excluded_segments: list[str]) -> QuerySet[Player]:
    """The subscribed players of the app in any included segment and in no excluded one.

    No included segment means nobody. All conditions share one ``now``, so a player cannot be
    both in "Active Users" and out of it within one query.
    """
    resolved = _resolve(app=app, names=[*included_segments, *excluded_segments])
    if not included_segments:
        return Player.objects.none()
    now = timezone.now()
    included = Q()
    for name in dict.fromkeys(included_segments):
        condition = _among_subscribed(segment=resolved[name], now=now)
        if not condition:
            included = Q()  # every subscribed player: the other included segments add nothing
            break
        included |= condition
    players = Player.objects.filter(app=app).filter(SUBSCRIBED).filter(included)
    if excluded_segments:
        excluded = Q()
        for name in dict.fromkeys(excluded_segments):
            excluded |= membership(segment=resolved[name], now=now)
        players = players.exclude(excluded)
    return players


def subscriber_count(*, app: App, segment: AnySegment) -> int:
    return (
        Player.objects.filter(app=app).filter(SUBSCRIBED).filter(_among_subscribed(segment=segment)).count()
    )


def visible_builtins(*, custom_all: bool) -> list[BuiltinSegment]:
    return [builtin for builtin in BUILTIN_SEGMENTS if not (custom_all and builtin.name == ALL)]


def segment_page(*, app: App, limit: int, offset: int) -> tuple[int, list[AnySegment]]:
    """One page of the app's segments by ascending created_at: the built-ins (created with the
    app) first, then custom segments by (created_at, id). Two queries: counts, then the page."""
    stats = Segment.objects.filter(app=app).aggregate(
        total=Count("pk"), custom_all=Count("pk", filter=Q(name=ALL))
    )
    builtins = visible_builtins(custom_all=stats["custom_all"] > 0)
    total = len(builtins) + stats["total"]
    page: list[AnySegment] = list(builtins[offset : offset + limit])
    remaining = limit - len(page)
    custom_offset = max(0, offset - len(builtins))
    if remaining > 0 and custom_offset < stats["total"]:
        customs = Segment.objects.filter(app=app).order_by("created_at", "id")
        page += list(customs[custom_offset : custom_offset + remaining])
    return total, page


def segment_find(*, app: App, segment_id: uuid.UUID | None) -> AnySegment | None:
    """The app's segment with this id, built-in or custom; None when there is none."""
    if segment_id is None:
        return None
    for builtin in BUILTIN_SEGMENTS:
        if builtin.segment_id(app.id) == segment_id:
            if builtin.name == ALL and Segment.objects.filter(app=app, name=ALL).exists():
                return None  # replaced by the custom All
            return builtin
    return Segment.objects.filter(app=app, pk=segment_id).first()
