"""The HTTP SMS gateway simulator (platform ``sms``), the kind MobileFirst's ``smsConf`` targets.

It accepts ``GET`` or ``POST`` at any path (the gateway's ``programName``), with its parameters
in the query string, a form body or a JSON object body. The phone number and the text are read
from the first parameter with a conventional name (``PHONE_PARAMETERS``, ``MESSAGE_PARAMETERS``).
A send is answered in this order, and every send is recorded whatever the answer:

1. no phone number, or one that is not E.164-like (``+`` optional, 7 to 15 digits) -> 400
   ``InvalidNumber``; no text -> 400 ``MissingMessage``;
2. the platform's fault plan, ``token_errors`` keyed by the phone number as sent;
3. otherwise 200 ``{"status": "accepted", "messageId"}``.

The token is the phone number; the payload is ``{"phoneNumber", "message", "params", "method",
"path"}``. An accepted message is a duplicate when that number already got the same text.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson

from gatewaysim.asgi import BodyTooLarge, Header, Receive, Scope, Send, lifespan, read_body, respond_json
from gatewaysim.faults import FaultPlan
from gatewaysim.gateway import Gateway

PHONE_PARAMETERS = ("phoneNumber", "phone", "to", "number", "msisdn", "destination", "recipient")
MESSAGE_PARAMETERS = ("message", "text", "body", "msg", "content")
_PHONE = re.compile(r"^\+?[1-9][0-9]{6,14}$")
SMS_ERRORS: dict[str, tuple[int, str]] = {
    "InvalidNumber": (400, "The destination number is not a valid mobile number."),
    "MissingMessage": (400, "The message text is missing."),
    "Unauthorized": (401, "Invalid gateway credentials."),
    "TooManyRequests": (429, "Too many requests."),
    "InternalError": (500, "Internal gateway error."),
    "Unavailable": (503, "The gateway is temporarily unavailable."),
}
RETRY_AFTER_STATUSES = (429, 503)


class SmsGateway(Gateway):
    platform = "sms"
    errors: ClassVar[dict[str, int]] = {name: status for name, (status, _) in SMS_ERRORS.items()}
    tls = False  # plain HTTP/1.1, as most SMS gateways on a private port; HTTPS works the same
    default_port = 9105
    port_help = "plain HTTP/1.1"

    def __init__(self, state) -> None:
        super().__init__(state)
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "POST"):
            await respond_json(send, 405, {"error": "MethodNotAllowed"}, [(b"allow", b"GET, POST")])
            return
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            await respond_json(send, 413, {"error": "PayloadTooLarge"})
            return
        params = _params(scope, body)
        phone = _first(params, PHONE_PARAMETERS)
        message = _first(params, MESSAGE_PARAMETERS)
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        status, answer, headers, duplicate = self._answer(phone, message, plan)
        record = {
            "phoneNumber": phone,
            "message": message,
            "params": params,
            "method": scope["method"],
            "path": scope["path"],
        }
        self.state.record(
            self.platform,
            token=phone,
            status=status,
            headers=scope["headers"],
            body=orjson.dumps(record),
            duplicate=duplicate,
            received_at=received_at,
        )
        await respond_json(send, status, answer, headers)

    def _answer(
        self, phone: str | None, message: str | None, plan: FaultPlan | None
    ) -> tuple[int, dict[str, Any], list[Header], bool]:
        if phone is None or not _PHONE.match(phone):
            return (*self._error("InvalidNumber", None), False)
        if not message:
            return (*self._error("MissingMessage", None), False)
        if plan is not None:
            error = plan.pick(phone)
            if error is not None:
                return (*self._error(error, plan), False)
        identity = hashlib.sha256(message.encode()).hexdigest()
        duplicate = self.state.seen_before(self.platform, phone, identity)
        return 200, {"status": "accepted", "messageId": f"sim-{next(self._ids)}"}, [], duplicate

    def _error(self, name: str, plan: FaultPlan | None) -> tuple[int, dict[str, Any], list[Header]]:
        status, text = SMS_ERRORS[name]
        headers: list[Header] = []
        if plan is not None and plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
            headers.append((b"retry-after", b"%d" % plan.retry_after))
        return status, {"error": name, "message": text}, headers

    def decode_payload(self, body: bytes) -> Any:
        return orjson.loads(body)


def _params(scope: Scope, body: bytes) -> dict[str, str]:
    """Query parameters, then form or JSON body fields (a later value wins for a repeated name)."""
    params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").lower()
    if body and content_type.startswith(b"application/json"):
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            fields = None
        if isinstance(fields, dict):
            params.update(
                {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in fields.items()}
            )
    elif body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _first(params: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = params.get(name)
        if value is not None:
            return value
    return None
