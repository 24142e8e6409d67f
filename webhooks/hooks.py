"""Events from the delivery pipeline, open tracking and unsubscribes, for both APIs' webhooks.

Each ``on_*`` function is the one line a producer in ``notifications/`` calls. It only registers
an ``on_commit`` callback (``robust``: a webhook problem is logged and never undoes or breaks a
delivery), so events describe committed state; the callback costs one query when nothing
listens.

- a batch's final outcomes: MFP ``onNotificationStatusChange`` (``SENT``) and
  ``onNotificationFailure`` per reason; OneSignal ``notification.sent`` and
  ``notification.failed`` per reason;
- a permanent token failure, or the email one-click unsubscribe: ``player.unsubscribed``;
- a completed notification: MFP ``onMessageSent`` (Herald's extension);
- an open or receipt reported by the SDK: MFP ``onNotificationStatusChange`` with ``OPEN`` /
  ``SEEN``; OneSignal ``notification.clicked`` (opens only).

MFP events carry MFP identities: ``deviceId`` is the registration's, or the player id of a
OneSignal-registered player, and only A/G/W devices appear (other channels have no MFP code).
The ``messageId`` is the notification id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from uuid import UUID

from django.db import transaction

from webhooks.services import webhook_event_emit, webhooks_listening

logger = logging.getLogger(__name__)

BATCH_EVENTS = (
    "onNotificationStatusChange",
    "onNotificationFailure",
    "notification.sent",
    "notification.failed",
    "player.unsubscribed",
)
COUNTED_EVENTS = ("onNotificationStatusChange", "notification.clicked")
# The SDK's reports (Delivery field) and the MFP msgStatus each stands for.
COUNTED_STATUS = {"opened_at": "OPEN", "received_at": "SEEN"}


def _later(callback, *args) -> None:
    def later() -> None:  # not a partial: Django names a failing robust hook by its __qualname__
        callback(*args)

    transaction.on_commit(later, robust=True)


def batch_events_listened(app_id) -> bool:
    """Whether a webhook of the app listens to a batch's outcomes (one query). Delivery asks once
    per batch and passes the answer to ``on_batch_recorded``, instead of a query after each of the
    batch's many small recorded steps."""
    return bool(_listening(app_id, BATCH_EVENTS))


def on_batch_recorded(*, notification, device_type: int, results: Iterable, listened: bool = True) -> None:
    """A batch's final (not transient) ``SendResult``s were recorded; invalid recipients (other
    than players already unsubscribed) were unsubscribed with their reason.

    ``listened=False``: ``batch_events_listened`` said no webhook listened when the batch was
    claimed, so no event is looked for (a webhook added meanwhile gets the next batch's events).
    """
    outcomes = [(r.player_id, r.outcome.value, r.reason) for r in results if r.outcome.value != "transient"]
    if outcomes and listened:
        _later(_batch_events, notification.app_id, str(notification.pk), device_type, outcomes)
    unsubscribed: dict[str, list] = defaultdict(list)
    for player_id, outcome, reason in outcomes:
        if outcome == "invalid_recipient" and reason != "unsubscribed":
            unsubscribed[reason].append(player_id)
    for reason, player_ids in unsubscribed.items():
        on_players_unsubscribed(
            app_id=notification.app_id, player_ids=player_ids, device_type=device_type, reason=reason
        )


def on_notification_completed(*, notification_id) -> None:
    """The notification's last batch is done (``complete_if_done`` changed it)."""
    _later(_message_sent, str(notification_id))


def on_delivery_counted(*, notification, player, field: str) -> None:
    """The SDK reported ``opened_at`` or ``received_at`` for the first time."""
    _later(_counted_events, notification.app_id, str(notification.pk), player.pk, player.device_type, field)


def on_players_unsubscribed(*, app_id, player_ids: list, device_type: int, reason: str) -> None:
    """Players were unsubscribed (a permanent failure, or a person's one-click link)."""
    if player_ids:
        _later(_unsubscribed_events, app_id, [str(p) for p in player_ids], device_type, reason)


# --- the callbacks (after commit) ---------------------------------------------------------------


def _app(app_id):
    from apps.models import App

    return App.objects.filter(pk=app_id).first()


def _platform(device_type: int) -> str | None:
    from imfpush.device_selectors import DEVICE_TYPE_PLATFORMS

    return DEVICE_TYPE_PLATFORMS.get(device_type)


def _device_ids(player_ids: list[UUID]) -> list[str]:
    """MFP deviceIds, in the order given: the registration's, else the player id."""
    from imfpush.models import Registration

    registered = dict(
        Registration.objects.filter(player_id__in=player_ids).values_list("player_id", "device_id")
    )
    return [registered.get(player_id, str(player_id)) for player_id in player_ids]


def _listening(app_id, events: tuple[str, ...]) -> set[str]:
    return {
        event for hook in webhooks_listening(app=app_id, event_types=events) for event in hook.event_types
    }


@transaction.atomic
def _batch_events(app_id, notification_id: str, device_type: int, outcomes: list[tuple]) -> None:
    listening = _listening(app_id, BATCH_EVENTS)
    if not listening:
        return
    app = _app(app_id)
    if app is None:
        return
    sent = [player_id for player_id, outcome, _ in outcomes if outcome == "sent"]
    failed: dict[str, list] = defaultdict(list)
    for player_id, outcome, reason in outcomes:
        if outcome != "sent":
            failed[reason or outcome].append(player_id)
    platform = _platform(device_type)
    if platform is not None and listening & {"onNotificationStatusChange", "onNotificationFailure"}:
        if sent and "onNotificationStatusChange" in listening:
            entity = {"deviceIds": _device_ids(sent), "messageId": notification_id, "msgStatus": "SENT"}
            webhook_event_emit(
                app=app, event_type="onNotificationStatusChange", entity={**entity, "platform": platform}
            )
        if "onNotificationFailure" in listening:
            from webhooks.services import mfp_application_id

            application_id = mfp_application_id(app)
            for reason, player_ids in failed.items():
                entity = {
                    "applicationId": application_id,
                    "deviceIds": _device_ids(player_ids),
                    "failureReason": reason,
                    "messageId": notification_id,
                    "msgStatus": "failure",
                    "platform": platform,
                }
                webhook_event_emit(app=app, event_type="onNotificationFailure", entity=entity)
    if sent and "notification.sent" in listening:
        entity = {
            "device_type": device_type,
            "notification_id": notification_id,
            "player_ids": [str(p) for p in sent],
        }
        webhook_event_emit(app=app, event_type="notification.sent", entity=entity)
    if "notification.failed" in listening:
        for reason, player_ids in failed.items():
            entity = {
                "device_type": device_type,
                "notification_id": notification_id,
                "player_ids": [str(p) for p in player_ids],
                "reason": reason,
            }
            webhook_event_emit(app=app, event_type="notification.failed", entity=entity)


def _message_sent(notification_id: str) -> None:
    from notifications.models import Delivery, Notification

    notification = (
        Notification.objects.filter(pk=notification_id).only("app_id", "request", "successful").first()
    )
    if notification is None or not _listening(notification.app_id, ("onMessageSent",)):
        return
    app = _app(notification.app_id)
    device_types = (
        Delivery.objects.filter(notification_id=notification_id, status=Delivery.Status.SENT)
        .values_list("player__device_type", flat=True)
        .distinct()
    )
    platforms = sorted({code for code in map(_platform, device_types) if code})
    contents = (notification.request or {}).get("contents") or {}
    alert = (contents.get("en") or next(iter(contents.values()), "")) if isinstance(contents, dict) else ""
    entity = {
        "alert": alert,
        "deviceCount": notification.successful,
        "messageId": notification_id,
        "msgStatus": "SENT",
        "platforms": platforms,
    }
    with transaction.atomic():
        webhook_event_emit(app=app, event_type="onMessageSent", entity=entity)


def _counted_events(app_id, notification_id: str, player_id, device_type: int, field: str) -> None:
    listening = _listening(app_id, COUNTED_EVENTS)
    if not listening:
        return
    app = _app(app_id)
    platform = _platform(device_type)
    if app is None:
        return
    with transaction.atomic():
        if platform is not None and "onNotificationStatusChange" in listening:
            entity = {
                "deviceIds": _device_ids([player_id]),
                "messageId": notification_id,
                "msgStatus": COUNTED_STATUS[field],
                "platform": platform,
            }
            webhook_event_emit(app=app, event_type="onNotificationStatusChange", entity=entity)
        if field == "opened_at" and "notification.clicked" in listening:
            entity = {
                "device_type": device_type,
                "notification_id": notification_id,
                "player_id": str(player_id),
            }
            webhook_event_emit(app=app, event_type="notification.clicked", entity=entity)


def _unsubscribed_events(app_id, player_ids: list[str], device_type: int, reason: str) -> None:
    if "player.unsubscribed" not in _listening(app_id, ("player.unsubscribed",)):
        return
    app = _app(app_id)
    if app is None:
        return
    with transaction.atomic():
        for player_id in player_ids:
            entity = {"device_type": device_type, "player_id": player_id, "reason": reason}
            webhook_event_emit(app=app, event_type="player.unsubscribed", entity=entity)
