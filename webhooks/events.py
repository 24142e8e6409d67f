"""The events a webhook may listen to, and the JSON body each API's receivers get.

MobileFirst events (mobilefirst-push-api.md §3.7) are camelCase names; the body is IBM's
``{"applicationId", "entity", "eventTimeStamp", "type"}``. ``onMessageSent`` is Herald's
extension (issue 5): one per message, when its delivery has completed.

OneSignal-side events are dotted names; the body is
``{"app_id", "data", "event", "timestamp"}`` (Herald's own shape: OneSignal has no public
equivalent), ``timestamp`` in epoch milliseconds like MFP's ``eventTimeStamp``.
"""

from __future__ import annotations

from datetime import datetime

MFP_EVENTS = (
    "onDeviceRegister",
    "onDeviceUpdate",
    "onDeviceUnregister",
    "onSubscribe",
    "onUnsubscribe",
    "onNotificationStatusChange",
    "onNotificationFailure",
    "onMessageSent",
)
ONESIGNAL_EVENTS = (
    "notification.sent",
    "notification.clicked",
    "notification.failed",
    "player.unsubscribed",
)
ALL_EVENTS = MFP_EVENTS + ONESIGNAL_EVENTS


def source_of(event_type: str) -> str:
    """Which API's webhooks an event goes to ("mfp" or "onesignal")."""
    return "onesignal" if event_type in ONESIGNAL_EVENTS else "mfp"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def mfp_body(*, application_id: str, event_type: str, entity: dict, at: datetime) -> dict:
    return {
        "applicationId": application_id,
        "entity": entity,
        "eventTimeStamp": epoch_ms(at),
        "type": event_type,
    }


def onesignal_body(*, app_id: str, event_type: str, entity: dict, at: datetime) -> dict:
    return {"app_id": app_id, "data": entity, "event": event_type, "timestamp": epoch_ms(at)}
