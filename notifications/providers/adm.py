"""Amazon Device Messaging (device type 2, OneSignal's ``isAdm``: Fire OS devices).

Auth: Login with Amazon's client-credentials grant against ``settings.HERALD_ADM_TOKEN_URL``
(``https://api.amazon.com/auth/o2/token``, the simulator in tests) with the security profile's
client id and secret and ``scope=messaging:push``. The token is cached per credentials until a
minute before ``expires_in`` (an hour at Amazon).

Send: one ``POST {HERALD_ADM_BASE_URL}/messaging/registrations/{registration id}/messages`` per
player (ADM has no multicast), all of a batch at once over the shared multiplexed client, with
``X-Amzn-Type-Version: com.amazon.device.messaging.ADMMessage@1.0`` and ``X-Amzn-Accept-Type:
com.amazon.device.messaging.ADMSendResult@1.0``. The body is ``{"data": {...}, "expiresAfter":
<what is left of the ttl, 60 s to 31 days>, "consolidationKey"?: collapse_id}``; ``data`` holds
string values only, in OneSignal's Android payload convention (``custom`` = JSON ``{"i":
notification id, "u"?, "a"?}``, ``title``, ``alert``, plus ``sound``/``sicon``/``licon``/``bicon``/
``grp`` from the ``adm_*`` fields).

Answers (``{"reason": ...}`` bodies on errors):

- 200 ``{"registrationID"}``: SENT. When Amazon answers another registration id than the one sent
  (the app instance's canonical id), ``SendResult.extra[CANONICAL_IDENTIFIER]`` carries (sent, new)
  and the pipeline makes the new one the player's identifier;
- 400 ``InvalidRegistrationId`` and 410 ``Unregistered``: INVALID_RECIPIENT (the player is
  unsubscribed, with that reason);
- 401 (``AccessTokenExpired``): the token is refreshed and the message sent again, once; TRANSIENT
  if that fails too;
- 413 ``MessageTooLarge`` and the other 400 reasons (``InvalidData``, ``InvalidConsolidationKey``,
  ``InvalidExpiration``, ``InvalidChecksum``, ``InvalidType``): ERROR;
- 429 ``MaxRateExceeded``, 500, 503 and transport errors: TRANSIENT, honouring Retry-After.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import requests
from django.conf import settings

from notifications.providers.base import (
    CANONICAL_IDENTIFIER,
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client
from notifications.providers.oauth import ClientCredentialsTokens, TokenAuthError
from players.validation import MAX_IDENTIFIER_LENGTH

SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
MIN_EXPIRES_AFTER = 60
MAX_EXPIRES_AFTER = 2_678_400  # 31 days
MAX_CONSOLIDATION_KEY = 64
# ADM refuses a message whose data exceeds 6 KB (413 MessageTooLarge).
MAX_DATA_BYTES = 6144
PERMANENT_REASONS = {"InvalidRegistrationId", "Unregistered"}
STATUS_REASONS = {
    400: "InvalidData",
    401: "AccessTokenExpired",
    410: "Unregistered",
    413: "MessageTooLarge",
    429: "MaxRateExceeded",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
# OneSignal request field -> ADM data key the Amazon SDK reads.
EXTRA_DATA_FIELDS = {
    "adm_sound": "sound",
    "adm_small_icon": "sicon",
    "adm_large_icon": "licon",
    "adm_big_picture": "bicon",
    "adm_group": "grp",
}

tokens = ClientCredentialsTokens("HERALD_ADM_TOKEN_URL", form={"scope": SCOPE})


def _client() -> Http2Client:
    return shared_client("adm")


def message_url(registration_id: str) -> str:
    # Registration ids come from devices: quoted whole, so none can leave its path segment.
    return (
        f"{settings.HERALD_ADM_BASE_URL}/messaging/registrations/{quote(registration_id, safe='')}/messages"
    )


def build_body(message: RenderedMessage) -> dict[str, Any]:
    body = message.body
    custom: dict[str, Any] = {"i": message.notification_id}
    url = body.get("app_url") or body.get("url")
    if url:
        custom["u"] = url
    if body.get("data"):
        custom["a"] = body["data"]
    data: dict[str, str] = {"custom": orjson.dumps(custom).decode()}
    if message.heading:
        data["title"] = message.heading
    if message.content:
        data["alert"] = message.content
    if body.get("buttons"):
        data["actionButtons"] = orjson.dumps(body["buttons"]).decode()
    for field, key in EXTRA_DATA_FIELDS.items():
        value = body.get(field)
        if isinstance(value, str) and value:
            data[key] = value
    adm: dict[str, Any] = {
        "data": data,
        "expiresAfter": min(MAX_EXPIRES_AFTER, max(MIN_EXPIRES_AFTER, message.ttl_seconds)),
    }
    collapse_id = body.get("collapse_id")
    if isinstance(collapse_id, str) and 0 < len(collapse_id) <= MAX_CONSOLIDATION_KEY:
        adm["consolidationKey"] = collapse_id
    return adm


def build_request(recipient: Recipient, message: RenderedMessage, token: str) -> HttpRequest:
    return HttpRequest(
        url=message_url(recipient.identifier),
        body=orjson.dumps(build_body(message)),
        headers=[
            f"authorization: Bearer {token}",
            "content-type: application/json",
            "accept: application/json",
            f"x-amzn-type-version: {TYPE_VERSION}",
            f"x-amzn-accept-type: {ACCEPT_TYPE}",
        ],
        tag=recipient,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _answer(response: HttpResponse) -> dict[str, Any]:
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _storable(registration_id: str) -> bool:
    """A canonical id Herald can keep as an identifier (players.validation's rules for tokens)."""
    return (
        0 < len(registration_id) <= MAX_IDENTIFIER_LENGTH
        and registration_id.isprintable()
        and (" " not in registration_id)
    )


def classify(response: HttpResponse) -> SendResult:
    recipient: Recipient = response.request.tag  # type: ignore[assignment]
    status = response.status
    if status == 0:
        return SendResult(recipient.player_id, Outcome.TRANSIENT, f"transport: {response.error}"[:64])
    answer = _answer(response)
    if status == 200:
        current = answer.get("registrationID")
        extra = (
            {CANONICAL_IDENTIFIER: (recipient.identifier, current)}
            if isinstance(current, str) and current != recipient.identifier and _storable(current)
            else {}
        )
        return SendResult(recipient.player_id, Outcome.SENT, extra=extra)
    reason = answer.get("reason") if isinstance(answer.get("reason"), str) else ""
    reason = reason or STATUS_REASONS.get(status, f"http {status}")
    retry_after = _retry_after(response.headers.get("retry-after"))
    if reason in PERMANENT_REASONS and status in (400, 410):
        return SendResult(recipient.player_id, Outcome.INVALID_RECIPIENT, reason)
    if status == 401:
        return SendResult(recipient.player_id, Outcome.TRANSIENT, reason[:64], retry_after)
    if status == 429 or status >= 500:
        return SendResult(recipient.player_id, Outcome.TRANSIENT, reason[:64], retry_after)
    return SendResult(recipient.player_id, Outcome.ERROR, reason[:64])


class AdmProvider(Provider):
    platform = "adm"

    def __init__(self, app):
        super().__init__(app)
        if not app.adm_client_id or not app.adm_client_secret:
            raise ProviderNotConfigured("ADM: the app has no client ID and client secret")

    def _token(self, *, force_refresh: bool = False) -> str:
        return tokens.get(self.app.adm_client_id, self.app.adm_client_secret, force_refresh=force_refresh)

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        if not items:
            return []
        try:
            token = self._token()
        except TokenAuthError as exc:
            return [SendResult(r.player_id, Outcome.ERROR, f"AdmAuth: {exc}"[:64]) for r, _ in items]
        except (requests.RequestException, ValueError, KeyError) as exc:
            reason = f"AdmToken: {type(exc).__name__}"[:64]
            return [SendResult(r.player_id, Outcome.TRANSIENT, reason) for r, _ in items]
        client = _client()
        bodies = {recipient.player_id: message for recipient, message in items}
        responses = client.send_all([build_request(r, m, token) for r, m in items])
        expired = [response for response in responses if response.status == 401]
        if expired:
            # AccessTokenExpired: one fresh token, one more try for those messages only.
            responses = [response for response in responses if response.status != 401]
            try:
                token = self._token(force_refresh=True)
            except (TokenAuthError, requests.RequestException, ValueError, KeyError):
                tokens.forget(self.app.adm_client_id, self.app.adm_client_secret)
                token = ""
            if token:
                expired = client.send_all(
                    [build_request(r.request.tag, bodies[r.request.tag.player_id], token) for r in expired]
                )
                if any(response.status == 401 for response in expired):
                    tokens.forget(self.app.adm_client_id, self.app.adm_client_secret)
            responses += expired
        return [classify(response) for response in responses]
