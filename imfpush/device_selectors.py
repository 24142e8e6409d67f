"""Reads of MFP devices, tags and subscriptions (mobilefirst-push-api.md §3.3-3.5).

An MFP device is a Player of platform A, G or W (device types 0, 1, 6). Players registered
through ``/imfpush/v1`` have a ``Registration`` (their ``deviceId`` and MFP-only fields);
players registered through the OneSignal API have none and show with their player id as
``deviceId`` (§1.1). Every read here is scoped to one App.
"""

from __future__ import annotations

from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast

from apps.models import App
from core.api.base import parse_uuid
from imfpush.errors import DEVICE_NOT_FOUND, SUBSCRIPTION_NOT_FOUND, TAG_NOT_FOUND, MfpError
from imfpush.models import Registration, Subscription, Tag
from players.models import DeviceType, Player

# The MFP platform codes and the Player device types they stand for (§1.1).
PLATFORM_DEVICE_TYPES: dict[str, int] = {
    "A": DeviceType.IOS,
    "G": DeviceType.ANDROID,
    "W": DeviceType.WINDOWS,
}
DEVICE_TYPE_PLATFORMS: dict[int, str] = {value: key for key, value in PLATFORM_DEVICE_TYPES.items()}
MFP_DEVICE_TYPES = tuple(PLATFORM_DEVICE_TYPES.values())


def device_id_of(player: Player) -> str:
    """The MFP ``deviceId``: the registration's, or the player id for OneSignal players."""
    registration = registration_of(player)
    return registration.device_id if registration is not None else str(player.id)


def registration_of(player: Player) -> Registration | None:
    try:
        return player.mfp_registration
    except Registration.DoesNotExist:
        return None


def platform_of(player: Player) -> str:
    return DEVICE_TYPE_PLATFORMS.get(player.device_type, "")


# --- devices ----------------------------------------------------------------------------------


def mfp_devices(*, app: App) -> QuerySet[Player]:
    """Every device of the app visible through MFP, oldest first (ties broken by id, §1.6)."""
    return (
        Player.objects.filter(app=app, device_type__in=MFP_DEVICE_TYPES)
        .select_related("mfp_registration")
        .order_by("created_at", "id")
    )


def device_id_condition(operator: str, value: str, prefix: str = "") -> Q:
    """``deviceId`` as a filter (§5): the registration's id, or the player id of OneSignal players.

    ``prefix`` points at the Player from another model (``"player__"`` from a Subscription).
    The ``=@`` form on player ids needs the ``player_id_text`` annotation (``with_player_id_text``).
    """
    registration = f"{prefix}mfp_registration"
    if operator == "==":
        condition = Q(**{f"{registration}__device_id": value})
        player_uuid = _canonical_uuid(value)
        if player_uuid is not None:
            condition |= Q(**{f"{prefix}id": player_uuid}) & _known_by_player_id(player_uuid, registration)
        return condition
    return Q(**{f"{registration}__device_id__icontains": value}) | Q(
        **{f"{registration}__isnull": True, "player_id_text__icontains": value}
    )


def with_player_id_text(queryset: QuerySet, prefix: str = "") -> QuerySet:
    return queryset.annotate(player_id_text=Cast(f"{prefix}id", output_field=CharField()))


def _known_by_player_id(player_uuid, registration: str) -> Q:
    """Players whose deviceId is their player id: no registration, or one made for it by MFP."""
    return Q(**{f"{registration}__isnull": True}) | Q(**{f"{registration}__device_id": str(player_uuid)})


def _canonical_uuid(value: str):
    """A player id written as ``str(uuid)`` (any case); other spellings are not deviceIds."""
    parsed = parse_uuid(value)
    return parsed if parsed is not None and str(parsed) == value.lower() else None


def mfp_device_find(*, app: App, device_id: str, lock: bool = False) -> Player | None:
    """The device with this ``deviceId``: a registration first, else a OneSignal player by id."""
    if "\x00" in device_id:
        return None  # PostgreSQL text cannot hold NUL: no such device can exist
    players = Player.objects.select_related("mfp_registration")
    if lock:
        players = players.select_for_update(of=("self",))
    found = players.filter(app=app, mfp_registration__device_id=device_id).first()
    if found is not None:
        return found
    player_uuid = _canonical_uuid(device_id)
    if player_uuid is None:
        return None
    return (
        players.filter(app=app, pk=player_uuid, device_type__in=MFP_DEVICE_TYPES)
        .filter(_known_by_player_id(player_uuid, "mfp_registration"))
        .first()
    )


def mfp_device_or_404(*, app: App, device_id: str, lock: bool = False) -> Player:
    player = mfp_device_find(app=app, device_id=device_id, lock=lock)
    if player is None:
        raise MfpError.not_found(DEVICE_NOT_FOUND)
    return player


# --- tags ---------------------------------------------------------------------------------------


def mfp_tags(*, app: App, subscription_count: bool = False) -> QuerySet[Tag]:
    tags = Tag.objects.filter(app=app).order_by("created_at", "id")
    if subscription_count:
        tags = tags.annotate(subscription_count=Count("subscriptions"))
    return tags


def tags_on_platform(platform: str) -> Q:
    """Tags with at least one subscribed device on that platform (§5, our choice)."""
    device_type = PLATFORM_DEVICE_TYPES.get(platform)
    if device_type is None:
        return Q(pk__in=[])
    return Q(pk__in=Subscription.objects.filter(player__device_type=device_type).values("tag_id"))


def mfp_tag_find(*, app: App, name: str) -> Tag | None:
    if "\x00" in name:
        return None  # PostgreSQL text cannot hold NUL: no such tag can exist
    return Tag.objects.filter(app=app, name=name).first()


def mfp_tag_or_404(*, app: App, name: str) -> Tag:
    tag = mfp_tag_find(app=app, name=name)
    if tag is None:
        raise MfpError.not_found(TAG_NOT_FOUND)
    return tag


# --- subscriptions ----------------------------------------------------------------------------


def mfp_subscriptions(*, app: App) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(tag__app=app, player__app=app)
        .select_related("tag", "player", "player__mfp_registration")
        .order_by("created_at", "id")
    )


def mfp_subscription_or_404(*, app: App, subscription_id: str) -> Subscription:
    """By the opaque ``subscriptionId`` (the row id as a string); anything else is ``FPWSE0012E``."""
    found = None
    if subscription_id.isascii() and subscription_id.isdigit() and len(subscription_id) < 19:
        found = mfp_subscriptions(app=app).filter(pk=int(subscription_id)).first()
    if found is None:
        raise MfpError.not_found(SUBSCRIPTION_NOT_FOUND, "FPWSE0012E")
    return found


def mfp_subscription_find(*, app: App, player: Player, tag: Tag) -> Subscription | None:
    return mfp_subscriptions(app=app).filter(player=player, tag=tag).first()
