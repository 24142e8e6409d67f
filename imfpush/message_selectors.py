"""Reads of MobileFirst messages (mobilefirst-push-api.md §3.6): a message is a Notification."""

from __future__ import annotations

from datetime import datetime

from apps.models import App
from core.api.base import parse_uuid
from imfpush.errors import MESSAGE_NOT_FOUND, MfpError
from notifications.models import Notification

# Internal body keys of the notification request (``herald_*``: never accepted from, nor shown
# by, the OneSignal API): the normalized MFP body, for GET and idempotent replays; and the mark
# of a message deleted through /imfpush, which then answers 404.
MFP_MESSAGE = "herald_mfp_message"
MFP_DELETED = "herald_mfp_deleted"
COUNTERS = ("recipients", "successful", "failed", "errored", "remaining", "converted", "received")


def mfp_time(moment: datetime) -> str:
    """UTC ISO 8601 with whole seconds (§1.5)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def message_or_404(app: App, message_id: str, *, lock: bool = False) -> Notification:
    """A message of the app: any of its notifications (one store, two views), unless it was
    deleted through this API."""
    pk = parse_uuid(message_id)
    queryset = Notification.objects.filter(app=app, pk=pk) if pk else Notification.objects.none()
    notification = (queryset.select_for_update() if lock else queryset).first()
    if notification is None or notification.request.get(MFP_DELETED):
        raise MfpError.not_found(MESSAGE_NOT_FOUND)
    return notification


def message_alert(notification: Notification) -> str | None:
    """The alert: the MFP message's, else the English (or only) content of a OneSignal one."""
    stored = notification.request.get(MFP_MESSAGE)
    if isinstance(stored, dict):
        return stored["message"]["alert"]
    contents = notification.request.get("contents")
    if isinstance(contents, dict) and contents:
        return contents.get("en") or next(iter(contents.values()))
    return notification.request.get("email_subject") or None


def message_summary(notification: Notification, href: str) -> dict:
    """The IBM Cloud item shape of a sent message (bulk response): alert, createdTime, href, id."""
    item = {"createdTime": mfp_time(notification.queued_at), "href": href, "messageId": str(notification.pk)}
    alert = message_alert(notification)
    if alert is not None:
        item["alert"] = alert
    return item


def message_detail(notification: Notification, href: str) -> dict:
    """``GET /messages/{id}``: the MFP fields plus Herald's status and counters (our choice):
    ``status`` (``SCHEDULED``, ``QUEUED``, ``SENDING``, ``COMPLETED`` or ``CANCELED``), the
    notification's ``recipients``, ``successful``, ``failed``, ``errored``, ``remaining``,
    ``converted`` and ``received`` counts, ``completedTime`` once delivery is over, and
    ``notificationType`` for a message sent through this API."""
    detail = message_summary(notification, href)
    detail["status"] = notification.status.upper()
    detail.update({name: getattr(notification, name) for name in COUNTERS})
    if notification.completed_at is not None:
        detail["completedTime"] = mfp_time(notification.completed_at)
    stored = notification.request.get(MFP_MESSAGE)
    if isinstance(stored, dict):
        detail["notificationType"] = stored.get("notificationType", 1)
    return detail
