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
from players.one_statement import OneUpdate, apply_one_update, insert_new, one_update_supported
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


def _plain_values(data: dict[str, Any]) -> dict[str, Any]:
    """The columns a partial Player body sets whatever the row holds: all but ``identifier``
    (normalized per channel, and clearing ``invalid_identifier`` when it changes), the location
    meta and ``tags`` (both merged into what is stored)."""
    values = {}
    for field in PLAIN_FIELDS:
        if field in data:
            value = data[field]
            values[field] = None if field in BLANK_IS_NULL and value == "" else value
    if "language" in data:
        values["language"] = check_language(data["language"])
    if "country" in data:
        values["country"] = data["country"].upper() if data["country"] else None
    for field in ("created_at", "last_active"):
        if field in data:
            values[field] = _from_unix(data[field])
    return values


def _apply_fields(player: Player, data: dict[str, Any]) -> None:
    """Apply a partial Player body. ``device_type`` must already be settled on ``player``."""
    for field, value in _plain_values(data).items():
        setattr(player, field, value)
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


def _columns(player: Player) -> dict[str, Any]:
    return {field.name: getattr(player, field.attname) for field in Player._meta.concrete_fields}


def _save_changed(player: Player, before: dict[str, Any]) -> None:
    """Write only the columns that differ from ``before`` (``_columns`` of the row as read): an
    UPDATE of every column costs the ORM and PostgreSQL more than the SDK's few fields do."""
    changed = [name for name, value in _columns(player).items() if value != before[name]]
    if changed:
        player.save(update_fields=changed)


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
    """Create the player, or update the one of this app already holding the identifier.

    1. Check the body on a new, unsaved Player (bad input raises before anything is written).
    2. Insert it unless the identifier is taken: a new token, the usual registration, is one
       statement.
    3. Taken: lock that row, apply the body to it, write the columns that changed.
    """
    device_type = check_device_type(data.get("device_type"))
    player = Player(app=app, device_type=device_type, id=player_id or uuid.uuid4())
    _apply_fields(player, data)
    player.tags = {k: v for k, v in (player.tags or {}).items() if v is not None}
    if insert_new(player):
        return player, True
    if not player.identifier:  # only the id can have clashed; filter(identifier=None) is IS NULL
        raise IntegrityError(f"player {player.id} could not be inserted")
    # No savepoint when called inside a transaction: an error here fails the whole call anyway.
    with transaction.atomic(savepoint=False):
        existing = Player.objects.select_for_update().filter(app=app, identifier=player.identifier).first()
        if existing is None:  # the conflict was not the identifier: nothing else is expected
            raise IntegrityError(f"player {player.id} could not be inserted")
        before = _columns(existing)
        _apply_fields(existing, {k: v for k, v in data.items() if k != "device_type"})
        _save_changed(existing, before)
    return existing, False


def player_register(*, app: App, data: dict[str, Any]) -> tuple[Player, bool]:
    """POST /players: create, or update the player already holding this identifier.

    A new token alone is one INSERT in autocommit; with ``email`` / ``sms_number`` the linked
    players are created in the same transaction, so a bad one leaves nothing behind.
    Returns ``(player, created)``.
    """
    if "device_type" not in data or data["device_type"] is None:
        raise ApiError.bad_request("device_type is required")
    if not (data.get("email") or data.get("sms_number")):
        return _upsert(app, data)
    with transaction.atomic():
        player, created = _upsert(app, data)
        _link_channels(app, player, data)
    return player, created


def _locked_player(app: App, player_id: uuid.UUID | None) -> Player:
    player = Player.objects.select_for_update().filter(app=app, pk=player_id).first() if player_id else None
    if player is None:
        raise ApiError.bad_request(NO_USER_WITH_ID)
    return player


def player_update(*, app: App, player_id: uuid.UUID | None, data: dict[str, Any]) -> None:
    """PUT /players/{id}: partial update; tags merge; an invalid device_type is ignored.

    One UPDATE when the body allows it (``_one_update``, the SDK's tag edits); otherwise, or
    when that updated nothing (no such player, or tags that may be too large), the locked path.
    """
    update = _one_update(data) if player_id else None
    if update is not None and apply_one_update(app.pk, player_id, update, session=False):
        return
    _player_update_locked(app, player_id, data)


@transaction.atomic
def _player_update_locked(app: App, player_id: uuid.UUID | None, data: dict[str, Any]) -> None:
    player = _locked_player(app, player_id)
    before = _columns(player)
    if "device_type" in data:
        with contextlib.suppress(ApiError):  # OneSignal ignores a bad device_type on update
            player.device_type = check_device_type(data["device_type"])
    _apply_fields(player, data)
    _save_changed(player, before)
    _link_channels(app, player, data)


@transaction.atomic
def player_delete(*, app: App, player_id: uuid.UUID | None) -> bool:
    """Hard delete (GDPR). Returns False when there was no such player."""
    if player_id is None:
        return False
    deleted, _ = Player.objects.filter(app=app, pk=player_id).delete()
    return deleted > 0


def _one_update(data: dict[str, Any]) -> OneUpdate | None:
    """A partial Player body as one UPDATE (``players.one_statement``), or None when the body needs
    the locked row: an identifier without a valid device_type (it is normalized per the row's
    channel), ``email`` / ``sms_number`` (linked players), bad input (the locked path answers it
    in its usual order), or a database without jsonb."""
    if not one_update_supported():
        return None
    device_type = None
    if "device_type" in data:
        with contextlib.suppress(ApiError):  # an invalid device_type is ignored, as on PUT
            device_type = check_device_type(data["device_type"])
    if ("identifier" in data and device_type is None) or data.get("email") or data.get("sms_number"):
        return None
    try:
        values = _plain_values(data)
        identifier = normalize_identifier(device_type, data["identifier"]) if "identifier" in data else None
        changes = tag_changes(data["tags"]) if "tags" in data else None
    except ApiError:
        return None
    if device_type is not None:
        values["device_type"] = device_type
    return OneUpdate(
        values=values,
        identifier=identifier,
        sets_identifier="identifier" in data,
        location_meta={f: data[f] for f in LOCATION_META_FIELDS if f in data} or None,
        tag_changes=changes,
    )


def player_on_session(
    *, app: App, player_id: uuid.UUID | None, data: dict[str, Any]
) -> tuple[uuid.UUID, bool]:
    """A new app session: apply the fields sent, count the session, mark the player active.

    1. The usual ping is one UPDATE of the columns sent plus ``session_count + 1`` and
       ``last_active``, in autocommit: no lock, no read (``_one_update``).
    2. Otherwise, or when that updated nothing, the row is locked, changed in Python and the
       changed columns written.
    3. An unknown player is created only when ``device_type`` is sent (the SDK re-registers on
       the 400 otherwise).

    Returns ``(player id, created)``.
    """
    fields = {k: v for k, v in data.items() if k != "session_count"}
    update = _one_update(fields) if player_id else None
    if update is not None and apply_one_update(app.pk, player_id, update, session=True):
        return player_id, False
    with transaction.atomic():
        player = (
            Player.objects.select_for_update().filter(app=app, pk=player_id).first() if player_id else None
        )
        if player is None:
            return _session_of_unknown_player(app, data)
        before = _columns(player)
        if "device_type" in fields:
            with contextlib.suppress(ApiError):
                player.device_type = check_device_type(fields["device_type"])
        _apply_fields(player, fields)
        player.session_count = F("session_count") + 1
        player.last_active = timezone.now()
        _save_changed(player, before)
    return player.id, False


@transaction.atomic
def _session_of_unknown_player(app: App, data: dict[str, Any]) -> tuple[uuid.UUID, bool]:
    try:
        check_device_type(data.get("device_type"))  # missing, null and "" are refused too
    except ApiError as exc:
        raise ApiError.bad_request(
            "Player not found and device_type is missing or not a valid device_type"
        ) from exc
    player, created = _upsert(app, data)
    return player.id, created


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
