"""A lean asyncio server for the simulators' ASGI apps: HTTP/2 (``h2``) and HTTP/1.1 (``h11``).

Why not hypercorn: on this project's 2-core machines, hypercorn answered pycurl's multiplexed
sends at about 600/s with 100 streams in flight and 400/s with 300. Its per-stream priority
tree costs O(streams) per frame, and every frame is its own TLS write. The simulator must not
be what limits Herald's delivery benchmarks. This server:

- picks HTTP/2 or HTTP/1.1 by TLS ALPN (plain TCP connections get HTTP/1.1);
- buffers each request body whole (they are small) and runs the app in one task per request;
- coalesces the frames of every response ready in the same loop turn into one write;
- advertises 1000 concurrent streams and large receive windows, so that hundreds of streams in
  flight never wait on flow control;
- never sends GOAWAY on its own except at shutdown.

A gateway may pass a ``ConnectionPolicy`` to change the last two per connection, for fault
injection: another SETTINGS_MAX_CONCURRENT_STREAMS (advertised again when it changes, enforced
per stream with REFUSED_STREAM once the client acknowledged it), and a GOAWAY after N streams on
a connection.

Only what the apps need is implemented: no server push, no trailers, no request streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11
import hpack.hpack
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hyperframe.frame import GoAwayFrame, SettingsFrame

from gatewaysim.asgi import JSON_CONTENT_TYPE, MAX_BODY, Header, Receive, Scope, Send
from gatewaysim.faults import ConnectionFault

App = Callable[[Scope, Receive, Send], Any]
MAX_CONCURRENT_STREAMS = 1000
STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 1 << 24
SHUTDOWN_GRACE_SECONDS = 2.0
GOAWAY_LINGER_SECONDS = 1.0
BACKLOG = 1024
SERVER_HEADER: Header = (b"server", b"gatewaysim")
ERROR_BODY = b'{"error": "internal simulator error"}'
# The ``_malformed`` fault's answer, and how long a ``_timeout`` fault holds a request unanswered.
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1><p>upstream sent garbage</p>"
HANG_SECONDS = 600.0
# What h2 itself enforces when a policy sets the limit (h2 would close the whole connection).
UNLIMITED_STREAMS = 2**31 - 1


@dataclass(frozen=True)
class StreamLimits:
    max_concurrent_streams: int = MAX_CONCURRENT_STREAMS
    goaway_after: int | None = None  # streams per connection before a GOAWAY; None: never


class ConnectionPolicy(Protocol):
    """Per-gateway HTTP/2 behaviour, read as each stream opens, so fault changes apply at once."""

    def stream_limits(self) -> StreamLimits: ...

    def connection_event(self, event: str) -> None:
        """``"opened"``, ``"goaway"`` or ``"refused"`` (a stream over the advertised limit)."""


def _remember_huffman_strings() -> None:
    """Memoise hpack's Huffman decoder, the largest cost per request.

    libcurl (nghttp2) never indexes ``authorization`` or ``:path`` in HPACK, so every request
    carries both Huffman-coded, and hpack decodes them bit by bit in Python. On one connection
    they are the same bytes request after request (one token, one project), so a small cache
    of decoded strings turns most decodes into a dictionary lookup.
    """
    decode = hpack.hpack.decode_huffman
    if getattr(decode, "memoised", False):
        return

    @functools.lru_cache(maxsize=4096)
    def cached(data: bytes) -> bytes:
        return decode(data)

    def decode_huffman(data: bytes | bytearray | memoryview | None) -> bytes:
        return cached(bytes(data)) if data else b""

    decode_huffman.memoised = True  # type: ignore[attr-defined]
    hpack.hpack.decode_huffman = decode_huffman


_remember_huffman_strings()


def tls_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    # RFC 9113 section 9.2: TLS 1.2 or later, no compression, no blocklisted ciphers.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class Server:
    """Serves one ASGI app on one listening socket."""

    def __init__(
        self, app: App, ssl_context: ssl.SSLContext | None = None, policy: ConnectionPolicy | None = None
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.policy = policy
        self.scheme = "https" if ssl_context else "http"
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=sock, ssl=self.ssl_context, backlog=BACKLOG
        )

    async def close(self) -> None:
        """Stop accepting, tell HTTP/2 clients to go away, give in-flight requests a moment."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=SHUTDOWN_GRACE_SECONDS)
        await asyncio.sleep(0)  # let the last coalesced writes go out
        for connection in list(self.connections):
            connection.close()

    def run_app(
        self,
        scope: Scope,
        body: bytes,
        respond: Callable[[int, list[Header], bytes], None],
        reset: Callable[[], None] | None = None,
    ) -> None:
        """Run the app for one request; ``respond`` gets the answer (or a 500 if the app fails);
        ``reset`` abandons the request (the ``_reset`` fault)."""
        task = asyncio.get_running_loop().create_task(self._call_app(scope, body, respond, reset))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call_app(
        self,
        scope: Scope,
        body: bytes,
        respond: Callable[[int, list[Header], bytes], None],
        reset: Callable[[], None] | None = None,
    ) -> None:
        status = 500
        headers: list[Header] = []
        chunks: list[bytes] = []
        done = False

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            nonlocal status, headers, done
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    done = True
                    respond(status, headers, b"".join(chunks))

        try:
            await self.app(scope, receive, send)
        except ConnectionFault as fault:
            if fault.kind == "_malformed":
                headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(MALFORMED_BODY))]
                respond(502, headers, MALFORMED_BODY)
                return
            if fault.kind == "_timeout":
                await asyncio.sleep(HANG_SECONDS)  # the client gives up long before
            if reset is not None:
                reset()
                return
        except Exception:
            traceback.print_exc(file=sys.stderr)
        if not done:
            respond(500, [JSON_CONTENT_TYPE, (b"content-length", b"%d" % len(ERROR_BODY))], ERROR_BODY)


class _Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.handler: _H2 | _H11 | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        base_scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "scheme": self.server.scheme,
            "server": transport.get_extra_info("sockname")[:2],
            "client": (transport.get_extra_info("peername") or ("", 0))[:2],
            "root_path": "",
        }
        if ssl_object is not None:
            # The ASGI TLS extension, for gateways that authenticate clients by certificate.
            base_scope["extensions"] = {"tls": {"client_cert_chain": _client_chain(ssl_object)}}
        self.handler = _H2(self, base_scope) if alpn == "h2" else _H11(self, base_scope)

    def data_received(self, data: bytes) -> None:
        assert self.handler is not None
        self.handler.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.handler is not None:
            self.handler.closed = True

    def shutdown(self) -> None:
        if self.handler is not None:
            self.handler.shutdown()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _client_chain(ssl_object: Any) -> list[str]:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return []
    return [x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()]


class _H2:
    def __init__(self, connection: _Connection, base_scope: Scope) -> None:
        self.connection = connection
        self.transport = connection.transport
        self.base_scope = {**base_scope, "http_version": "2"}
        self.closed = False
        self.policy = connection.server.policy
        limits = self.policy.stream_limits() if self.policy is not None else StreamLimits()
        self.advertised = limits.max_concurrent_streams
        # The limit the client has acknowledged (RFC 9113 section 6.5.3: only then may a server
        # rely on it), and the values advertised but not acknowledged yet, oldest first.
        self.enforced = UNLIMITED_STREAMS
        self.unacknowledged = [self.advertised]
        # Streams being answered (request received, response not ended), streams ever accepted,
        # and the last stream processed once a GOAWAY went out.
        self.open: set[int] = set()
        self.streams_seen = 0
        self.goaway_last: int | None = None
        self.lingering = False
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                # Responses are built here from constants: checking them again is wasted time.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                # libcurl's headers are well-formed; RFC 9113 header checks cost ~15% per request.
                validate_inbound_headers=False,
            )
        )
        self.h2.local_settings = _settings(self.advertised)
        self.h2.initiate_connection()
        if self.policy is not None:
            # The SETTINGS frame above advertised the policy's limit; from here on it is enforced
            # per stream (``_open``), once acknowledged: a client may open more streams before it
            # reads our SETTINGS, and h2 would end the whole connection for that. Over the limit
            # once acknowledged, RFC 9113 section 5.1.2 lets a server refuse just that stream.
            # Same values otherwise, so windows and header limits are unchanged.
            self.h2.local_settings = _settings(UNLIMITED_STREAMS)
            self.policy.connection_event("opened")
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        # stream id -> (request headers, body chunks, body size) until the request ends.
        self.requests: dict[int, tuple[list[Header], list[bytes], int]] = {}
        # stream id -> response bytes waiting for the client's flow-control window.
        self.unsent: dict[int, bytes] = {}
        self.flush_scheduled = False
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._open(event)
            elif isinstance(event, h2.events.DataReceived):
                self._body(event)
            elif isinstance(event, h2.events.StreamEnded):
                self._dispatch(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.requests.pop(event.stream_id, None)
                self.unsent.pop(event.stream_id, None)
                self.open.discard(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_unsent(event.stream_id)
            elif isinstance(event, h2.events.SettingsAcknowledged) and self.unacknowledged:
                self.enforced = self.unacknowledged.pop(0)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.flush()
                self.close()
                return
        self.flush()

    def _open(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        if self.goaway_last is not None and stream_id > self.goaway_last:
            return  # sent before the client read our GOAWAY: never processed, it retries elsewhere
        goaway_after = None
        if self.policy is not None:
            limits = self.policy.stream_limits()
            goaway_after = limits.goaway_after
            if limits.max_concurrent_streams != self.advertised:
                self._advertise(limits.max_concurrent_streams)
            if len(self.open) >= self.enforced:
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                self.policy.connection_event("refused")
                return
        self.requests[stream_id] = (event.headers, [], 0)  # type: ignore[assignment]
        self.open.add(stream_id)
        self.streams_seen += 1
        if goaway_after and self.goaway_last is None and self.streams_seen >= goaway_after:
            self._goaway(stream_id)

    def _advertise(self, max_streams: int) -> None:
        """A new SETTINGS_MAX_CONCURRENT_STREAMS, written beside h2 (which keeps enforcing none)."""
        self.advertised = max_streams
        self.unacknowledged.append(max_streams)
        self.flush()
        if not self.closed and self.transport is not None:
            frame = SettingsFrame(0, settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams})
            self.transport.write(frame.serialize())

    def _goaway(self, last_stream_id: int) -> None:
        """GOAWAY (NO_ERROR) as APNs sends it: streams up to ``last_stream_id`` are still answered,
        later ones are ignored, and the connection closes once the answered ones are done.

        Written beside h2 because ``close_connection`` would refuse to send those answers.
        """
        self.goaway_last = last_stream_id
        self.flush()
        if not self.closed and self.transport is not None:
            self.transport.write(GoAwayFrame(0, last_stream_id=last_stream_id, error_code=0).serialize())
        assert self.policy is not None
        self.policy.connection_event("goaway")

    def _body(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        request = self.requests.get(stream_id)
        if request is None:
            return
        headers, chunks, size = request
        size += len(event.data)
        if size > MAX_BODY:
            del self.requests[stream_id]
            self.open.discard(stream_id)
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        chunks.append(event.data)
        self.requests[stream_id] = (headers, chunks, size)

    def _dispatch(self, stream_id: int) -> None:
        request = self.requests.pop(stream_id, None)
        if request is None:
            return
        raw_headers, chunks, _ = request
        method = path = b""
        authority = None
        headers: list[Header] = []
        for name, value in raw_headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
            else:
                headers.append((name, value))
        if authority is not None:
            headers.insert(0, (b"host", authority))
        raw_path, _, query = path.partition(b"?")
        scope = {
            **self.base_scope,
            "method": method.decode("latin-1"),
            "path": raw_path.decode("latin-1"),
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
        }
        self.connection.server.run_app(
            scope,
            b"".join(chunks),
            lambda status, headers, body: self._respond(stream_id, status, headers, body),
            lambda: self._reset_stream(stream_id),
        )

    def _reset_stream(self, stream_id: int) -> None:
        """RST_STREAM (INTERNAL_ERROR) instead of an answer: the ``_reset`` fault."""
        self.open.discard(stream_id)
        if self.closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        self._schedule_flush()

    def _respond(self, stream_id: int, status: int, headers: list[Header], body: bytes) -> None:
        if self.closed:
            return
        # A bodiless answer (APNs' 200) ends the stream on its HEADERS frame, as Apple's servers
        # do, rather than with an empty DATA frame: aioapns parses every DATA frame as JSON.
        try:
            self.h2.send_headers(
                stream_id, [(b":status", b"%d" % status), SERVER_HEADER, *headers], end_stream=not body
            )
        except h2.exceptions.ProtocolError:
            self.open.discard(stream_id)
            self._schedule_flush()
            return  # the client reset the stream meanwhile
        if not body:
            self.open.discard(stream_id)
            self._schedule_flush()
            return
        self.unsent[stream_id] = body
        self._send_unsent(stream_id)
        self._schedule_flush()

    def _send_unsent(self, stream_id: int) -> None:
        # Stream 0 means the connection window grew: any stream may proceed.
        for sid in list(self.unsent) if stream_id == 0 else [stream_id]:
            data = self.unsent.get(sid)
            if data is None:
                continue
            try:
                window = min(self.h2.local_flow_control_window(sid), len(data))
                frame = self.h2.max_outbound_frame_size
                sent = 0
                while sent < window:
                    size = min(frame, window - sent)
                    self.h2.send_data(sid, data[sent : sent + size])
                    sent += size
                if sent == len(data):
                    del self.unsent[sid]
                    self.open.discard(sid)
                    self.h2.end_stream(sid)
                else:
                    self.unsent[sid] = data[sent:]
            except h2.exceptions.ProtocolError:
                self.unsent.pop(sid, None)
                self.open.discard(sid)

    def _schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        data = self.h2.data_to_send()
        if data and not self.closed and self.transport is not None:
            self.transport.write(data)
        if self.goaway_last is not None and not self.open and not self.closed and not self.lingering:
            # After our GOAWAY, once every stream it kept is answered: closed a moment later, as
            # servers do, not at once. Closed with the client's frames still unread, the socket
            # would send a TCP reset, and the client could lose answers it had not read yet
            # (libcurl: "Broken pipe" for streams the gateway had taken: sent twice).
            self.lingering = True
            asyncio.get_running_loop().call_later(GOAWAY_LINGER_SECONDS, self.close)

    def shutdown(self) -> None:
        if not self.closed:
            self.h2.close_connection()
            self.flush()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _settings(max_concurrent_streams: int) -> h2.settings.Settings:
    return h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 16,
        },
    )


class _H11:
    """HTTP/1.1: one request at a time per connection, keep-alive, pipelined requests queued."""

    def __init__(self, connection: _Connection, base_scope: Scope) -> None:
        self.connection = connection
        self.transport = connection.transport
        self.base_scope = {**base_scope, "http_version": "1.1"}
        self.closed = False
        self.h11 = h11.Connection(h11.SERVER)
        self.request: h11.Request | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.busy = False

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._next()

    def _next(self) -> None:
        while not self.busy and not self.closed:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                self._reply_and_close(400, b'{"error": "bad request"}')
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.request, self.body, self.size = event, [], 0
                if self.h11.they_are_waiting_for_100_continue and self.transport is not None:
                    # curl sends "Expect: 100-continue" with bodies over 1 KB, then waits a second.
                    self.transport.write(
                        self.h11.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
            elif isinstance(event, h11.Data):
                self.size += len(event.data)
                if self.size > MAX_BODY:
                    self._reply_and_close(413, b'{"error": "body too large"}')
                    return
                self.body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.busy = True
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def _dispatch(self) -> None:
        assert self.request is not None
        target = bytes(self.request.target)
        raw_path, _, query = target.partition(b"?")
        scope = {
            **self.base_scope,
            "method": self.request.method.decode("latin-1"),
            "path": raw_path.decode("latin-1"),
            "raw_path": raw_path,
            "query_string": query,
            "headers": [(bytes(name), bytes(value)) for name, value in self.request.headers],
        }
        self.connection.server.run_app(scope, b"".join(self.body), self._respond, self.abort)

    def abort(self) -> None:
        """Drop the connection with a TCP reset instead of an answer: the ``_reset`` fault."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _respond(self, status: int, headers: list[Header], body: bytes) -> None:
        if self.closed or self.transport is None:
            return
        response = h11.Response(status_code=status, headers=[SERVER_HEADER, *headers])
        self.transport.write(
            self.h11.send(response) + self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
        )
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
            self.close()
            return
        self.h11.start_next_cycle()
        self.busy = False
        self._next()

    def _reply_and_close(self, status: int, body: bytes) -> None:
        if self.transport is not None and self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [JSON_CONTENT_TYPE, (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
            self.transport.write(
                self.h11.send(h11.Response(status_code=status, headers=headers))
                + self.h11.send(h11.Data(data=body))
                + self.h11.send(h11.EndOfMessage())
            )
        self.close()

    def shutdown(self) -> None:
        if not self.busy:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
