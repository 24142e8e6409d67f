"""Writes for webhooks: record events (one ``WebhookCall`` per matching webhook) and enqueue them.

``webhook_event_emit`` is the one entry point every producer calls (device and subscription
services, the delivery pipeline, open tracking, unsubscribes). Call it inside the producer's
transaction: the call rows commit or roll back with the change they report, and their delivery
tasks are enqueued only after commit.
"""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.models import App
from core.ssrf import UnsafeUrl, check_public_url
from webhooks.events import ONESIGNAL_EVENTS, mfp_body, onesignal_body, source_of
from webhooks.models import Webhook, WebhookCall

logger = logging.getLogger(__name__)


def mfp_application_id(app: App) -> str:
    """The App's MobileFirst applicationId, or its OneSignal app id when it has none (§1.4)."""
    from imfpush.models import MfpApplication

    found = MfpApplication.objects.filter(app_id=app.pk).values_list("application_id", flat=True).first()
    return found or str(app.pk)


def webhooks_listening(*, app: App | str, event_types: tuple[str, ...] | list[str]) -> list[Webhook]:
    """The app's webhooks that listen to any of ``event_types`` (one query; filtered here, since
    JSON containment is not portable to the embedded SQLite default)."""
    app_id = app.pk if isinstance(app, App) else app
    sources = {source_of(event_type) for event_type in event_types}
    wanted = set(event_types)
    hooks = Webhook.objects.filter(app_id=app_id, source__in=sources).only(
        "pk", "event_types", "source", "app_id"
    )
    return [hook for hook in hooks if wanted & set(hook.event_types or [])]


def webhook_event_emit(*, app, event_type: str, entity: dict) -> None:
    """Record ``event_type`` for every webhook of ``app`` that listens to it, and enqueue the
    deliveries after the surrounding transaction commits. Cheap when nothing listens (one query).

    ``entity`` is the event's ``entity`` (MFP) or ``data`` (OneSignal side), JSON-serialisable.
    """
    hooks = webhooks_listening(app=app, event_types=[event_type])
    if not hooks:
        return
    now = timezone.now()
    if source_of(event_type) == Webhook.Source.ONESIGNAL:
        payload = onesignal_body(app_id=str(app.pk), event_type=event_type, entity=entity, at=now)
    else:
        payload = mfp_body(
            application_id=mfp_application_id(app), event_type=event_type, entity=entity, at=now
        )
    calls = WebhookCall.objects.bulk_create(
        [
            WebhookCall(
                webhook_id=hook.pk,
                event_type=event_type,
                payload=payload,
                created_at=now,
                next_attempt_at=now,
            )
            for hook in hooks
        ]
    )
    call_ids = [call.pk for call in calls]
    transaction.on_commit(lambda: _enqueue(call_ids))


def _enqueue(call_ids: list[int]) -> None:
    from webhooks.tasks import webhook_deliver_task

    for call_id in call_ids:
        try:
            webhook_deliver_task.delay(call_id)
        except Exception:  # broker down: the sweeper finds the pending row again
            logger.exception("could not enqueue webhook call %s", call_id)


# --- configuration: shared by the MobileFirst API, PUT /apps/{id} and the dashboard -------------

MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 255
TEST_EVENT = "test"


class WebhookInvalid(ValueError):
    """A field of a webhook is invalid; each API turns it into its own 400 body."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class WebhookConflict(ValueError):
    """A webhook with that name already exists in the app (for that API)."""


def webhook_url_check(url, *, field: str = "url") -> str:
    """http(s) only, and not (resolving to) loopback, private or link-local addresses unless
    ``HERALD_ALLOWED_PRIVATE_NETWORKS`` allows them. A host that does not resolve now is
    accepted (nothing is fetched yet); every delivery checks again, pinned."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookInvalid(field, "must be an http or https URL")
    url = url.strip()
    try:
        check_public_url(url, purpose=field, allow_unresolvable=True, require_https=False)
    except UnsafeUrl as exc:
        raise WebhookInvalid(field, str(exc)) from exc
    return url


def webhook_secret_check(secret, *, field: str = "secret") -> str:
    if not isinstance(secret, str) or not (MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH):
        raise WebhookInvalid(
            field, f"must be a string of {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
        )
    return secret


def event_types_check(values, *, allowed: tuple[str, ...], field: str) -> list[str]:
    """A non-empty list of known event names, duplicates dropped, order kept."""
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise WebhookInvalid(field, "must name at least one event")
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise WebhookInvalid(field, f"unknown event type {unknown[0]}; known: {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def webhook_create(
    *, app: App, source: str, name: str, url: str, event_types: list[str], secret: str | None = None
) -> Webhook:
    """Insert a checked webhook; ``WebhookConflict`` when its name is taken in that app and API."""
    webhook = Webhook(app=app, source=source, name=name, url=url, event_types=event_types)
    if secret:
        webhook.secret = secret
    try:
        with transaction.atomic():
            webhook.save(force_insert=True)
    except IntegrityError as exc:
        raise WebhookConflict(name) from exc
    return webhook


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    url: str | None = None,
    event_types: list[str] | None = None,
    secret: str | None = None,
) -> Webhook:
    """Change the given (already checked) fields; the name never changes."""
    if url is not None:
        webhook.url = url
    if event_types is not None:
        webhook.event_types = event_types
    if secret:
        webhook.secret = secret
    webhook.updated_at = timezone.now()
    webhook.save(update_fields=["url", "event_types", "secret", "updated_at"])
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    """The webhook and its delivery log; calls already enqueued find nothing and stop."""
    webhook.delete()


def onesignal_webhooks_parse(value) -> list[dict]:
    """``PUT /apps/{id}`` ``webhooks``: ``[{"url", "events", "secret"?}]`` checked (SSRF rule, known
    events), or ``WebhookInvalid`` naming the item."""
    if not isinstance(value, list):
        raise WebhookInvalid("webhooks", 'must be an array of {"url": ..., "events": [...]}')
    parsed = []
    for index, item in enumerate(value):
        where = f"webhooks[{index}]"
        if not isinstance(item, dict):
            raise WebhookInvalid(where, 'must be an object {"url": ..., "events": [...]}')
        entry = {
            "url": webhook_url_check(item.get("url"), field=f"{where}.url"),
            "events": event_types_check(
                item.get("events"), allowed=ONESIGNAL_EVENTS, field=f"{where}.events"
            ),
        }
        if item.get("secret") is not None:
            entry["secret"] = webhook_secret_check(item["secret"], field=f"{where}.secret")
        parsed.append(entry)
    return parsed


@transaction.atomic
def onesignal_webhooks_replace(*, app: App, items: list[dict]) -> list[Webhook]:
    """Replace the app's OneSignal-side webhooks with ``items`` (from ``onesignal_webhooks_parse``).

    A webhook whose URL is kept keeps its secret (and delivery log) unless a new secret is given,
    so re-sending the same list, as clients do with a whole App object, changes nothing else.
    """
    existing = {
        hook.url: hook for hook in Webhook.objects.select_for_update().filter(app=app, source="onesignal")
    }
    kept: list[Webhook] = []
    for item in items:
        hook = existing.pop(item["url"], None)
        if hook is not None:
            kept.append(webhook_update(webhook=hook, event_types=item["events"], secret=item.get("secret")))
            continue
        kept.append(
            webhook_create(
                app=app,
                source="onesignal",
                name=f"onesignal-{uuid.uuid4().hex[:12]}",
                url=item["url"],
                event_types=item["events"],
                secret=item.get("secret"),
            )
        )
    Webhook.objects.filter(pk__in=[hook.pk for hook in existing.values()]).delete()
    return kept


def onesignal_webhooks_json(app: App) -> list[dict]:
    """What ``GET /apps/{id}`` shows: URLs and events, never secrets."""
    hooks = Webhook.objects.filter(app=app, source="onesignal").order_by("created_at", "id")
    return [{"url": hook.url, "events": list(hook.event_types)} for hook in hooks]


@transaction.atomic
def webhook_send_test(*, webhook: Webhook) -> WebhookCall:
    """Queue a ``test`` event for one webhook, whatever it listens to (the dashboard's action)."""
    now = timezone.now()
    entity = {"message": "This is a test event from Herald.", "webhook": webhook.name}
    if webhook.source == Webhook.Source.ONESIGNAL:
        payload = onesignal_body(app_id=str(webhook.app_id), event_type=TEST_EVENT, entity=entity, at=now)
    else:
        payload = mfp_body(
            application_id=mfp_application_id(webhook.app), event_type=TEST_EVENT, entity=entity, at=now
        )
    call = WebhookCall.objects.create(
        webhook=webhook, event_type=TEST_EVENT, payload=payload, created_at=now, next_attempt_at=now
    )
    transaction.on_commit(lambda: _enqueue([call.pk]))
    return call
