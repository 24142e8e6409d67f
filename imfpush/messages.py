"""MobileFirst messages (mobilefirst-push-api.md §3.6 and §4): normalize, translate, send.

A message is a Notification. ``message_send`` checks and normalizes the MFP body (``normalize``:
types coerced, ``settings.target`` moved to ``target``, ``platform`` renamed ``platforms``,
``"A,G"`` split, enumerations and required sub-fields checked, every error a ``400`` naming the
property), translates it (``translate``) into a notification request for
``notifications.services.notification_create`` and sends it through the same pipeline as a
OneSignal notification. The messageId is the notification's id.

The translation:

- ``message.alert`` is the English ``contents`` (the SMS text too), ``message.url`` the ``url``.
- The target becomes the internal ``herald_mfp_target`` (``notifications.targeting.mfp_audience``,
  re-resolved at fan-out): ``deviceIds`` / ``userIds`` / ``tagNames`` / broadcast to ``Push.all``,
  narrowed by ``platforms``; ``notificationType`` 2 and 3 add each device's SMS player.
- ``settings.apns`` / ``gcm`` / ``wns`` become per-platform fields (``herald_platform_fields``,
  ``notifications.providers.platform_fields``) that only that gateway's provider sees:

  * APNs: ``badge`` → ``aps.badge`` (written back to the device's count), ``sound``, ``type``
    (``SILENT``: a background push, ``content-available`` with no alert, sound or badge;
    ``MIXED``: the alert plus ``content-available``), ``interactiveCategory``/``category`` →
    ``aps.category``, ``title``/``subtitle``/loc keys/``iosActionKey``/``launchImage`` → the
    ``aps.alert`` dictionary, ``attachmentUrl`` → ``mutable-content`` and the top-level
    ``attachment-url`` the IBM SDKs' service extension downloads, ``apnsThreadId`` →
    ``thread-id``, ``apnsCollapseId`` → ``apns-collapse-id``, group summary args. Top level:
    ``nid`` (the messageId) and ``payload`` (the object).
  * FCM v1: ``priority`` max/high → ``android.priority`` HIGH (default/low/min NORMAL) and the
    matching ``notification_priority``, ``timeToLive`` → ``android.ttl``, ``collapseKey`` →
    ``android.collapse_key``, ``sound``/``icon``/``channelId``/``visibility``/``lights``/
    ``androidTitle`` and a picture ``style``'s image → ``android.notification``; ``type``
    SILENT → a data-only message. The IBM Android SDK's data keys are set too: ``payload``
    (JSON text of the object plus ``nid``), ``url``, ``androidTitle``, ``sound``, ``priority``,
    ``visibility``, ``redact``, ``interactiveCategory``, ``category``, ``icon``, ``bridge``,
    ``style`` and ``lights`` (JSON text), ``key`` (the collapse key), ``type``,
    ``has-template``.
  * WNS: ``toast``, ``tile``, ``badge`` and ``raw`` each become their own WNS notification
    (``X-WNS-Type`` and the XML or raw body); without ``toast`` the device still gets a toast
    with the alert. ``cachePolicy`` → ``X-WNS-Cache-Policy``, ``expirationTime`` →
    ``X-WNS-TTL``, ``tile.tag`` → ``X-WNS-Tag``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.models import App
from core.api.errors import ApiError
from imfpush.errors import APP_DISABLED, SMS_NOT_CONFIGURED, MfpError
from imfpush.message_body import normalize
from imfpush.message_coercion import (
    BAD_BULK,
    DEFAULT_BULK_LIMIT,
    EMPTY_BULK,
    KEY_IN_FLIGHT,
)
from imfpush.message_selectors import MFP_DELETED, MFP_MESSAGE, message_or_404
from imfpush.message_translation import translate
from imfpush.models import MfpApplication
from notifications.models import Notification
from notifications.services import notification_cancel, notification_create

# --- the service --------------------------------------------------------------------------------


@dataclass
class SentMessage:
    notification: Notification
    message: dict  # the normalized body, as first accepted (a replay returns the first one)
    replayed: bool


def _check_sendable(record: MfpApplication, normalized: dict) -> None:
    if normalized.get("notificationType", 1) in (2, 3) and not record.app.sms_gateway_json:
        raise MfpError(400, "FPWSE0003E", SMS_NOT_CONFIGURED)


def _create(app: App, normalized: dict, header_key: str | None) -> SentMessage:
    message_id = uuid.uuid4()
    translation = translate(normalized, str(message_id))
    try:
        response, replayed = notification_create(
            app=app,
            body=translation.body,
            header_key=header_key,
            internal=translation.internal,
            notification_id=message_id,
            allow_empty=True,
        )
    except ApiError as exc:  # the pipeline's own checks (APNs payload size and the like)
        reason = "; ".join(str(e) for e in exc.body.get("errors", [])) or str(exc.body)
        raise MfpError.invalid("message", reason) from exc
    notification = Notification.objects.get(app=app, pk=response["id"])
    stored = notification.request.get(MFP_MESSAGE) or normalized
    return SentMessage(notification=notification, message=stored, replayed=replayed)


def idempotency_lock_name(app: App, key: str) -> str:
    return f"herald-mfp-idempotency:{app.pk}:{key}"


def _claim_key(app: App, key: str | None) -> None:
    """Inside the sending transaction: ``409`` while a twin request with the same key is still in
    flight (§1.3). A PostgreSQL advisory lock, released when the transaction ends; after the twin
    commits, the key replays its answer. (The embedded SQLite default runs writes one at a time.)"""
    if not key or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [idempotency_lock_name(app, key)]
        )
        if not cursor.fetchone()[0]:
            raise MfpError(409, "FPWSE0002E", KEY_IN_FLIGHT)


def message_send(*, record: MfpApplication, body: Any, idempotency_key: str | None = None) -> SentMessage:
    """``POST /messages``: 403 for a disabled application, 400 for an invalid body, else the
    message stored and its fan-out enqueued after commit (202)."""
    if not record.enabled:
        raise MfpError(403, "FPWSE1007E", APP_DISABLED)
    normalized = normalize(body)
    _check_sendable(record, normalized)
    with transaction.atomic():
        _claim_key(record.app, idempotency_key)
        return _create(record.app, normalized, idempotency_key)


def bulk_limit() -> int:
    return int(getattr(settings, "HERALD_MFP_BULK_LIMIT", DEFAULT_BULK_LIMIT))


def _indexed(error: MfpError, index: int) -> MfpError:
    """The same error, naming the element of the bulk body it is about."""
    if "name" in error.params:
        error.params = {**error.params, "name": f"[{index}].{error.params['name']}"}
    else:
        error.extra = {**error.extra, "index": index}
    return error


def messages_send_bulk(
    *, record: MfpApplication, body: Any, idempotency_key: str | None = None
) -> list[SentMessage]:
    """``POST /messages/bulk``: all or nothing. Every element is checked first; if one fails the
    answer is a 400 naming its index and nothing is stored or sent. With an ``Idempotency-Key``,
    element ``n`` uses the key ``<key>#<n>``, so a replay returns the first answer."""
    if not record.enabled:
        raise MfpError(403, "FPWSE1007E", APP_DISABLED)
    items = body.get("messages") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise MfpError.invalid("messages", BAD_BULK)
    limit = bulk_limit()
    if not 1 <= len(items) <= limit:
        raise MfpError.invalid("messages", EMPTY_BULK % {"limit": limit})
    normalized = []
    for index, item in enumerate(items):
        try:
            message = normalize(item)
            _check_sendable(record, message)
        except MfpError as error:
            raise _indexed(error, index) from None
        normalized.append(message)
    sent = []
    with transaction.atomic():
        _claim_key(record.app, f"bulk:{idempotency_key}" if idempotency_key else None)
        for index, message in enumerate(normalized):
            key = f"{idempotency_key}#{index}" if idempotency_key else None
            try:
                sent.append(_create(record.app, message, key))
            except MfpError as error:
                raise _indexed(error, index) from None
    return sent


# --- reads and deletes ----------------------------------------------------------------------------


@transaction.atomic
def message_delete(*, app: App, message_id: str) -> None:
    """``DELETE /messages/{id}``: the message is canceled as ``notification_cancel`` cancels a
    notification (batches not yet dispatched are never sent; those already handed to APNs, FCM or
    WNS cannot be recalled) and removed from this API: GET and DELETE answer 404 afterwards.

    The notification row itself stays, canceled, in the OneSignal history with its delivery
    records, so what was already sent remains accounted for (our choice: deleting the rows under
    a batch a worker is sending would lose that record).
    """
    notification = message_or_404(app, message_id, lock=True)
    if not notification.canceled and notification.status != Notification.Status.COMPLETED:
        notification_cancel(app=app, notification_id=str(notification.pk))
    Notification.objects.filter(pk=notification.pk).update(
        request={**notification.request, MFP_DELETED: True}
    )
