"""Writes for MFP subscriptions (mobilefirst-push-api.md §3.4).

A subscription links a device (Player) to a tag of the same App; its row id is the opaque
``subscriptionId``. Tags must exist before devices subscribe to them. Unsubscribing from
``Push.all`` turns broadcast off for that device; subscribing again turns it back on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from imfpush.device_selectors import (
    device_id_of,
    mfp_device_find,
    mfp_device_or_404,
    mfp_subscription_find,
    mfp_subscription_or_404,
    mfp_subscriptions,
    mfp_tag_find,
    mfp_tag_or_404,
)
from imfpush.devices import device_entity, emit_event
from imfpush.errors import MISSING_PARAMETER, SUBSCRIPTION_NOT_FOUND, MfpError
from imfpush.message_coercion import MAX_TARGET_ENTRIES, TOO_MANY
from imfpush.models import MfpApplication, Subscription, Tag
from players.models import Player

NOT_A_STRING = _("must be a string")
NOT_A_LIST = _("must be an array of tag names")


@dataclass
class BatchResult:
    """The outcome of a batch subscribe or unsubscribe, per tag name (§3.4, the 207 forms)."""

    done: list[Subscription] = field(default_factory=list)  # subscribed / unsubscribed
    unchanged: list = field(default_factory=list)  # existing Subscriptions / names not subscribed
    tags_not_found: list[str] = field(default_factory=list)


def _string(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise MfpError.invalid(name, NOT_A_STRING)
    return value


def tag_names_of(body: dict) -> list[str]:
    """``tagNames`` without repeats, in the order given."""
    names = body.get("tagNames")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise MfpError.invalid("tagNames", NOT_A_LIST)
    if len(names) > MAX_TARGET_ENTRIES:  # the same bound as a message's target lists
        raise MfpError.invalid("tagNames", TOO_MANY % {"limit": MAX_TARGET_ENTRIES})
    return list(dict.fromkeys(names))


def _subscription_entity(application_id: str, subscription: Subscription, *, removed: bool) -> dict:
    entity = {
        "device": device_entity(application_id, subscription.player),
        "subscriptionId": str(subscription.pk),
        "tagName": subscription.tag.name,
    }
    if removed:
        entity["deviceId"] = device_id_of(subscription.player)
    return entity


def _emit(mfp_application: MfpApplication, subscription: Subscription, *, removed: bool) -> None:
    emit_event(
        app=mfp_application.app,
        event_type="onUnsubscribe" if removed else "onSubscribe",
        entity=_subscription_entity(mfp_application.application_id, subscription, removed=removed),
    )


def _subscribe(mfp_application: MfpApplication, player: Player, tag: Tag) -> tuple[Subscription, bool]:
    existing = mfp_subscription_find(app=mfp_application.app, player=player, tag=tag)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(tag=tag, player=player)
    except IntegrityError:  # subscribed concurrently: that row is the subscription
        return Subscription.objects.select_related("tag", "player").get(tag=tag, player=player), False
    subscription.player, subscription.tag = player, tag
    _emit(mfp_application, subscription, removed=False)
    return subscription, True


def _unsubscribe(mfp_application: MfpApplication, subscription: Subscription) -> None:
    Subscription.objects.filter(pk=subscription.pk).delete()  # the instance keeps its id for the reply
    _emit(mfp_application, subscription, removed=True)


@transaction.atomic
def subscription_create(*, mfp_application: MfpApplication, body: dict) -> tuple[Subscription, bool]:
    """POST subscriptions ``{deviceId, tagName}``: ``(subscription, created)``; 404 device or tag."""
    device_id, tag_name = _string(body, "deviceId"), _string(body, "tagName")
    app = mfp_application.app
    player = mfp_device_or_404(app=app, device_id=device_id)
    tag = mfp_tag_or_404(app=app, name=tag_name)
    return _subscribe(mfp_application, player, tag)


@transaction.atomic
def subscriptions_batch(*, mfp_application: MfpApplication, body: dict, unsubscribe: bool) -> BatchResult:
    """POST subscriptions ``{deviceId, tagNames[]}`` (and ``?action=delete``), the IBM Cloud batch.

    Each name is handled on its own: an unknown tag is reported in ``tags_not_found``; an
    existing subscription (or, to unsubscribe, a missing one) in ``unchanged``.
    """
    device_id = _string(body, "deviceId")
    names = tag_names_of(body) if "tagNames" in body or "tagName" not in body else [_string(body, "tagName")]
    app = mfp_application.app
    player = mfp_device_or_404(app=app, device_id=device_id)
    tags = {tag.name: tag for tag in Tag.objects.filter(app=app, name__in=names)}
    existing = {
        subscription.tag.name: subscription
        for subscription in mfp_subscriptions(app=app).filter(player=player, tag__in=tags.values())
    }
    result = BatchResult()
    for name in names:
        tag = tags.get(name)
        if tag is None:
            result.tags_not_found.append(name)
        elif unsubscribe and name in existing:
            _unsubscribe(mfp_application, existing[name])
            result.done.append(existing[name])
        elif unsubscribe:
            result.unchanged.append(name)
        elif name in existing:
            result.unchanged.append(existing[name])
        else:
            subscription, created = _subscribe(mfp_application, player, tag)
            (result.done if created else result.unchanged).append(subscription)
    return result


def _subscription_not_found() -> MfpError:
    return MfpError.not_found(SUBSCRIPTION_NOT_FOUND, "FPWSE0012E")


@transaction.atomic
def subscription_delete_by_tag(
    *, mfp_application: MfpApplication, device_id: str | None, tag_name: str | None
) -> None:
    """DELETE subscriptions?deviceId=&tagName=: both required (``FPWSE0008E``); else ``FPWSE0012E``."""
    for name, value in (("deviceId", device_id), ("tagName", tag_name)):
        if value is None:
            raise MfpError(400, "FPWSE0008E", MISSING_PARAMETER, params={"name": name})
    app = mfp_application.app
    player = mfp_device_find(app=app, device_id=device_id)
    tag = mfp_tag_find(app=app, name=tag_name)
    subscription = mfp_subscription_find(app=app, player=player, tag=tag) if player and tag else None
    if subscription is None:
        raise _subscription_not_found()
    _unsubscribe(mfp_application, subscription)


@transaction.atomic
def subscription_delete(*, mfp_application: MfpApplication, subscription_id: str) -> None:
    """DELETE subscriptions/{subscriptionId}: the device and the tag remain."""
    subscription = mfp_subscription_or_404(app=mfp_application.app, subscription_id=subscription_id)
    _unsubscribe(mfp_application, subscription)
