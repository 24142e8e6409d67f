"""The SMTP simulator (platform ``email``): an aiosmtpd server in the simulator's own event loop.

It speaks plain SMTP (ESMTP, with STARTTLS offered under the simulator's certificate, and AUTH
PLAIN/LOGIN accepted without TLS so a client configured with a username can log in). Each
recipient is decided at ``RCPT TO``, in the order the other simulators use:

1. the platform's fault plan (``faults``): ``Bounce`` -> 550, ``TempFail`` -> 451,
   ``MailboxFull`` -> 552; ``latency_ms`` delays every ``RCPT``; the connection faults: ``_timeout``
   never answers, ``_reset`` aborts the connection, ``_malformed`` answers a line that is not SMTP;
2. otherwise 250, and the message is recorded at ``DATA`` once per accepted recipient.

Every recipient is recorded: a refused one at ``RCPT`` (status 550/451/552, no message), an
accepted one at ``DATA`` (status 250, the message). The token is the recipient address; the
payload is ``{"from", "to", "subject", "html", "text", "headers", "mail_from"}``. An accepted
message is a duplicate when the same recipient already got one with the same identity: the
``X-Herald-Notification-Id`` header when there is one, otherwise the subject and body parts.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import ssl
import time
from email.message import EmailMessage
from typing import Any, ClassVar

import orjson
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gatewaysim.faults import ConnectionFault
from gatewaysim.gateway import Gateway
from gatewaysim.httpserver import HANG_SECONDS

SMTP_ERRORS: dict[str, tuple[int, str]] = {
    "Bounce": (550, "5.1.1 Recipient address rejected: User unknown in virtual mailbox table"),
    "TempFail": (451, "4.3.0 Temporary failure, please try again later"),
    "MailboxFull": (552, "5.2.2 Mailbox full"),
}
IDENTITY_HEADER = "x-herald-notification-id"
SHUTDOWN_GRACE_SECONDS = 2.0
# aiosmtpd logs each connection's AUTH mechanisms and a deprecation warning per login.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class SmtpGateway(Gateway):
    platform = "email"
    errors: ClassVar[dict[str, int]] = {name: code for name, (code, _) in SMTP_ERRORS.items()}
    tls = False
    default_port = 9104
    port_help = "SMTP (plain, STARTTLS offered)"
    url = ""

    def make_server(self, tls_context: ssl.SSLContext | None) -> SmtpServer:
        """``server.py`` serves this gateway with this instead of its HTTP server."""
        return SmtpServer(self, tls_context)

    def decode_payload(self, body: bytes) -> Any:
        record = orjson.loads(body)
        if record.get("data") is None:  # refused at RCPT: there is no message
            return {"from": None, "to": record["rcpt_to"], "mail_from": record["mail_from"]}
        message = email.message_from_bytes(record["data"].encode("utf-8", "surrogateescape"), policy=_POLICY)
        assert isinstance(message, EmailMessage)
        text, html = _bodies(message)
        return {
            "from": str(message.get("from", "")),
            "to": record["rcpt_to"],
            "subject": str(message.get("subject", "")),
            "html": html,
            "text": text,
            "headers": {name.lower(): str(value).strip() for name, value in message.items()},
            "mail_from": record["mail_from"],
        }

    # --- aiosmtpd handler hooks ---------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        try:
            error = plan.pick(address) if plan is not None else None
        except ConnectionFault as fault:
            if fault.kind == "_malformed":
                return "2x0 what?"  # not an SMTP reply
            if fault.kind == "_timeout":
                await asyncio.sleep(HANG_SECONDS)  # the client gives up long before
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 connection reset"
        if error is not None:
            code, text = SMTP_ERRORS[error]
            body = {"mail_from": envelope.mail_from, "rcpt_to": address, "data": None}
            self.state.record(
                self.platform, token=address, status=code, headers=_session_headers(session), body=_dump(body)
            )
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received_at = time.time()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(content, policy=_POLICY)
        headers = [(name.lower().encode(), str(value).strip().encode()) for name, value in message.items()]
        headers += _session_headers(session)
        identity = message.get(IDENTITY_HEADER)
        if not identity:
            text, html = _bodies(message)  # type: ignore[arg-type]
            identity = hashlib.sha256(f"{message.get('subject')}\0{text}\0{html}".encode()).hexdigest()
        data = content.decode("utf-8", "surrogateescape")
        for recipient in envelope.rcpt_tos:
            duplicate = self.state.seen_before(self.platform, recipient, str(identity))
            body = {"mail_from": envelope.mail_from, "rcpt_to": recipient, "data": data}
            self.state.record(
                self.platform,
                token=recipient,
                status=250,
                headers=headers,
                body=_dump(body),
                duplicate=duplicate,
                received_at=received_at,
            )
        return "250 2.0.0 OK: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # Any non-empty credentials are accepted; the login is kept so tests can see it was used.
        if isinstance(auth_data, LoginPassword) and auth_data.login and auth_data.password:
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)


_POLICY = email.policy.default


def _dump(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def _session_headers(session: Session) -> list[tuple[bytes, bytes]]:
    peer = session.peer if isinstance(session.peer, tuple) else (session.peer, "")
    headers = [(b"x-smtp-peer", f"{peer[0]}:{peer[1]}".encode())]
    if session.authenticated and session.auth_data:
        login = session.auth_data
        headers.append((b"x-smtp-auth-user", login if isinstance(login, bytes) else str(login).encode()))
    if session.ssl:
        headers.append((b"x-smtp-tls", b"starttls"))
    return headers


def _bodies(message: EmailMessage) -> tuple[str | None, str | None]:
    """(plain text, HTML) of a message, either of them None when absent."""
    text = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and text is None:
            text = part.get_content()
        elif content_type == "text/html" and html is None:
            html = part.get_content()
    return text, html


class _SmtpProtocol(SMTP):
    def __init__(self, server: SmtpServer, **kwargs: Any) -> None:
        super().__init__(server.gateway, **kwargs)
        self._owner = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner.connections.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner.connections.discard(self)
        super().connection_lost(error)


class SmtpServer:
    """Serves the SMTP gateway on one listening socket, in the running loop (as ``httpserver.Server``)."""

    scheme = "smtp"

    def __init__(self, gateway: SmtpGateway, tls_context: ssl.SSLContext | None = None) -> None:
        self.gateway = gateway
        # The HTTP gateways' context also offers h2 by ALPN; SMTP clients send no ALPN, so it serves.
        self.tls_context = tls_context
        self.connections: set[_SmtpProtocol] = set()
        self._server: asyncio.Server | None = None

    def _protocol(self) -> _SmtpProtocol:
        return _SmtpProtocol(
            self,
            hostname="gatewaysim",
            ident="gatewaysim ESMTP",
            tls_context=self.tls_context,
            require_starttls=False,
            auth_require_tls=False,
            authenticator=self.gateway.authenticate,
            loop=asyncio.get_running_loop(),
        )

    async def start(self, sock: Any) -> None:
        self._server = await asyncio.get_running_loop().create_server(self._protocol, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
