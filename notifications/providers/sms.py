"""SMS (device type 14) through an HTTP SMS gateway configured like MobileFirst's ``smsConf``.

The app's ``sms_gateway`` is ``{"host", "port", "programName", "name"?, "parameters": [{"name",
"value", "encode"?}], "method"?, "https"?}`` (validated by ``apps.credentials.read_sms_gateway``).
Each recipient gets one request to ``http(s)://host:port/programName`` (https when ``https`` is
true or the port is 443), ``GET`` with the parameters as the query string or ``POST`` with them
as a form body. In every value these placeholders are replaced, always URL-encoded:
``{phoneNumber}`` (E.164, as stored), ``{message}`` (the rendered ``contents``: the recipient's
language or English, tags substituted), ``{from}`` (``sms_from``) and ``{mediaUrls}``
(``sms_media_urls``, comma-separated). The rest of a value is URL-encoded unless its parameter
says ``"encode": false``. A configuration whose parameters use neither ``{phoneNumber}`` nor
``{message}`` (a MobileFirst ``smsConf`` stored elsewhere) gets ``to=`` and ``text=`` appended,
as MobileFirst sends them.

Answers: 2xx SENT; 429 and 408 TRANSIENT (honouring Retry-After); 5xx and transport errors
TRANSIENT; 401/403 ERROR (the gateway's credentials); a redirect ERROR (never followed); any other
4xx INVALID_RECIPIENT "InvalidNumber", which unsubscribes the player - unless the gateway refused
every number of a batch of five or more, which says the configuration is wrong, not the numbers:
those end ERROR "GatewayRejectedAll" and nobody is unsubscribed.

SSRF: the gateway host is a tenant setting; it must resolve to public addresses unless
HERALD_ALLOWED_PRIVATE_NETWORKS allows it (``core.ssrf``), and requests are pinned to the checked
addresses (``CURLOPT_RESOLVE``), never follow redirects and ignore environment proxies.

Requests go out concurrently over libcurl's multi interface (the project's ``Http2Client``),
HTTP/1.1 with keep-alive, a few connections per gateway.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import pycurl
from django.conf import settings

from core.ssrf import UnresolvableHost, UnsafeUrl, resolve_public_url
from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client

CONNECTIONS_PER_GATEWAY = 8
# HTTP/1.1 carries one request per connection: no more in flight than connections. A request
# handed to libcurl beyond that waits inside it for a connection with its timeout already running,
# so a slow gateway made queued requests time out mid-flight after the gateway had them (sent
# twice, or counted errored though delivered; tests/reliability/test_fault_matrix.py).
MAX_IN_FLIGHT = CONNECTIONS_PER_GATEWAY
TIMEOUT_MS = 20_000
ALL_REJECTED_MIN_BATCH = 5
_PLACEHOLDER = re.compile(r"\{(phoneNumber|message|from|mediaUrls)\}")


@dataclass
class SmsRequest(HttpRequest):
    method: str = "GET"
    resolve: list[str] = field(default_factory=list)


class SmsHttpClient(Http2Client):
    """The shared pycurl client for HTTP/1.1 GET or POST to a pinned, non-redirecting gateway."""

    def _handle_for(self, request: HttpRequest) -> pycurl.Curl:
        handle = super()._handle_for(request)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.PIPEWAIT, 0)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTPS | pycurl.PROTO_HTTP)
        if isinstance(request, SmsRequest):
            if request.method == "GET":
                handle.setopt(pycurl.HTTPGET, 1)
            if request.resolve:
                handle.setopt(pycurl.RESOLVE, request.resolve)
        return handle


def _client() -> SmsHttpClient:
    return shared_client(
        "sms",
        SmsHttpClient,
        max_in_flight=MAX_IN_FLIGHT,
        max_connections=CONNECTIONS_PER_GATEWAY,
        timeout_ms=min(TIMEOUT_MS, settings.HERALD_GATEWAY_TIMEOUT_SECONDS * 1000),
    )


def gateway_url(config: dict) -> str:
    https = config.get("https", config["port"] == 443)
    host = config["host"]
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if https else 'http'}://{host}:{config['port']}{config['programName']}"


def _encode(template: str, encode: bool, values: dict[str, str]) -> str:
    parts, position = [], 0
    for match in _PLACEHOLDER.finditer(template):
        static = template[position : match.start()]
        parts.append(quote(static, safe="") if encode else static)
        parts.append(quote(values[match[1]], safe=""))
        position = match.end()
    tail = template[position:]
    parts.append(quote(tail, safe="") if encode else tail)
    return "".join(parts)


def build_query(config: dict, values: dict[str, str]) -> str:
    """The URL-encoded parameters for one message (``values``: placeholder name -> text)."""
    parameters = config.get("parameters") or []
    pairs = [
        f"{quote(p['name'], safe='')}={_encode(p['value'], p.get('encode', True), values)}"
        for p in parameters
    ]
    templates = " ".join(p["value"] for p in parameters)
    if "{phoneNumber}" not in templates:
        pairs.append(f"to={quote(values['phoneNumber'], safe='')}")
    if "{message}" not in templates:
        pairs.append(f"text={quote(values['message'], safe='')}")
    return "&".join(pairs)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def classify(response: HttpResponse) -> tuple[Outcome, str, float | None]:
    status = response.status
    if status == 0:
        return Outcome.TRANSIENT, f"transport: {response.error}"[:64], None
    if 200 <= status < 300:
        return Outcome.SENT, "", None
    if 300 <= status < 400:
        return Outcome.ERROR, "GatewayRedirect", None
    if status in (401, 403):
        return Outcome.ERROR, "GatewayUnauthorized", None
    retry_after = _retry_after(response.headers.get("retry-after"))
    if status in (408, 429):
        return Outcome.TRANSIENT, "TooManyRequests" if status == 429 else "GatewayTimeout", retry_after
    if status >= 500:
        return Outcome.TRANSIENT, f"http {status}", retry_after
    return Outcome.INVALID_RECIPIENT, "InvalidNumber", None


class SmsProvider(Provider):
    platform = "sms"

    def __init__(self, app):
        super().__init__(app)
        if not app.sms_gateway_json:
            raise ProviderNotConfigured("SMS: the app has no SMS gateway (sms_gateway)")
        self.config = json.loads(app.sms_gateway_json)
        self.url = gateway_url(self.config)
        self.method = self.config.get("method", "GET")

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        if not items:
            return []
        try:
            pinned = resolve_public_url(self.url, purpose="sms_gateway", require_https=False)
        except UnresolvableHost:
            return [SendResult(r.player_id, Outcome.TRANSIENT, "GatewayUnresolvable") for r, _ in items]
        except UnsafeUrl:
            return [SendResult(r.player_id, Outcome.ERROR, "UnsafeGateway") for r, _ in items]
        body = items[0][1].body
        shared = {
            "from": body.get("sms_from") or "",
            "mediaUrls": ",".join(body.get("sms_media_urls") or []),
        }
        results: list[SendResult] = []
        requests_: list[HttpRequest] = []
        for recipient, message in items:
            if not message.content:
                results.append(SendResult(recipient.player_id, Outcome.ERROR, "NoContent"))
                continue
            query = build_query(
                self.config, {**shared, "phoneNumber": recipient.identifier, "message": message.content}
            )
            if self.method == "POST":
                url, data = self.url, query.encode()
                headers = ["content-type: application/x-www-form-urlencoded", "expect:"]
            else:
                url, data = f"{self.url}{'&' if '?' in self.url else '?'}{query}", b""
                headers = []
            requests_.append(
                SmsRequest(
                    url=url,
                    body=data,
                    headers=headers,
                    tag=recipient.player_id,
                    method=self.method,
                    resolve=pinned.curl_resolve(),
                )
            )
        sent = []
        for response in _client().send_all(requests_):
            outcome, reason, retry_after = classify(response)
            sent.append(SendResult(response.request.tag, outcome, reason, retry_after))
        if len(sent) >= ALL_REJECTED_MIN_BATCH and all(r.outcome is Outcome.INVALID_RECIPIENT for r in sent):
            sent = [SendResult(r.player_id, Outcome.ERROR, "GatewayRejectedAll") for r in sent]
        return results + sent
