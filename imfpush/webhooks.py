"""Writes for MFP webhooks (mobilefirst-push-api.md §3.7), over ``webhooks.services``.

A webhook's ``name`` is 1-255 characters without ``/``, unique in the App and immutable;
``eventTypes`` is a comma-separated string or an array of known event names; ``url`` obeys the
SSRF rule. The signing secret is generated, or set with a write-only ``secret`` property
(Herald's extension; never echoed).
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.models import App
from imfpush.errors import WEBHOOK_NOT_FOUND, MfpError
from webhooks.events import MFP_EVENTS
from webhooks.models import Webhook
from webhooks.services import (
    WebhookConflict,
    WebhookInvalid,
    event_types_check,
    webhook_create,
    webhook_delete,
    webhook_secret_check,
    webhook_update,
    webhook_url_check,
)

BAD_WEBHOOK_NAME = _("must be 1 to 255 characters without /")
BAD_EVENT_TYPES = _("must be a comma-separated string or an array of event names")
UNKNOWN_EVENT_TYPE = _("unknown event type %(name)s")
BAD_URL = _("must be an http or https URL that does not point at a non-public address: %(reason)s")
BAD_SECRET = _("must be a string of 16 to 255 characters")
NAME_IMMUTABLE = _("the webhook name cannot be changed")
MISSING = _("is required")


def mfp_webhooks(*, app: App):
    return Webhook.objects.filter(app=app, source=Webhook.Source.MFP).order_by("created_at", "id")


def mfp_webhook_or_404(*, app: App, name: str, lock: bool = False) -> Webhook:
    queryset = mfp_webhooks(app=app).filter(name=name)
    webhook = (queryset.select_for_update() if lock else queryset).first()
    if webhook is None:
        raise MfpError.not_found(WEBHOOK_NOT_FOUND)
    return webhook


def event_types_text(webhook: Webhook) -> str:
    return ",".join(webhook.event_types)


def _name(value) -> str:
    if not isinstance(value, str) or not (1 <= len(value) <= 255) or "/" in value:
        raise MfpError.invalid("name", BAD_WEBHOOK_NAME)
    return value


def _event_types(value) -> list[str]:
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(part, str) for part in value):
        names = [part.strip() for part in value if part.strip()]
    else:
        raise MfpError.invalid("eventTypes", BAD_EVENT_TYPES)
    if not names:
        raise MfpError.invalid("eventTypes", BAD_EVENT_TYPES)
    for name in names:
        if name not in MFP_EVENTS:
            reason = UNKNOWN_EVENT_TYPE % {"name": name}
            raise MfpError.invalid("eventTypes", f"{reason} ({', '.join(MFP_EVENTS)})")
    return event_types_check(names, allowed=MFP_EVENTS, field="eventTypes")


def _url(value) -> str:
    try:
        return webhook_url_check(value)
    except WebhookInvalid as exc:
        raise MfpError.invalid("url", BAD_URL % {"reason": exc.reason}) from exc


def _secret(body: dict) -> str | None:
    if body.get("secret") is None:
        return None
    try:
        return webhook_secret_check(body["secret"])
    except WebhookInvalid as exc:
        raise MfpError.invalid("secret", BAD_SECRET) from exc


def mfp_webhook_create(*, app: App, body: dict) -> Webhook:
    """POST webhooks: every field checked (400), then the name's uniqueness (409)."""
    name = _name(body.get("name"))
    if body.get("url") is None:
        raise MfpError.invalid("url", MISSING)
    url = _url(body.get("url"))
    if body.get("eventTypes") is None:
        raise MfpError.invalid("eventTypes", MISSING)
    event_types = _event_types(body["eventTypes"])
    secret = _secret(body)
    try:
        return webhook_create(
            app=app, source=Webhook.Source.MFP, name=name, url=url, event_types=event_types, secret=secret
        )
    except WebhookConflict as exc:
        raise MfpError.conflict("webhook", name) from exc


@transaction.atomic
def mfp_webhook_update(*, app: App, name: str | None, body: dict) -> Webhook:
    """PUT webhooks/{name} (or PUT webhooks with the name in the body): absent fields keep
    their value; a body ``name`` that differs from the path is a ``400``."""
    if name is None:
        if body.get("name") is None:
            raise MfpError.invalid("name", MISSING)
        name = _name(body["name"])
    elif body.get("name") is not None and body["name"] != name:
        raise MfpError.invalid("name", NAME_IMMUTABLE)
    url = _url(body["url"]) if body.get("url") is not None else None
    event_types = _event_types(body["eventTypes"]) if body.get("eventTypes") is not None else None
    secret = _secret(body)
    webhook = mfp_webhook_or_404(app=app, name=name, lock=True)
    return webhook_update(webhook=webhook, url=url, event_types=event_types, secret=secret)


@transaction.atomic
def mfp_webhook_delete(*, app: App, name: str) -> None:
    webhook_delete(webhook=mfp_webhook_or_404(app=app, name=name, lock=True))
