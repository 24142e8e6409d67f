"""Huawei Push Kit (HMS Core push, device type 13, OneSignal's ``isHuawei``).

Auth: the OAuth 2 client-credentials grant against ``settings.HERALD_HMS_TOKEN_URL`` (Huawei's
``https://oauth-login.cloud.huawei.com/oauth2/v3/token``, the simulator in tests) with the app's
App ID and App Secret. The token is cached per credentials until a minute before ``expires_in``
(an hour at Huawei).

Send: ``POST {HERALD_HMS_BASE_URL}/v1/{app id}/messages:send`` with ``{"validate_only": false,
"message": {"token": [...], "data": "...", "android": {...}}}``. Push Kit takes up to 1,000
tokens per request, so recipients whose rendered message is byte-for-byte the same share one
request (a campaign without per-recipient text is one request per 1,000 players). The message is a
notification message (``android.notification`` with ``title``, ``body`` and ``click_action``
``{"type": 3}``, open the app), or a data message when ``huawei_msg_type`` is ``"data"`` or there
is no text. ``data`` is a JSON string in OneSignal's Android payload convention, as FCM's
``data`` (``custom`` = ``{"i": notification id, "u"?: url, "a"?: data}``, ``title``, ``alert``).

Answers (Push Kit's ``code``, whatever the HTTP status):

- ``80000000``: every token SENT;
- ``80100000``: partial success; the tokens in ``msg``'s ``illegal_tokens`` are INVALID_RECIPIENT
  "InvalidToken" (the player is unsubscribed), the others SENT;
- ``80300007`` (all tokens invalid): every token INVALID_RECIPIENT "InvalidToken";
- ``80200003`` (access token expired), ``80200001`` or any 401: the token is refreshed and the
  request sent again, once; if that fails too, TRANSIENT (expired) or ERROR (refused);
- ``81000001`` (internal error), 429, 5xx and transport errors: TRANSIENT, honouring Retry-After;
- any other code (``80100003`` bad message, ``80300008`` too large, ``80300002`` no permission...):
  ERROR for every token of the request.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import orjson
import requests
from django.conf import settings

from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client
from notifications.providers.oauth import ClientCredentialsTokens, TokenAuthError

MAX_TOKENS_PER_REQUEST = 1000
# Push Kit refuses a message over 4096 bytes (80300008), measured without its tokens.
MAX_MESSAGE_BYTES = 4096
MAX_TTL_SECONDS = 1_296_000  # 15 days
SUCCESS = "80000000"
PARTIAL_SUCCESS = "80100000"
ALL_TOKENS_INVALID = "80300007"
OAUTH_ERROR = "80200001"
TOKEN_EXPIRED = "80200003"  # noqa: S105 - a result code
INTERNAL_ERROR = "81000001"
INVALID_TOKEN_REASON = "InvalidToken"  # noqa: S105 - a reason name
# Push Kit result codes that no retry will fix, with the names Herald records.
ERROR_NAMES = {
    "80100001": "ParameterError",
    "80100003": "IllegalMessage",
    "80100004": "IllegalTtl",
    "80100013": "IllegalCollapseKey",
    "80100016": "SensitiveContent",
    "80100017": "TooManyTopicTasks",
    "80100018": "ReviewSignatureMismatch",
    OAUTH_ERROR: "OAuthError",
    "80200005": "JwtExpired",
    "80300002": "NoPushPermission",
    "80300008": "PayloadTooLarge",
    "80300010": "TooManyTokens",
    "80300011": "NoHighPriorityPermission",
    "80300013": "BadReceiptUrl",
    "80600003": "OAuthServiceError",
}
_HEX_COLOR = re.compile(r"^[0-9A-Fa-f]{6,8}$")

tokens = ClientCredentialsTokens("HERALD_HMS_TOKEN_URL")


def _client() -> Http2Client:
    return shared_client("hms")


def send_url(app_id: str) -> str:
    return f"{settings.HERALD_HMS_BASE_URL}/v1/{quote(app_id, safe='')}/messages:send"


def payload_data(message: RenderedMessage) -> str:
    """``message.data``: OneSignal's Android payload (as FCM's ``data``) as one JSON string."""
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
    return orjson.dumps(data).decode()


def _string(body: dict, *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build_message(message: RenderedMessage, *, default_title: str) -> dict[str, Any]:
    """A Push Kit ``Message`` without its ``token`` list (that is added per request)."""
    body = message.body
    ttl = min(MAX_TTL_SECONDS, max(1, message.ttl_seconds))
    android: dict[str, Any] = {"ttl": f"{ttl}s"}
    for name, field in (("huawei_category", "category"), ("huawei_bi_tag", "bi_tag")):
        if _string(body, name):
            android[field] = body[name]
    hms_message: dict[str, Any] = {"data": payload_data(message), "android": android}
    as_data = body.get("huawei_msg_type") == "data" or body.get("content_available") or not message.content
    if as_data:
        priority = _int(body.get("priority"))
        android["urgency"] = "HIGH" if priority is not None and priority >= 10 else "NORMAL"
        return hms_message
    notification: dict[str, Any] = {
        "title": message.heading or default_title,
        "body": message.content,
        "click_action": {"type": 3},  # open the app; the SDK reads the url from data.custom.u
    }
    channel = _string(body, "huawei_channel_id", "huawei_existing_channel_id")
    if channel:
        notification["channel_id"] = channel
    color = _string(body, "huawei_accent_color")
    if color and _HEX_COLOR.match(color):
        notification["color"] = f"#{color[-6:].upper()}"
    image = _string(body, "huawei_big_picture")
    if image and image.startswith("https://"):
        notification["image"] = image
    collapse_id = _string(body, "collapse_id")
    if collapse_id:
        notification["tag"] = collapse_id
    badge_class = _string(body, "huawei_badge_class")
    if badge_class:
        badge: dict[str, Any] = {"class": badge_class}
        for name, field in (("huawei_badge_add_num", "add_num"), ("huawei_badge_set_num", "set_num")):
            number = _int(body.get(name))
            if number is not None:
                badge[field] = number
        notification["badge"] = badge
    android["notification"] = notification
    return hms_message


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def result_code(response: HttpResponse) -> tuple[str, str]:
    """``(code, msg)`` of a Push Kit answer; empty strings when the body is not one."""
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(answer, dict):
        return "", ""
    msg = answer.get("msg")
    return str(answer.get("code") or ""), msg if isinstance(msg, str) else ""


def needs_new_token(response: HttpResponse) -> bool:
    code, _ = result_code(response)
    return response.status == 401 or code in (TOKEN_EXPIRED, OAUTH_ERROR)


def illegal_tokens(msg: str) -> set[str]:
    """The ``illegal_tokens`` of an 80100000 answer, whose ``msg`` is itself JSON."""
    try:
        detail = orjson.loads(msg)
    except orjson.JSONDecodeError:
        return set()
    listed = detail.get("illegal_tokens") if isinstance(detail, dict) else None
    return {token for token in listed if isinstance(token, str)} if isinstance(listed, list) else set()


def classify(response: HttpResponse) -> list[SendResult]:
    """One result per recipient of the request (its tag: ``[(player id, token), ...]``)."""
    recipients: list[tuple[Any, str]] = response.request.tag  # type: ignore[assignment]

    def every(outcome: Outcome, reason: str = "", retry_after: float | None = None) -> list[SendResult]:
        return [SendResult(player_id, outcome, reason, retry_after) for player_id, _ in recipients]

    if response.status == 0:
        return every(Outcome.TRANSIENT, f"transport: {response.error}"[:64])
    retry_after = _retry_after(response.headers.get("retry-after"))
    code, msg = result_code(response)
    if code == SUCCESS and response.status < 300:
        return every(Outcome.SENT)
    if code == PARTIAL_SUCCESS:
        # If msg cannot be read, nobody can tell which tokens failed: count them sent rather than
        # resend to the ones that got it.
        illegal = illegal_tokens(msg)
        return [
            SendResult(player_id, Outcome.INVALID_RECIPIENT, INVALID_TOKEN_REASON)
            if token in illegal
            else SendResult(player_id, Outcome.SENT)
            for player_id, token in recipients
        ]
    if code == ALL_TOKENS_INVALID:
        return every(Outcome.INVALID_RECIPIENT, INVALID_TOKEN_REASON)
    if code == TOKEN_EXPIRED or (response.status == 401 and code != OAUTH_ERROR):
        return every(Outcome.TRANSIENT, "TokenExpired", retry_after)
    if code == INTERNAL_ERROR:
        return every(Outcome.TRANSIENT, "InternalError", retry_after)
    if code in ERROR_NAMES:
        return every(Outcome.ERROR, ERROR_NAMES[code])
    if response.status == 429 or response.status >= 500:
        return every(Outcome.TRANSIENT, f"http {response.status}", retry_after)
    return every(Outcome.ERROR, f"code {code}" if code else f"http {response.status}")


class HmsProvider(Provider):
    platform = "hms"

    def __init__(self, app):
        super().__init__(app)
        if not app.huawei_app_id or not app.huawei_app_secret:
            raise ProviderNotConfigured("Huawei: the app has no App ID and App Secret")
        self.url = send_url(app.huawei_app_id)

    def _token(self, *, force_refresh: bool = False) -> str:
        return tokens.get(self.app.huawei_app_id, self.app.huawei_app_secret, force_refresh=force_refresh)

    def _requests(self, items: list[tuple[Recipient, RenderedMessage]], token: str) -> list[HttpRequest]:
        groups: dict[bytes, list[tuple[Any, str]]] = defaultdict(list)
        messages: dict[bytes, dict[str, Any]] = {}
        for recipient, message in items:
            hms_message = build_message(message, default_title=self.app.name)
            key = orjson.dumps(hms_message, option=orjson.OPT_SORT_KEYS)
            messages.setdefault(key, hms_message)
            groups[key].append((recipient.player_id, recipient.identifier))
        built = []
        for key, recipients in groups.items():
            for start in range(0, len(recipients), MAX_TOKENS_PER_REQUEST):
                chunk = recipients[start : start + MAX_TOKENS_PER_REQUEST]
                tokens_ = list(dict.fromkeys(identifier for _, identifier in chunk))
                built.append(self._request({**messages[key], "token": tokens_}, chunk, token))
        return built

    def _request(self, hms_message: dict[str, Any], recipients: list, token: str) -> HttpRequest:
        return HttpRequest(
            url=self.url,
            body=orjson.dumps({"validate_only": False, "message": hms_message}),
            headers=[f"authorization: Bearer {token}", "content-type: application/json;charset=UTF-8"],
            tag=recipients,
        )

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        if not items:
            return []
        try:
            token = self._token()
        except TokenAuthError as exc:
            return [SendResult(r.player_id, Outcome.ERROR, f"HmsAuth: {exc}"[:64]) for r, _ in items]
        except (requests.RequestException, ValueError, KeyError) as exc:
            reason = f"HmsToken: {type(exc).__name__}"[:64]
            return [SendResult(r.player_id, Outcome.TRANSIENT, reason) for r, _ in items]
        client = _client()
        responses = client.send_all(self._requests(items, token))
        stale = [response for response in responses if needs_new_token(response)]
        if stale:
            # Expired or refused: one fresh token, one more try for those requests only.
            responses = [response for response in responses if not needs_new_token(response)]
            try:
                token = self._token(force_refresh=True)
            except (TokenAuthError, requests.RequestException, ValueError, KeyError):
                tokens.forget(self.app.huawei_app_id, self.app.huawei_app_secret)
                token = ""
            if token:
                retried = [
                    HttpRequest(
                        url=r.request.url,
                        body=r.request.body,
                        headers=[f"authorization: Bearer {token}", *r.request.headers[1:]],
                        tag=r.request.tag,
                    )
                    for r in stale
                ]
                stale = client.send_all(retried)
                if any(needs_new_token(response) for response in stale):
                    tokens.forget(self.app.huawei_app_id, self.app.huawei_app_secret)
            responses += stale
        return [result for response in responses for result in classify(response)]
