"""Writes to players: registration (upsert), edits, the SDK session protocol, deletion."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.models import App
from core.api.errors import NO_USER_WITH_ID, ApiError
from notifications.outcomes import SESSION_DURATION, attribution_for, outcome_record
from players.models import DeviceType, Player, Purchase
from players.validation import (
    check_device_type,
    check_language,
    merge_tags,
    normalize_identifier,
    normalize_phone,
    tag_changes,
)

# Fields copied as given once the serializer has typed them.
PLAIN_FIELDS = (
    "timezone",
    "timezone_id",
    "game_version",
    "device_model",
    "device_os",
    "ad_id",
    "sdk",
    "sdk_type",
    "android_package",
    "carrier",
    "net_type",
    "rooted",
    "ip",
    "session_count",
    "amount_spent",
    "playtime",
    "badge_count",
    "notification_types",
    "test_type",
    "lat",
    "long",
    "external_user_id",
    "parent_player_id",
    "web_auth",
    "web_p256",
)
LOCATION_META_FIELDS = ("loc_acc", "loc_type", "loc_bg", "loc_time_stamp")
BLANK_IS_NULL = {"external_user_id", "ad_id", "timezone_id", "web_auth", "web_p256"}


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _apply_fields(player: Player, data: dict[str, Any]) -> None:
    """Apply a partial Player body. ``device_type`` must already be settled on ``player``."""
    for field in PLAIN_FIELDS:
        if field in data:
            value = data[field]
            setattr(player, field, None if field in BLANK_IS_NULL and value == "" else value)
    if "language" in data:
        player.language = check_language(data["language"])
    if "country" in data:
        player.country = data["country"].upper() if data["country"] else None
    for field in ("created_at", "last_active"):
        if field in data:
            setattr(player, field, _from_unix(data[field]))
    if "identifier" in data:
        identifier = normalize_identifier(player.device_type, data["identifier"])
        if identifier and identifier != player.identifier:
            # A new token is a re-subscription: the old rejection no longer applies.
            player.invalid_identifier = False
        player.identifier = identifier
    meta = {f: data[f] for f in LOCATION_META_FIELDS if f in data}
    if meta:
        player.location_meta = {**player.location_meta, **meta}
    if "tags" in data:
        player.tags = merge_tags(player.tags or {}, tag_changes(data["tags"]))


def _link_channels(app: App, parent: Player, data: dict[str, Any]) -> None:
    """The SDK puts ``email`` / ``sms_number`` on a push player to create linked players."""
    linked = []
    if data.get("email"):
        linked.append((DeviceType.EMAIL, data["email"]))
    if data.get("sms_number"):
        linked.append((DeviceType.SMS, normalize_phone(data["sms_number"])))
    for device_type, identifier in linked:
        _upsert(app, {"device_type": device_type, "identifier": identifier, "parent_player_id": parent.id})


def _upsert(app: App, data: dict[str, Any], player_id: uuid.UUID | None = None) -> tuple[Player, bool]:
    device_type = check_device_type(data.get("device_type"))
    identifier = normalize_identifier(device_type, data.get("identifier"))
    if identifier:
        existing = Player.objects.select_for_update().filter(app=app, identifier=identifier).first()
        if existing is not None:
            _apply_fields(existing, {k: v for k, v in data.items() if k != "device_type"})
            existing.save()
            return existing, False
    player = Player(app=app, device_type=device_type, id=player_id or uuid.uuid4())
    _apply_fields(player, data)
    player.tags = {k: v for k, v in (player.tags or {}).items() if v is not None}
    try:
        with transaction.atomic():
            player.save(force_insert=True)
    except IntegrityError:
        # Lost a race with a concurrent registration of the same token: that row wins.
        existing = Player.objects.select_for_update().filter(app=app, identifier=player.identifier).first()
        if existing is None:
            raise
        _apply_fields(existing, {k: v for k, v in data.items() if k != "device_type"})
        existing.save()
        return existing, False
    return player, True


@transaction.atomic
def player_register(*, app: App, data: dict[str, Any]) -> tuple[Player, bool]:
    """POST /players: create, or update the player already holding this identifier.

    Returns ``(player, created)``.
    """
    if "device_type" not in data or data["device_type"] is None:
        raise ApiError.bad_request("device_type is required")
    player, created = _upsert(app, data)
    _link_channels(app, player, data)
    return player, created


def _locked_player(app: App, player_id: uuid.UUID | None) -> Player:
    player = Player.objects.select_for_update().filter(app=app, pk=player_id).first() if player_id else None
    if player is None:
        raise ApiError.bad_request(NO_USER_WITH_ID)
    return player


@transaction.atomic
def player_update(*, app: App, player_id: uuid.UUID | None, data: dict[str, Any]) -> Player:
    """PUT /players/{id}: partial update; tags merge; an invalid device_type is ignored."""
    player = _locked_player(app, player_id)
    if "device_type" in data:
        with contextlib.suppress(ApiError):  # OneSignal ignores a bad device_type on update
            player.device_type = check_device_type(data["device_type"])
    _apply_fields(player, data)
    player.save()
    _link_channels(app, player, data)
    return player


@transaction.atomic
def player_delete(*, app: App, player_id: uuid.UUID | None) -> bool:
    """Hard delete (GDPR). Returns False when there was no such player."""
    if player_id is None:
        return False
    deleted, _ = Player.objects.filter(app=app, pk=player_id).delete()
    return deleted > 0


@transaction.atomic
def player_on_session(*, app: App, player_id: uuid.UUID | None, data: dict[str, Any]) -> tuple[Player, bool]:
    """A new app session: apply the fields sent, count the session, mark the player active.

    An unknown player is created only when ``device_type`` is sent (the SDK re-registers on
    the 400 otherwise). Returns ``(player, created)``.
    """
    player = Player.objects.select_for_update().filter(app=app, pk=player_id).first() if player_id else None
    if player is None:
        if data.get("device_type") in (None, ""):
            raise ApiError.bad_request(
                "Player not found and device_type is missing or not a valid device_type"
            )
        try:
            check_device_type(data["device_type"])
        except ApiError as exc:
            raise ApiError.bad_request(
                "Player not found and device_type is missing or not a valid device_type"
            ) from exc
        return _upsert(app, data)
    fields = {k: v for k, v in data.items() if k != "session_count"}
    if "device_type" in fields:
        with contextlib.suppress(ApiError):
            player.device_type = check_device_type(fields["device_type"])
    _apply_fields(player, fields)
    player.session_count = F("session_count") + 1
    player.last_active = timezone.now()
    player.save()
    player.refresh_from_db(fields=["session_count"])
    return player, False


@transaction.atomic
def player_on_purchase(
    *, app: App, player_id: uuid.UUID | None, purchases: list[dict[str, Any]], existing: bool
) -> Player:
    """Record purchases; ``existing`` (history import) adds to amount_spent only for SKUs this
    player has no record of, so a reinstall that re-sends its history is not counted twice."""
    player = _locked_player(app, player_id)
    known_skus = set()
    if existing:
        known_skus = set(
            player.purchases.filter(sku__in=[p["sku"] for p in purchases]).values_list("sku", flat=True)
        )
    added = Decimal(0)
    rows = []
    for purchase in purchases:
        amount = Decimal(purchase.get("amount") or 0)
        rows.append(
            Purchase(
                player=player,
                sku=purchase["sku"],
                amount=amount,
                iso=purchase.get("iso") or "USD",
                imported=existing,
            )
        )
        if not (existing and purchase["sku"] in known_skus):
            added += amount
    Purchase.objects.bulk_create(rows)
    if added:
        Player.objects.filter(pk=player.pk).update(amount_spent=F("amount_spent") + added)
    return player


@transaction.atomic
def player_on_focus(
    *,
    app: App,
    player_id: uuid.UUID | None,
    active_time: int,
    direct: bool | None = None,
    notification_ids: list | None = None,
) -> None:
    """Time in the foreground: adds to playtime without counting a session, and records the
    built-in ``os__session_duration`` outcome (weight = active_time; attributed from ``direct``:
    absent unattributed, true direct, false influenced, as on /outcomes/measure)."""
    players = Player.objects.filter(app=app, pk=player_id)
    device_type = players.values_list("device_type", flat=True).first() if player_id else None
    if device_type is None or not players.update(
        playtime=F("playtime") + active_time, last_active=timezone.now()
    ):
        raise ApiError.bad_request(NO_USER_WITH_ID)
    outcome_record(
        app=app,
        name=SESSION_DURATION,
        device_type=device_type,
        weight=active_time,
        attribution=attribution_for(direct),
        notification_ids=notification_ids or [],
        player_id=player_id,
    )


@transaction.atomic
def players_update_tags_by_external_id(*, app: App, external_user_id: str, tags: Any) -> int:
    """Merge ``tags`` into every player of the app with this external user id."""
    changes = tag_changes(tags)
    players = list(Player.objects.select_for_update().filter(app=app, external_user_id=external_user_id))
    if not players:
        raise ApiError.bad_request(NO_USER_WITH_ID)
    for player in players:
        player.tags = merge_tags(player.tags or {}, changes)
    Player.objects.bulk_update(players, ["tags"])
    return len(players)
