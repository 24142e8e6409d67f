"""``/apps/{applicationId}/messages``: send, send in bulk, read and delete messages (§3.6)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView
from imfpush.message_selectors import message_detail, message_or_404, message_summary
from imfpush.messages import message_delete, message_send, messages_send_bulk
from imfpush.scopes import Requirement

MESSAGES_READ = Requirement("messages.read")
MESSAGES_WRITE = Requirement("messages.write")


def _idempotency_key(request) -> str | None:
    return request.META.get("HTTP_IDEMPOTENCY_KEY") or None


def _replay_headers(replayed: bool) -> dict[str, str]:
    return {"Idempotent-Replayed": "true"} if replayed else {}


class MessageCollectionView(MfpAppView):
    """Send a message (§3.6, §4): ``202`` with ``{"message": <normalized body>, "messageId"}`` and a
    ``Location``; delivery continues asynchronously. ``Idempotency-Key`` replays the first
    answer. A disabled application answers ``403`` ``FPWSE1007E``; ``notificationType`` 2 or 3
    without ``smsConf``, ``400`` ``FPWSE0003E``."""

    requirements = {"POST": MESSAGES_WRITE}

    def post(self, request, *args, **kwargs):
        sent = message_send(
            record=self.mfp_application, body=self.body, idempotency_key=_idempotency_key(request)
        )
        message_id = str(sent.notification.pk)
        href = self.href("apps", self.application_id, "messages", message_id)
        headers = {"Location": href, **_replay_headers(sent.replayed)}
        return Response(
            {"message": sent.message, "messageId": message_id},
            status=status.HTTP_202_ACCEPTED,
            headers=headers,
        )


class MessageBulkView(MfpAppView):
    """Send several messages: a JSON array of message bodies (or ``{"messages": [...]}``), at most
    100. All or nothing: an invalid element is a ``400`` naming its index and nothing is sent.
    ``202`` with ``{"messages": [{alert, createdTime, href, messageId}]}``."""

    requirements = {"POST": MESSAGES_WRITE}

    def post(self, request, *args, **kwargs):
        sent = messages_send_bulk(
            record=self.mfp_application, body=self.body, idempotency_key=_idempotency_key(request)
        )
        items = [
            message_summary(
                item.notification,
                self.href("apps", self.application_id, "messages", str(item.notification.pk)),
            )
            for item in sent
        ]
        headers = {"Location": items[0]["href"], **_replay_headers(all(item.replayed for item in sent))}
        return Response({"messages": items}, status=status.HTTP_202_ACCEPTED, headers=headers)


class MessageDetailView(MfpAppView):
    """GET: the message (``alert``, ``createdTime``, ``href``, ``messageId``) with Herald's
    ``status`` and counters (``recipients``, ``successful``, ``failed``, ``errored``,
    ``remaining``, ``converted``, ``received``, ``completedTime``, ``notificationType``).
    DELETE: cancel what is not yet dispatched and remove the message (``204``)."""

    requirements = {"GET": MESSAGES_READ, "DELETE": MESSAGES_WRITE}

    def get(self, request, *args, **kwargs):
        notification = message_or_404(self.app, kwargs["message_id"])
        href = self.href("apps", self.application_id, "messages", str(notification.pk))
        return Response(message_detail(notification, href))

    def delete(self, request, *args, **kwargs):
        message_delete(app=self.app, message_id=kwargs["message_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)
