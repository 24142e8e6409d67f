"""One-click email unsubscribe: the signed link that replaces ``[unsubscribe_url]``, and its view.

The token is ``django.core.signing`` over ``[app id, player id]`` with a salt of its own, so it
cannot be forged, needs no key and no database row, and is never valid for another purpose. It
does not expire: an unsubscribe link in a years-old email must still work.

``GET /email/unsubscribe/<token>`` (a person clicking the link) and ``POST`` (a mail client's
RFC 8058 one-click, with ``List-Unsubscribe-Post``) both unsubscribe the email player:
``notification_types = -2``, ``unsubscribed_reason = "unsubscribed"``. ``invalid_identifier``
stays false (the address works), so ``include_unsubscribed: true`` still reaches it. A player
that is already unsubscribed keeps its reason (a bounce stays a bounce). GET answers a small
HTML page, POST an empty 200.
"""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.models import App
from core.metrics import record_unsubscribe
from players.models import DeviceType, Player
from webhooks.hooks import on_players_unsubscribed

SALT = "herald.email.unsubscribe.v1"
PATH = "/email/unsubscribe/"
# Where links point when neither HERALD_UNSUBSCRIBE_BASE_URL nor HERALD_PUBLIC_URL is set:
# the address `make run` serves on.
FALLBACK_BASE_URL = "http://127.0.0.1:8000"
UNSUBSCRIBED_REASON = "unsubscribed"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>
</head><body><h1>{title}</h1><p>{text}</p></body></html>
"""


def unsubscribe_token(app_id: UUID | str, player_id: UUID | str) -> str:
    return signing.dumps([UUID(str(app_id)).hex, UUID(str(player_id)).hex], salt=SALT)


def read_token(token: str) -> tuple[UUID, UUID] | None:
    try:
        app_hex, player_hex = signing.loads(token, salt=SALT)
        return UUID(app_hex), UUID(player_hex)
    except (signing.BadSignature, ValueError, TypeError):
        return None


def unsubscribe_base_url() -> str:
    base = settings.HERALD_UNSUBSCRIBE_BASE_URL or settings.HERALD_PUBLIC_URL or FALLBACK_BASE_URL
    return base.rstrip("/")


def unsubscribe_url(app_id: UUID | str, player_id: UUID | str, *, base_url: str | None = None) -> str:
    return f"{base_url or unsubscribe_base_url()}{PATH}{unsubscribe_token(app_id, player_id)}"


def unsubscribe_player(app_id: UUID, player_id: UUID) -> bool:
    """Unsubscribe the email player; True when it exists (whether or not it was subscribed)."""
    players = Player.objects.filter(pk=player_id, app_id=app_id, device_type=DeviceType.EMAIL)
    changed = players.filter(notification_types__gt=0).update(
        notification_types=-2, unsubscribed_reason=UNSUBSCRIBED_REASON
    )
    record_unsubscribe(UNSUBSCRIBED_REASON, changed)
    if changed:
        on_players_unsubscribed(
            app_id=app_id, player_ids=[player_id], device_type=DeviceType.EMAIL, reason=UNSUBSCRIBED_REASON
        )
    return players.exists()


def _page(status: int, title: str, text: str) -> HttpResponse:
    response = HttpResponse(PAGE.format(title=escape(title), text=escape(text)), status=status)
    response["Content-Type"] = "text/html; charset=utf-8"
    return response


@csrf_exempt  # RFC 8058: mail clients POST with no cookie and no CSRF token; the link is the secret
@require_http_methods(["GET", "POST"])
def email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    ids = read_token(token)
    found = ids is not None and unsubscribe_player(*ids)
    if request.method == "POST":
        response = HttpResponse(b"", status=200 if found else 404, content_type="text/plain")
    elif found:
        app_name = App.objects.filter(pk=ids[0]).values_list("name", flat=True).first() or ""
        sender = app_name or "this sender"
        response = _page(200, "You are unsubscribed", f"You will no longer receive emails from {sender}.")
    else:
        response = _page(404, "Link not valid", "This unsubscribe link is not valid.")
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response
