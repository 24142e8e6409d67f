"""The Huawei Push Kit simulator (platform ``hms``): the OAuth token endpoint and the v1 send API, on
one HTTPS port.

- ``POST /oauth2/v3/token``: the client-credentials grant (form: ``grant_type=client_credentials``,
  ``client_id`` = the App ID, ``client_secret`` = the App Secret) answered ``{"access_token",
  "expires_in": 3600, "token_type": "Bearer"}``. Errors are 400 ``{"error": 1101, "sub_error",
  "error_description"}`` as Huawei's OAuth server sends; the secret is checked only for App IDs
  registered with ``POST /_sim/hms/apps``.
- ``POST /v1/{app id}/messages:send`` with ``{"validate_only"?, "message": {...}}``. Answered
  ``{"code", "msg", "requestId"}``, in this order:

  1. no ``Authorization: Bearer`` token issued to this app id -> 401 ``80200001``; one that has
     expired (after an hour, or after ``POST /_sim/hms/oauth/expire``) -> 401 ``80200003``;
  2. a message Push Kit would reject (``check_request``) -> 400 ``80100003`` with the reason in
     ``msg``; no token or more than 1,000 -> 400 ``80300010``; the message without its tokens over
     4096 bytes -> 400 ``80300008``;
  3. the fault plan: ``fail_first`` and ``error_rates`` fail the whole request with their code;
     a ``token_errors`` entry of ``80300007`` makes that token illegal (any other code fails the
     request);
  4. tokens made invalid with ``POST /_sim/hms/tokens/invalidate``, and strings that cannot be
     tokens (empty, spaces), are illegal;
  5. no illegal token: 200 ``80000000``; some: 200 ``80100000`` with ``msg`` the JSON text
     ``{"success", "failure", "illegal_tokens"}``; all of them: 400 ``80300007``.
     ``validate_only`` messages are answered the same but never delivered.

Each token of a request is recorded as one delivery (``token`` the device token), with status 200
when the device gets the message and the answer's status otherwise (400 for an illegal token). Its
payload is the message without the token list. A delivery is a duplicate when that token already
accepted one with the same identity: ``custom.i`` in the ``data`` JSON (Herald's notification id),
otherwise the message's sha256.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gatewaysim.asgi import (
    BodyTooLarge,
    Header,
    Receive,
    Scope,
    Send,
    lifespan,
    read_body,
    respond,
    respond_json,
)
from gatewaysim.client_tokens import ClientTokens, TokenState, bearer
from gatewaysim.faults import FaultPlan
from gatewaysim.gateway import ControlHandler, Gateway

TOKEN_PATH = "/oauth2/v3/token"  # noqa: S105 - a path, not a secret
SEND_PREFIX = "/v1/"
SEND_SUFFIX = "/messages:send"
MAX_TOKENS = 1000
MAX_MESSAGE_BYTES = 4096
MAX_TTL_SECONDS = 1_296_000

SUCCESS = "80000000"
PARTIAL_SUCCESS = "80100000"
ILLEGAL_MESSAGE = "80100003"
OAUTH_ERROR = "80200001"
TOKEN_EXPIRED = "80200003"  # noqa: S105 - a result code
ALL_TOKENS_INVALID = "80300007"
MESSAGE_TOO_LARGE = "80300008"
TOO_MANY_TOKENS = "80300010"
# Fault name -> (HTTP status, msg). Push Kit's result codes, plus the plain HTTP answers of its
# flow control, which carry no result code.
HMS_ERRORS: dict[str, tuple[int, str]] = {
    ALL_TOKENS_INVALID: (400, "All the tokens are invalid"),
    ILLEGAL_MESSAGE: (400, "Illegal payload"),
    MESSAGE_TOO_LARGE: (400, "The message body size exceeds the default value"),
    TOO_MANY_TOKENS: (400, "The number of tokens in the message body exceeds the default value"),
    "80300002": (403, "The current app does not have the permission to send messages"),
    OAUTH_ERROR: (401, "Oauth authentication error"),
    TOKEN_EXPIRED: (401, "Oauth Token expired"),
    "81000001": (500, "System inner error"),
    "TooManyRequests": (429, "Too many requests"),
    "TrafficControl": (503, "Service unavailable: traffic control"),
}
RESULT_CODES = {name for name in HMS_ERRORS if name.isdigit()}
RETRY_AFTER_STATUSES = (429, 503)

MESSAGE_KEYS = {"data", "notification", "android", "apns", "webpush", "token", "topic", "condition"}
NOTIFICATION_KEYS = {"title", "body", "image"}
ANDROID_KEYS = {
    "bi_tag",
    "category",
    "collapse_key",
    "data",
    "fast_app_target",
    "notification",
    "receipt_id",
    "target_user_type",
    "ttl",
    "urgency",
}
ANDROID_NOTIFICATION_KEYS = {
    "title",
    "body",
    "icon",
    "color",
    "sound",
    "default_sound",
    "tag",
    "click_action",
    "body_loc_key",
    "body_loc_args",
    "title_loc_key",
    "title_loc_args",
    "multi_lang_key",
    "channel_id",
    "notify_summary",
    "image",
    "style",
    "big_title",
    "big_body",
    "notify_id",
    "group",
    "badge",
    "ticker",
    "when",
    "importance",
    "use_default_vibrate",
    "use_default_light",
    "vibrate_config",
    "visibility",
    "light_settings",
    "foreground_show",
    "profile_id",
    "inbox_content",
    "buttons",
}
CATEGORIES = {
    "IM",
    "VOIP",
    "SUBSCRIPTION",
    "TRAVEL",
    "HEALTH",
    "WORK",
    "ACCOUNT",
    "EXPRESS",
    "FINANCE",
    "DEVICE_REMINDER",
    "MAIL",
    "PLAY_VOICE",
    "MARKETING",
}
_TTL = re.compile(r"^[0-9]+(\.[0-9]{1,9})?[sS]?$")
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class MessageError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class HmsGateway(Gateway):
    platform = "hms"
    errors = {name: status for name, (status, _) in HMS_ERRORS.items()}
    default_port = 9107

    def __init__(self, state) -> None:
        super().__init__(state)
        self.tokens = ClientTokens("CgB6e3x9")  # Huawei's access tokens start like this
        self.invalid_tokens: set[str] = set()
        self._request_ids = itertools.count(int(time.time() * 1000))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == TOKEN_PATH or (path.startswith(SEND_PREFIX) and path.endswith(SEND_SUFFIX)):
            if scope["method"] != "POST":
                await respond(send, 405, b"", [(b"allow", b"POST")])
            elif path == TOKEN_PATH:
                await self._token(receive, send)
            else:
                app_id = path[len(SEND_PREFIX) : -len(SEND_SUFFIX)]
                await self._send(scope, receive, send, app_id)
            return
        await respond_json(send, 404, {"code": "404", "msg": f"Not found: {path}"})

    # --- OAuth ---------------------------------------------------------------------------------

    async def _token(self, receive: Receive, send: Send) -> None:
        try:
            form = dict(parse_qsl((await read_body(receive)).decode("utf-8", "replace")))
        except BodyTooLarge:
            form = {}
        error = None
        if form.get("grant_type") != "client_credentials":
            error = (
                1101,
                20001,
                "unsupported grant_type" if form.get("grant_type") else "missing grant_type",
            )
        elif not form.get("client_id") or not form.get("client_secret"):
            error = (1101, 20001, "missing client_id or client_secret")
        elif not self.tokens.secret_matches(form["client_id"], form["client_secret"]):
            error = (1101, 12304, "invalid client_secret")
        if error is not None:
            code, sub_error, description = error
            await respond_json(
                send, 400, {"sub_error": sub_error, "error_description": description, "error": code}
            )
            return
        token = self.tokens.issue(form["client_id"])
        await respond_json(
            send,
            200,
            {"access_token": token, "expires_in": self.tokens.lifetime, "token_type": "Bearer"},
            [(b"cache-control", b"no-store")],
        )

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, scope: Scope, receive: Receive, send: Send, app_id: str) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = b""
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        status, code, msg, headers, outcomes = self._answer(scope, body, app_id, plan)
        for token, token_status, duplicate in outcomes:
            self.state.record(
                self.platform,
                token=token,
                status=token_status,
                headers=scope["headers"],
                body=body,
                duplicate=duplicate,
                received_at=received_at,
            )
        answer = {"code": code, "msg": msg, "requestId": f"{next(self._request_ids)}{status:03d}"}
        if code in ("TooManyRequests", "TrafficControl"):
            answer = {"msg": msg}  # flow control is plain HTTP, without a Push Kit result code
        await respond(send, status, orjson.dumps(answer), headers)

    def _answer(
        self, scope: Scope, body: bytes, app_id: str, plan: FaultPlan | None
    ) -> tuple[int, str, str, list[Header], list[tuple[str | None, int, bool]]]:
        """(status, code, msg, extra headers, [(token, recorded status, duplicate)]) for one request."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            request = None
        tokens = _tokens_of(request)

        def everyone(status: int, code: str, msg: str, headers: list[Header] | None = None):
            outcomes = [(token, status, False) for token in tokens] or [(None, status, False)]
            return status, code, msg, headers or [], outcomes

        state = self.tokens.check(bearer(_header(scope, b"authorization")), app_id)
        if state is TokenState.EXPIRED:
            return everyone(401, TOKEN_EXPIRED, HMS_ERRORS[TOKEN_EXPIRED][1])
        if state is not TokenState.VALID:
            return everyone(401, OAUTH_ERROR, HMS_ERRORS[OAUTH_ERROR][1])
        try:
            message = check_request(request)
        except MessageError as error:
            return everyone(400, error.code, error.msg)

        illegal = {token for token in tokens if token in self.invalid_tokens or not _token_shaped(token)}
        if plan is not None:
            error = plan.pick(None)  # fail_first and error_rates: the whole request
            if error is None:
                for token in tokens:
                    token_error = plan.token_errors.get(token)
                    if token_error == ALL_TOKENS_INVALID:
                        illegal.add(token)
                    elif token_error is not None:
                        error = token_error
                        break
            if error is not None:
                status, msg = HMS_ERRORS[error]
                headers: list[Header] = []
                if plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers.append((b"retry-after", b"%d" % plan.retry_after))
                if error == ALL_TOKENS_INVALID:
                    illegal = set(tokens)
                else:
                    return everyone(status, error, msg, headers)

        if tokens and illegal >= set(tokens):
            return everyone(400, ALL_TOKENS_INVALID, HMS_ERRORS[ALL_TOKENS_INVALID][1])
        validate_only = bool(request.get("validate_only"))
        identity = _identity(message)
        outcomes: list[tuple[str | None, int, bool]] = []
        for token in tokens:
            if token in illegal:
                outcomes.append((token, 400, False))
            else:
                duplicate = not validate_only and self.state.seen_before(self.platform, token, identity)
                outcomes.append((token, 200, duplicate))
        if not tokens:  # a topic or condition message
            outcomes.append((None, 200, False))
        if not illegal:
            return 200, SUCCESS, "Success", [], outcomes
        detail = {
            "success": len(tokens) - len(illegal),
            "failure": len(illegal),
            "illegal_tokens": [token for token in dict.fromkeys(tokens) if token in illegal],
        }
        return 200, PARTIAL_SUCCESS, orjson.dumps(detail).decode(), [], outcomes

    def decode_payload(self, body: bytes) -> Any:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")
        message = request.get("message") if isinstance(request, dict) else None
        if not isinstance(message, dict):
            return request
        return {name: value for name, value in message.items() if name != "token"}

    # --- control -------------------------------------------------------------------------------

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("POST", "/_sim/hms/apps"): self._register_app,
            ("POST", "/_sim/hms/tokens/invalidate"): self._invalidate_tokens,
            ("POST", "/_sim/hms/oauth/expire"): self._expire_access_tokens,
            ("GET", "/_sim/hms/oauth"): self._oauth_counts,
        }

    async def _register_app(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body[k] for k in ("app_id", "app_secret")
        ):
            return 400, {"error": "app_id and app_secret (strings) are required"}
        self.tokens.clients[body["app_id"]] = body["app_secret"]
        return 201, {"app_id": body["app_id"]}

    async def _invalidate_tokens(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return 400, {"error": "tokens: an array of push tokens"}
        self.invalid_tokens.update(tokens)
        return 200, {"invalidated": len(tokens)}

    async def _expire_access_tokens(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"expired": self.tokens.expire_all()}

    async def _oauth_counts(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, self.tokens.counts()

    def reset(self, keep_tokens: bool) -> None:
        """Forget invalid device tokens and (unless ``keep_tokens``) access tokens; apps are kept."""
        self.tokens.reset(keep_tokens)
        self.invalid_tokens.clear()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _tokens_of(request: Any) -> list[str]:
    message = request.get("message") if isinstance(request, dict) else None
    tokens = message.get("token") if isinstance(message, dict) else None
    if not isinstance(tokens, list):
        return []
    return [token for token in tokens if isinstance(token, str)]


def _token_shaped(token: str) -> bool:
    return bool(token) and len(token) <= 1024 and token.isprintable() and not any(c.isspace() for c in token)


def _identity(message: dict[str, Any]) -> str:
    data = message.get("data")
    android = message.get("android")
    if isinstance(android, dict) and isinstance(android.get("data"), str):
        data = android["data"]  # android.data overrides message.data on the device
    try:
        payload = orjson.loads(data) if isinstance(data, str) else None
        custom = payload.get("custom") if isinstance(payload, dict) else None
        if isinstance(custom, str):
            custom = orjson.loads(custom)
        notification_id = custom.get("i") if isinstance(custom, dict) else None
    except orjson.JSONDecodeError:
        notification_id = None
    if notification_id:
        return str(notification_id)
    without_tokens = {name: value for name, value in message.items() if name != "token"}
    return hashlib.sha256(orjson.dumps(without_tokens, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- what Push Kit refuses ------------------------------------------------------------------------


def _fail(msg: str, code: str = ILLEGAL_MESSAGE) -> MessageError:
    return MessageError(code, msg)


def _object(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object")
    unknown = set(value) - keys
    if unknown:
        raise _fail(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    return value


def _optional_string(parent: dict[str, Any], name: str, where: str) -> str | None:
    value = parent.get(name)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{where}.{name} must be a string")
    return value


def _https(parent: dict[str, Any], name: str, where: str) -> None:
    value = _optional_string(parent, name, where)
    if value is not None and not value.startswith("https://"):
        raise _fail(f"{where}.{name} must be an https URL")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_request(request: Any) -> dict[str, Any]:
    """The request's message if Push Kit would take it; raises MessageError otherwise."""
    request = _object(request, "the request body", {"validate_only", "message", "review"})
    if "validate_only" in request and not isinstance(request["validate_only"], bool):
        raise _fail("validate_only must be a boolean")
    message = _object(request.get("message"), "message", MESSAGE_KEYS)
    targets = [name for name in ("token", "topic", "condition") if message.get(name) is not None]
    if len(targets) != 1:
        raise _fail("exactly one of message.token, message.topic and message.condition must be set")
    if "token" in targets:
        tokens = message["token"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise _fail("message.token must be an array of strings")
        if not 0 < len(tokens) <= MAX_TOKENS:
            raise _fail(f"message.token must hold 1 to {MAX_TOKENS} tokens", TOO_MANY_TOKENS)
    else:
        _optional_string(message, targets[0], "message")
    _optional_string(message, "data", "message")
    notification = message.get("notification")
    if notification is not None:
        _object(notification, "message.notification", NOTIFICATION_KEYS)
        for name in ("title", "body"):
            _optional_string(notification, name, "message.notification")
        _https(notification, "image", "message.notification")
    android = message.get("android")
    android_notification = None
    if android is not None:
        android = _object(android, "message.android", ANDROID_KEYS)
        android_notification = _check_android(android)
    if notification is not None and android_notification is None:
        raise _fail("message.android.notification.click_action is required for a notification message")
    if android_notification is not None:
        for name in ("title", "body"):
            if not (android_notification.get(name) or (notification or {}).get(name)):
                raise _fail(f"a notification message needs a {name}")
    has_data = message.get("data") is not None or (android is not None and android.get("data") is not None)
    if notification is None and android_notification is None and not has_data:
        raise _fail("the message has neither data nor a notification")
    without_tokens = {name: value for name, value in message.items() if name != "token"}
    if len(orjson.dumps(without_tokens)) > MAX_MESSAGE_BYTES:
        raise _fail(HMS_ERRORS[MESSAGE_TOO_LARGE][1], MESSAGE_TOO_LARGE)
    return message


def _check_android(android: dict[str, Any]) -> dict[str, Any] | None:
    where = "message.android"
    collapse_key = android.get("collapse_key")
    if collapse_key is not None and (not _integer(collapse_key) or not -1 <= collapse_key <= 100):
        raise _fail(f"{where}.collapse_key must be an integer from -1 to 100")
    urgency = android.get("urgency")
    if urgency is not None and urgency not in ("HIGH", "NORMAL"):
        raise _fail(f"{where}.urgency must be HIGH or NORMAL")
    category = android.get("category")
    if category is not None and category not in CATEGORIES:
        raise _fail(f"{where}.category is not a Push Kit category")
    ttl = android.get("ttl")
    if ttl is not None:
        if not isinstance(ttl, str) or not _TTL.match(ttl):
            raise _fail(f'{where}.ttl must be a duration in seconds, like "86400s"')
        if float(ttl.rstrip("sS")) > MAX_TTL_SECONDS:
            raise _fail(f"{where}.ttl must be at most {MAX_TTL_SECONDS}s")
    for name in ("bi_tag", "data", "receipt_id"):
        _optional_string(android, name, where)
    for name in ("fast_app_target", "target_user_type"):
        if name in android and not _integer(android[name]):
            raise _fail(f"{where}.{name} must be an integer")
    notification = android.get("notification")
    if notification is None:
        return None
    where = "message.android.notification"
    notification = _object(notification, where, ANDROID_NOTIFICATION_KEYS)
    for name in ("title", "body", "icon", "sound", "tag", "channel_id", "group", "notify_summary"):
        _optional_string(notification, name, where)
    _https(notification, "image", where)
    color = _optional_string(notification, "color", where)
    if color is not None and not _COLOR.match(color):
        raise _fail(f"{where}.color must look like #RRGGBB")
    importance = notification.get("importance")
    if importance is not None and importance not in ("LOW", "NORMAL"):
        raise _fail(f"{where}.importance must be LOW or NORMAL")
    style = notification.get("style")
    if style is not None and style not in (0, 1, 3):
        raise _fail(f"{where}.style must be 0, 1 or 3")
    click = notification.get("click_action")
    if click is None:
        raise _fail(f"{where}.click_action is required")
    click = _object(click, f"{where}.click_action", {"type", "intent", "url", "action", "rich_resource"})
    kind = click.get("type")
    if kind not in (1, 2, 3, 4) or isinstance(kind, bool):
        raise _fail(f"{where}.click_action.type must be 1, 2 or 3")
    if kind == 1 and not (click.get("intent") or click.get("action")):
        raise _fail(f"{where}.click_action needs an intent or an action for type 1")
    if kind == 2:
        if not click.get("url"):
            raise _fail(f"{where}.click_action.url is required for type 2")
        _https(click, "url", f"{where}.click_action")
    badge = notification.get("badge")
    if badge is not None:
        badge = _object(badge, f"{where}.badge", {"add_num", "class", "set_num"})
        add_num, set_num = badge.get("add_num"), badge.get("set_num")
        if add_num is not None and (not _integer(add_num) or not 0 < add_num < 100):
            raise _fail(f"{where}.badge.add_num must be an integer from 1 to 99")
        if set_num is not None and (not _integer(set_num) or not 0 <= set_num < 100):
            raise _fail(f"{where}.badge.set_num must be an integer from 0 to 99")
        if not isinstance(badge.get("class"), str):
            raise _fail(f"{where}.badge.class is required")
    buttons = notification.get("buttons")
    if buttons is not None and (not isinstance(buttons, list) or len(buttons) > 3):
        raise _fail(f"{where}.buttons must be an array of at most 3 buttons")
    return notification
