"""Multiplexed HTTP/2 for APNs and FCM: libcurl's multi interface, through pycurl.

Hand-written on purpose: DESIGN.md's throughput table measured pycurl's CurlMulti with
PIPE_MULTIPLEX at ~8x pure-Python h2 (aioapns) and ~60x httpx, and the provider call rate caps
fan-out speed. Libraries still do what they are good at (google-auth tokens, PyJWT).

One client per worker process and origin keeps its TLS connection and HTTP/2 session across
batches. Streams refused by GOAWAY or reset surface as transport errors, which providers treat
as transient, so they are resent on a new connection.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass, field

import pycurl


@dataclass
class HttpRequest:
    url: str
    body: bytes
    headers: list[str]
    tag: object = None  # whatever the caller needs to match the response to its recipient


@dataclass
class HttpResponse:
    request: HttpRequest
    status: int  # 0 when no HTTP response arrived (connection error, timeout, reset)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    http_version: int = 0


class Http2Client:
    def __init__(
        self,
        *,
        ca_file: str | None = None,
        max_in_flight: int = 200,
        timeout_ms: int | None = None,  # None: HERALD_GATEWAY_TIMEOUT_SECONDS
        connect_timeout_ms: int = 10_000,
        max_connections: int = 2,
        client_cert_pem: bytes | None = None,
        client_key_pem: bytes | None = None,
    ):
        self.ca_file = ca_file
        # A TLS client certificate (APNs certificate-based auth), handed to libcurl from memory
        # so that the private key is never written to disk.
        self.client_cert_pem = client_cert_pem
        self.client_key_pem = client_key_pem
        self.max_in_flight = max_in_flight
        if timeout_ms is None:
            from django.conf import settings

            timeout_ms = settings.HERALD_GATEWAY_TIMEOUT_SECONDS * 1000
        self.timeout_ms = timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max_connections)
        self._idle: list[pycurl.Curl] = []

    def close(self) -> None:
        for handle in self._idle:
            handle.close()
        self._idle.clear()
        self.multi.close()

    def _handle_for(self, request: HttpRequest) -> pycurl.Curl:
        handle = self._idle.pop() if self._idle else pycurl.Curl()
        handle.reset()
        body, headers = io.BytesIO(), {}

        def on_header(line: bytes) -> None:
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()

        handle.setopt(pycurl.URL, request.url)
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.POSTFIELDS, request.body)
        handle.setopt(pycurl.HTTPHEADER, request.headers)
        version = (
            pycurl.CURL_HTTP_VERSION_2TLS
            if request.url.startswith("https://")
            else pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
        )
        handle.setopt(pycurl.HTTP_VERSION, version)
        handle.setopt(pycurl.PIPEWAIT, 1)  # wait to multiplex on the open connection
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.TIMEOUT_MS, self.timeout_ms)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, self.connect_timeout_ms)
        if self.ca_file:
            handle.setopt(pycurl.CAINFO, self.ca_file)
        if self.client_cert_pem is not None:
            handle.setopt(pycurl.SSLCERT_BLOB, self.client_cert_pem)
            handle.setopt(pycurl.SSLCERTTYPE, "PEM")
        if self.client_key_pem is not None:
            handle.setopt(pycurl.SSLKEY_BLOB, self.client_key_pem)
            handle.setopt(pycurl.SSLKEYTYPE, "PEM")
        handle.setopt(pycurl.WRITEDATA, body)
        handle.setopt(pycurl.HEADERFUNCTION, on_header)
        handle.herald = (request, body, headers)
        return handle

    def send_all(self, requests: list[HttpRequest]) -> list[HttpResponse]:
        """Send every request, at most ``max_in_flight`` streams at a time; one response each."""
        waiting = deque(requests)
        responses: list[HttpResponse] = []
        in_flight = 0
        while waiting or in_flight:
            while waiting and in_flight < self.max_in_flight:
                self.multi.add_handle(self._handle_for(waiting.popleft()))
                in_flight += 1
            while self.multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            finished = 0
            while True:
                queued, ok, failed = self.multi.info_read()
                for handle in ok:
                    responses.append(self._finish(handle, ""))
                for handle, _code, message in failed:
                    responses.append(self._finish(handle, message or "transport error"))
                finished += len(ok) + len(failed)
                if not queued:
                    break
            in_flight -= finished
            if in_flight and not finished:
                self.multi.select(0.05)
        return responses

    def _finish(self, handle: pycurl.Curl, error: str) -> HttpResponse:
        request, body, headers = handle.herald
        status = 0 if error else handle.getinfo(pycurl.RESPONSE_CODE)
        response = HttpResponse(
            request=request,
            status=status,
            body=body.getvalue(),
            headers=headers,
            error=error,
            http_version=handle.getinfo(pycurl.INFO_HTTP_VERSION),
        )
        self.multi.remove_handle(handle)
        del handle.herald
        self._idle.append(handle)
        return response


_shared_lock = threading.Lock()
_shared: dict[tuple[str, str], Http2Client] = {}


def shared_client(name: str, client_class: type[Http2Client] = Http2Client, **options) -> Http2Client:
    """The worker process's client for one gateway: its connections (and HTTP/2 streams) are
    reused across batches. A new client is made when the trusted CA file setting changes."""
    from django.conf import settings

    ca_file = settings.HERALD_GATEWAY_CA_FILE or ""
    key = (name, ca_file)
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            options.setdefault("max_in_flight", settings.HERALD_HTTP2_MAX_IN_FLIGHT)
            client = _shared[key] = client_class(ca_file=ca_file or None, **options)
        return client
