"""``/apps/{applicationId}/webhooks``: list, create, read, update and delete webhooks (§3.7).

Items are always full (``eventTypes`` as a comma-separated string, ``href``, ``name``, ``url``);
the signing secret is write-only.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView, MfpView
from imfpush.api.listing import page, parse_filters, text_field
from imfpush.scopes import Requirement
from imfpush.webhooks import (
    event_types_text,
    mfp_webhook_create,
    mfp_webhook_delete,
    mfp_webhook_or_404,
    mfp_webhook_update,
    mfp_webhooks,
)
from webhooks.models import Webhook

WEBHOOKS_READ = Requirement("webhooks.read")
WEBHOOKS_WRITE = Requirement("webhooks.write")

WEBHOOK_FILTERS = {"name": text_field("name"), "url": text_field("url")}


def webhook_json(view: MfpView, webhook: Webhook) -> dict:
    return {
        "eventTypes": event_types_text(webhook),
        "href": view.href("apps", view.application_id, "webhooks", webhook.name),
        "name": webhook.name,
        "url": webhook.url,
    }


class WebhookCollectionView(MfpAppView):
    """List (always full items; ``filter`` on ``name`` and ``url``), create (``201``, ``409`` when
    the name exists), or update the webhook named in the body (the [YAML] form of PUT).

    ``eventTypes`` is a comma-separated string or an array of onDeviceRegister, onDeviceUpdate,
    onDeviceUnregister, onSubscribe, onUnsubscribe, onNotificationStatusChange,
    onNotificationFailure and onMessageSent (Herald's extension). ``url`` must be http(s) and
    public. An optional write-only ``secret`` (16-255 characters) sets the HMAC signing key.
    """

    requirements = {"GET": WEBHOOKS_READ, "POST": WEBHOOKS_WRITE, "PUT": WEBHOOKS_WRITE}

    def get(self, request, *args, **kwargs):
        webhooks = mfp_webhooks(app=self.app).filter(parse_filters(request, WEBHOOK_FILTERS))
        return Response(page(request, webhooks, "webhooks", lambda webhook: webhook_json(self, webhook)))

    def post(self, request, *args, **kwargs):
        webhook = mfp_webhook_create(app=self.app, body=self.body_object())
        body = webhook_json(self, webhook)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["href"]})

    def put(self, request, *args, **kwargs):
        # [YAML] writes the PUT path without a name: the body names the webhook (§6 #17).
        webhook = mfp_webhook_update(app=self.app, name=None, body=self.body_object())
        return Response(webhook_json(self, webhook))


class WebhookDetailView(MfpAppView):
    """Read, update (absent fields unchanged; the name is immutable) or delete one webhook;
    ``404`` "The webhook does not exist." when there is none by that name."""

    requirements = {"GET": WEBHOOKS_READ, "PUT": WEBHOOKS_WRITE, "DELETE": WEBHOOKS_WRITE}

    def get(self, request, *args, **kwargs):
        return Response(webhook_json(self, mfp_webhook_or_404(app=self.app, name=kwargs["webhook_name"])))

    def put(self, request, *args, **kwargs):
        webhook = mfp_webhook_update(app=self.app, name=kwargs["webhook_name"], body=self.body_object())
        return Response(webhook_json(self, webhook))

    def delete(self, request, *args, **kwargs):
        mfp_webhook_delete(app=self.app, name=kwargs["webhook_name"])
        return Response(status=status.HTTP_204_NO_CONTENT)
