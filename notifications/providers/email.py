"""Email (device type 11) over SMTP with Django's SMTP ``EmailBackend`` and the app's server.

One SMTP connection (login and STARTTLS once) carries the whole batch, one message per recipient:
each message is personalised (``{{ tag }}`` in subject and body; tag values HTML-escaped in the
body) and carries the recipient's own signed one-click unsubscribe link in place of
``[unsubscribe_url]``, in ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058).

Outcomes per recipient:
- accepted by the server: SENT;
- refused with 5xx at ``RCPT TO`` (a hard bounce): INVALID_RECIPIENT "Bounced", which unsubscribes
  the player;
- 4xx anywhere (greylisting, throttling), a dropped connection, a timeout: TRANSIENT; after a
  dropped connection the rest of the batch goes over a new one;
- 5xx for the sender or the message, bad SMTP credentials, a certificate that does not verify:
  ERROR (retrying will not help, and the address is not to blame).

SSRF: the SMTP host is a tenant setting, so it must resolve to public addresses unless
HERALD_ALLOWED_PRIVATE_NETWORKS allows it (``core.ssrf``), and the connection goes to exactly the
addresses checked (the host name is still used for STARTTLS verification).

Port 465 means implicit TLS (SMTPS); otherwise ``smtp_use_tls`` means STARTTLS. When
HERALD_GATEWAY_CA_FILE is set (the simulators' CA) it is trusted in addition to the system CAs.
"""

from __future__ import annotations

import contextlib
import functools
import html as html_lib
import re
import smtplib
import socket
import ssl
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.utils.html import escape, strip_tags

from core.ssrf import UnresolvableHost, UnsafeUrl, resolve_public_url
from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.rendering import personalise, render_text
from notifications.unsubscribe import unsubscribe_base_url, unsubscribe_url

UNSUBSCRIBE_PLACEHOLDER = "[unsubscribe_url]"
NOTIFICATION_ID_HEADER = "X-Herald-Notification-Id"
SMTP_TIMEOUT_SECONDS = 30
SMTPS_PORT = 465
PREHEADER = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;'
    'overflow:hidden;mso-hide:all" aria-hidden="true">{}</div>'
)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|li|tr|table|blockquote)>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


class _PinnedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that connects to the addresses the SSRF check resolved, in order."""

    def __init__(self, *args: Any, addresses: tuple[str, ...], **kwargs: Any) -> None:
        self._addresses = addresses
        super().__init__(*args, **kwargs)

    def _connect(self, port: int, timeout: float) -> socket.socket:
        error: OSError | None = None
        for address in self._addresses:
            try:
                return socket.create_connection((address, port), timeout, self.source_address)
            except OSError as exc:
                error = exc
        raise error or OSError("no address to connect to")

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._connect(port, timeout)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(self, *args: Any, addresses: tuple[str, ...], **kwargs: Any) -> None:
        self._addresses = addresses
        super().__init__(*args, **kwargs)

    _connect = _PinnedSMTP._connect

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.context.wrap_socket(self._connect(port, timeout), server_hostname=self._host)


class PinnedEmailBackend(EmailBackend):
    def __init__(self, *, addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.addresses = addresses

    @property
    def connection_class(self):
        return functools.partial(_PinnedSMTPSSL if self.use_ssl else _PinnedSMTP, addresses=self.addresses)


def _text_field(value: Any, language: str | None, tags: dict[str, str]) -> str | None:
    """A plain string or a language map, personalised."""
    if isinstance(value, dict):
        return render_text(value, language, tags)
    return personalise(value, tags) if isinstance(value, str) else None


def _plain_text(html: str) -> str:
    text = html_lib.unescape(strip_tags(_BLOCK_END.sub("\n", html)))
    return _BLANK_LINES.sub("\n\n", text).strip()


def build_email(
    recipient: Recipient,
    message: RenderedMessage,
    *,
    app_id: str,
    from_email: str,
    reply_to: str | None,
    base_url: str,
    connection: EmailBackend | None = None,
) -> EmailMultiAlternatives:
    body = message.body
    tags = recipient.tags or {}
    link = unsubscribe_url(app_id, recipient.player_id, base_url=base_url)
    subject = _text_field(body.get("email_subject"), recipient.language, tags) or ""
    html_tags = {key: escape(str(value)) for key, value in tags.items()}
    html = _text_field(body.get("email_body"), recipient.language, html_tags) or ""
    html = html.replace(UNSUBSCRIBE_PLACEHOLDER, escape(link))
    text = f"{_plain_text(html)}\n\nUnsubscribe: {link}\n"
    preheader = _text_field(body.get("email_preheader"), recipient.language, tags)
    if preheader:
        hidden = PREHEADER.format(escape(preheader))
        match = _BODY_TAG.search(html)
        html = html[: match.end()] + hidden + html[match.end() :] if match else hidden + html
    email = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # no newlines in a header
        body=text,
        from_email=from_email,
        to=[recipient.identifier],
        reply_to=[reply_to] if reply_to else None,
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            NOTIFICATION_ID_HEADER: message.notification_id,
        },
        connection=connection,
    )
    email.attach_alternative(html, "text/html")
    return email


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.HERALD_GATEWAY_CA_FILE:
        context.load_verify_locations(settings.HERALD_GATEWAY_CA_FILE)
    return context


def _refused(code: int, reason: str) -> tuple[Outcome, str]:
    if 400 <= code < 500:
        return Outcome.TRANSIENT, f"smtp {code}"
    return Outcome.ERROR, reason


class EmailProvider(Provider):
    platform = "email"

    def __init__(self, app):
        super().__init__(app)
        if not app.smtp_host:
            raise ProviderNotConfigured("Email: the app has no SMTP server (smtp_host)")
        self.port = app.smtp_port or (587 if app.smtp_use_tls else 25)

    def _backend(self) -> PinnedEmailBackend:
        host = self.app.smtp_host
        url_host = f"[{host}]" if ":" in host else host
        pinned = resolve_public_url(
            f"http://{url_host}:{self.port}/", purpose="smtp_host", require_https=False
        )
        implicit_tls = self.port == SMTPS_PORT
        backend = PinnedEmailBackend(
            addresses=pinned.addresses,
            host=host,
            port=self.port,
            username=self.app.smtp_username or "",
            password=self.app.smtp_password or "",
            use_tls=bool(self.app.smtp_use_tls) and not implicit_tls,
            use_ssl=implicit_tls,
            timeout=min(SMTP_TIMEOUT_SECONDS, settings.HERALD_GATEWAY_TIMEOUT_SECONDS),
            fail_silently=False,
        )
        backend.ssl_context = _ssl_context()
        return backend

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        if not items:
            return []
        body = items[0][1].body
        from_address = body.get("email_from_address") or self.app.email_from_address
        if not from_address:
            return [SendResult(r.player_id, Outcome.ERROR, "NoFromAddress") for r, _ in items]
        from_name = body.get("email_from_name") or self.app.email_from_name
        from_email = formataddr((from_name, from_address)) if from_name else from_address
        reply_to = body.get("email_reply_to_address")
        base_url = unsubscribe_base_url()
        try:
            backend = self._backend()
        except UnresolvableHost:
            return [SendResult(r.player_id, Outcome.TRANSIENT, "SmtpHostUnresolvable") for r, _ in items]
        except UnsafeUrl:
            return [SendResult(r.player_id, Outcome.ERROR, "UnsafeSmtpHost") for r, _ in items]

        results: list[SendResult] = []
        connected = False
        try:
            for index, (recipient, message) in enumerate(items):
                if not connected:
                    failure = self._open(backend)
                    if failure is not None:
                        outcome, reason = failure
                        results += [SendResult(r.player_id, outcome, reason) for r, _ in items[index:]]
                        break
                    connected = True
                email = build_email(
                    recipient,
                    message,
                    app_id=str(self.app.pk),
                    from_email=from_email,
                    reply_to=reply_to,
                    base_url=base_url,
                    connection=backend,
                )
                outcome, reason, connected = self._send_one(backend, email, recipient.identifier)
                results.append(SendResult(recipient.player_id, outcome, reason))
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                backend.close()
        return results

    def _open(self, backend: EmailBackend) -> tuple[Outcome, str] | None:
        """Connect (STARTTLS, AUTH); None when connected, else what every remaining recipient gets."""
        try:
            backend.open()
        except smtplib.SMTPAuthenticationError:
            return Outcome.ERROR, "SmtpAuthenticationFailed"
        except smtplib.SMTPNotSupportedError:
            return Outcome.ERROR, "SmtpAuthOrTlsNotSupported"
        except ssl.SSLCertVerificationError:
            return Outcome.ERROR, "SmtpCertificateNotTrusted"
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                return Outcome.TRANSIENT, f"smtp connect {exc.smtp_code}"
            return Outcome.ERROR, f"smtp connect {exc.smtp_code}"
        except OSError as exc:  # refused, timed out, reset (smtplib's errors are OSErrors too)
            backend.close()
            return Outcome.TRANSIENT, f"smtp connect: {type(exc).__name__}"[:64]
        return None

    def _send_one(
        self, backend: EmailBackend, email: EmailMultiAlternatives, address: str
    ) -> tuple[Outcome, str, bool]:
        """(outcome, reason, whether the connection is still usable)."""
        try:
            backend.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()), (550, b""))[0]
            if 500 <= code < 600:
                return Outcome.INVALID_RECIPIENT, "Bounced", True
            return Outcome.TRANSIENT, f"smtp {code}", True
        except smtplib.SMTPSenderRefused as exc:
            return (*_refused(exc.smtp_code, "SenderRefused"), True)
        except smtplib.SMTPDataError as exc:
            return (*_refused(exc.smtp_code, f"smtp data {exc.smtp_code}"), True)
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, timeout, reset
            try:
                backend.close()
            except (OSError, smtplib.SMTPException):
                backend.connection = None
            return Outcome.TRANSIENT, f"smtp: {type(exc).__name__}"[:64], False
        return Outcome.SENT, "", True
