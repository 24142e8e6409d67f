"""Writes for MFP device registrations (mobilefirst-push-api.md §3.3).

A device is a Player (token = ``identifier``, userId = ``external_user_id``, platform A/G/W =
device type 0/1/6) plus its ``Registration`` (deviceId, phoneNumber, userAgent, variables).
A valid E.164 ``phoneNumber`` also gets an SMS channel Player (device type 14) as the
registration's ``sms_player``, so SMS messages (notificationType 2 and 3) reach the phone
through the ordinary SMS pipeline. Each successful write records its webhook event (§3.7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.models import App
from core.api.errors import ApiError
from imfpush.device_selectors import (
    MFP_DEVICE_TYPES,
    PLATFORM_DEVICE_TYPES,
    device_id_of,
    mfp_device_find,
    mfp_device_or_404,
    platform_of,
    registration_of,
)
from imfpush.errors import USER_ID_TOO_LONG, MfpError
from imfpush.message_coercion import PAYLOAD_TOO_LARGE
from imfpush.models import PUSH_ALL, MfpApplication, Registration, Subscription, Tag
from players.models import DeviceType, Player
from players.validation import normalize_phone
from webhooks.services import webhook_event_emit

# Marks the SMS channel players this API creates, so that deleting a device removes only
# those, never an SMS player registered through the OneSignal API.
SMS_PLAYER_SDK = "imfpush"
MAX_USER_ID = 254
MAX_VARIABLES_BYTES = 4096  # the device's variables, as JSON
MAX_TOKEN = 1024
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces, as for OneSignal players

REQUIRED = _("is required")
NOT_A_STRING = _("must be a string")
NOT_AN_OBJECT = _("must be a JSON object")
BAD_DEVICE_ID = _("must be 1 to 255 characters without /")
BAD_TOKEN = _("must be 1 to 1024 printable characters without spaces")
BAD_PLATFORM = _("must be A (Apple), G (Google) or W (Windows)")
BAD_PHONE = _("must be at most 64 characters")
DEVICE_ID_MISMATCH = _("must be the deviceId of the path")


@dataclass(frozen=True)
class DeviceInput:
    """A validated device body; ``None`` means "not sent" (the stored value is kept)."""

    device_id: str | None
    token: str | None
    platform: str | None
    user_id: str | None  # "" resets to the default userId
    phone_number: str | None  # "" clears it
    variables: dict | None


def _optional_string(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MfpError.invalid(name, NOT_A_STRING)
    return value


def parse_device_body(body: dict, *, create: bool) -> DeviceInput:
    """Validate a POST (``create``) or PUT body; every error is a ``400`` naming the property."""
    device_id = _optional_string(body, "deviceId")
    if device_id is not None and not (1 <= len(device_id) <= 255 and "/" not in device_id):
        raise MfpError.invalid("deviceId", BAD_DEVICE_ID)
    token = _optional_string(body, "token")
    if token is not None:
        token = token.strip()
        if not (token and len(token) <= MAX_TOKEN and _TOKEN.match(token)):
            raise MfpError.invalid("token", BAD_TOKEN)
    platform = _optional_string(body, "platform")
    if platform is not None:
        platform = platform.strip().upper()
        if platform not in PLATFORM_DEVICE_TYPES:
            raise MfpError.invalid("platform", BAD_PLATFORM)
    user_id = _optional_string(body, "userId")
    if user_id is not None and len(user_id) > MAX_USER_ID:
        raise MfpError(400, "FPWSE0005E", USER_ID_TOO_LONG)
    phone_number = _optional_string(body, "phoneNumber")
    if phone_number is not None:
        phone_number = phone_number.strip()
        if len(phone_number) > 64:
            raise MfpError.invalid("phoneNumber", BAD_PHONE)
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise MfpError.invalid("variables", NOT_AN_OBJECT)
    if variables is not None and len(orjson.dumps(variables)) > MAX_VARIABLES_BYTES:
        raise MfpError.invalid("variables", PAYLOAD_TOO_LARGE % {"limit": MAX_VARIABLES_BYTES})
    if create:
        for name, value in (("deviceId", device_id), ("token", token), ("platform", platform)):
            if value is None:
                raise MfpError.invalid(name, REQUIRED)
    return DeviceInput(device_id, token, platform, user_id, phone_number, variables)


# --- webhook events (§3.7) --------------------------------------------------------------------


def device_entity(application_id: str, player: Player, *, with_application: bool = True) -> dict:
    entity = {
        "deviceId": device_id_of(player),
        "platform": platform_of(player),
        "token": player.identifier or "",
        "userId": player.external_user_id or "",
    }
    if with_application:
        entity["applicationId"] = application_id
    return entity


def emit_event(*, app: App, event_type: str, entity: dict) -> None:
    """Record the webhook event inside the write's transaction (webhooks/services.py): its call
    rows commit or roll back with the change they report, and are delivered after the commit."""
    webhook_event_emit(app=app, event_type=event_type, entity=entity)


# --- SMS channel --------------------------------------------------------------------------------


def _e164(phone_number: str) -> str | None:
    if not phone_number:
        return None
    try:
        return normalize_phone(phone_number)
    except ApiError:
        return None  # stored as given, but no SMS channel: it is not an E.164 number


def _sms_player_for(app: App, push_player: Player, phone_number: str) -> Player | None:
    number = _e164(phone_number)
    if number is None:
        return None
    existing = Player.objects.select_for_update().filter(app=app, identifier=number).first()
    if existing is not None:
        # Another registration's number, or an SMS player from the OneSignal API: shared.
        return existing if existing.device_type == DeviceType.SMS else None
    return Player.objects.create(
        app=app,
        device_type=DeviceType.SMS,
        identifier=number,
        external_user_id=push_player.external_user_id,
        parent_player_id=push_player.id,
        sdk=SMS_PLAYER_SDK,
    )


def _drop_sms_player_if_unused(sms_player: Player, *, besides: Registration | None = None) -> None:
    """Delete an SMS player this API created once no registration uses it any more."""
    if sms_player.sdk != SMS_PLAYER_SDK:
        return
    users = Registration.objects.filter(sms_player=sms_player)
    if besides is not None:
        users = users.exclude(pk=besides.pk)
    if not users.exists():
        Player.objects.filter(pk=sms_player.pk).delete()


# --- writes ---------------------------------------------------------------------------------------


def _release_token(app: App, token: str, keeper: Player | None) -> None:
    """The token moves to ``keeper``: another player of the app holding it loses it.

    Tokens are unique per app (``uniq_player_identifier_per_app``); a token that shows up on a
    new registration belongs to the device now registering (the OneSignal API upserts on the
    identifier for the same reason).
    """
    holders = Player.objects.select_for_update().filter(app=app, identifier=token)
    if keeper is not None:
        holders = holders.exclude(pk=keeper.pk)
    for holder in holders:
        holder.identifier = None
        holder.save(update_fields=["identifier"])


def _apply(
    *,
    app: App,
    player: Player,
    registration: Registration,
    data: DeviceInput,
    default_user_id: str,
    user_agent: str,
    registering: bool = False,
) -> None:
    """Apply ``data``; ``registering`` gives a player without a userId the default one (§1.4)."""
    if data.platform is not None:
        player.device_type = PLATFORM_DEVICE_TYPES[data.platform]
    if data.token is not None and data.token != player.identifier:
        _release_token(app, data.token, player)
        player.identifier = data.token
        player.invalid_identifier = False  # a new token is a re-subscription
    if data.user_id is not None:
        player.external_user_id = data.user_id or default_user_id
    elif registering and not player.external_user_id:
        player.external_user_id = default_user_id
    player.save()

    if data.variables is not None:
        registration.variables = data.variables
    if user_agent:
        registration.user_agent = user_agent[:512]
    old_sms = registration.sms_player
    if data.phone_number is not None and data.phone_number != registration.phone_number:
        registration.phone_number = data.phone_number
        registration.sms_player = _sms_player_for(app, player, data.phone_number)
    registration.updated_at = timezone.now()
    registration.save()
    if old_sms is not None and old_sms != registration.sms_player:
        _drop_sms_player_if_unused(old_sms, besides=registration)


def _registration_for(player: Player) -> Registration:
    """The player's registration, or a new one (saved by ``_apply``) for a OneSignal player,
    whose deviceId stays its player id in canonical form, however the path spelled it."""
    registration = registration_of(player)
    if registration is None:
        registration = Registration(player=player, app=player.app, device_id=str(player.id))
    return registration


def _subscribe_push_all(app: App, player: Player) -> None:
    tag, _created = Tag.objects.get_or_create(app=app, name=PUSH_ALL)
    Subscription.objects.get_or_create(tag=tag, player=player)


def _register(
    mfp_application: MfpApplication, data: DeviceInput, default_user_id: str, user_agent: str
) -> tuple[Player, bool]:
    app = mfp_application.app
    player = mfp_device_find(app=app, device_id=data.device_id, lock=True)
    if player is not None:  # an existing deviceId: update it (our choice: upsert)
        registration = _registration_for(player)
        _apply(
            app=app,
            player=player,
            registration=registration,
            data=data,
            default_user_id=default_user_id,
            user_agent=user_agent,
        )
        return player, False
    holder = (
        Player.objects.select_for_update(of=("self",))
        .select_related("mfp_registration")
        .filter(app=app, identifier=data.token)
        .first()
    )
    if holder is not None and registration_of(holder) is None and holder.device_type in MFP_DEVICE_TYPES:
        # The token's player came from the OneSignal API: it is this device, now registered here.
        player = holder
    else:
        # A new player; ``_apply`` takes the token from any other player holding it.
        player = Player(app=app, device_type=PLATFORM_DEVICE_TYPES[data.platform])
    registration = Registration(player=player, app=app, device_id=data.device_id)
    _apply(
        app=app,
        player=player,
        registration=registration,
        data=data,
        default_user_id=default_user_id,
        user_agent=user_agent,
        registering=True,
    )
    _subscribe_push_all(app, player)
    return player, True


def device_register(
    *, mfp_application: MfpApplication, body: dict, default_user_id: str, user_agent: str = ""
) -> tuple[Player, bool]:
    """POST devices: register, or update the registration that has this deviceId.

    Returns ``(player, created)``. A concurrent registration of the same deviceId or token
    makes the first attempt fail on a unique constraint; the retry then finds that row.
    """
    data = parse_device_body(body, create=True)
    try:
        return _register_once(mfp_application, data, default_user_id, user_agent)
    except IntegrityError:
        return _register_once(mfp_application, data, default_user_id, user_agent)


@transaction.atomic
def _register_once(
    mfp_application: MfpApplication, data: DeviceInput, default_user_id: str, user_agent: str
) -> tuple[Player, bool]:
    player, created = _register(mfp_application, data, default_user_id, user_agent)
    emit_event(
        app=mfp_application.app,
        event_type="onDeviceRegister" if created else "onDeviceUpdate",
        entity=device_entity(mfp_application.application_id, player, with_application=created),
    )
    return player, created


@transaction.atomic
def device_update(
    *,
    mfp_application: MfpApplication,
    device_id: str,
    body: dict,
    default_user_id: str,
    user_agent: str = "",
) -> Player:
    """PUT devices/{deviceId}: absent fields stay; an empty userId resets it to the default."""
    data = parse_device_body(body, create=False)
    if data.device_id is not None and data.device_id != device_id:
        raise MfpError.invalid("deviceId", DEVICE_ID_MISMATCH)
    app = mfp_application.app
    player = mfp_device_or_404(app=app, device_id=device_id, lock=True)
    registration = _registration_for(player)
    _apply(
        app=app,
        player=player,
        registration=registration,
        data=data,
        default_user_id=default_user_id,
        user_agent=user_agent,
    )
    emit_event(
        app=app,
        event_type="onDeviceUpdate",
        entity=device_entity(mfp_application.application_id, player, with_application=False),
    )
    return player


@transaction.atomic
def device_delete(*, mfp_application: MfpApplication, device_id: str) -> None:
    """DELETE devices/{deviceId}: the player, its registration and subscriptions, and its SMS
    player when this API created it and no other registration uses it."""
    app = mfp_application.app
    player = mfp_device_or_404(app=app, device_id=device_id, lock=True)
    entity = device_entity(mfp_application.application_id, player)
    registration = registration_of(player)
    sms_player = registration.sms_player if registration is not None else None
    Player.objects.filter(pk=player.pk).delete()
    if sms_player is not None:
        _drop_sms_player_if_unused(sms_player)
    emit_event(app=app, event_type="onDeviceUnregister", entity=entity)
