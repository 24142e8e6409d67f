"""The raw baselines: the same requests Herald sends, to the same simulator, from a bare client
with no database and no queue, built before the clock starts.

HTTP/2 platforms (FCM, APNs, Web Push, WNS) go out over a bare ``Http2Client`` (libcurl, 200
streams in flight, 1,000 requests per call as Herald's batches); SMS over the SMS provider's own
HTTP/1.1 client settings; email as pre-rendered messages over one SMTP connection per 1,000, one
after another, as Herald's email provider sends a batch. The simulator's CPU time is read from
/proc around each run: its cost per request is the sink's own ceiling, whoever the client is.
"""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from dataclasses import dataclass
from email.utils import formataddr
from urllib.parse import urlsplit

import orjson

from players.seeding import Identity, Platform

CHUNK = 1000


@dataclass
class RawResult:
    platform: str
    requests: int
    seconds: float
    sink_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def sink_cpu_us_per_request(self) -> float:
        return self.sink_cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def sink_ceiling_per_second(self) -> float:
        """What the single-threaded simulator could answer with one core all to itself."""
        return 1e6 / self.sink_cpu_us_per_request if self.sink_cpu_seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "per_second": round(self.per_second),
            "sink_cpu_us_per_request": round(self.sink_cpu_us_per_request),
            "sink_ceiling_per_second": round(self.sink_ceiling_per_second),
        }


def _recipient(platform: Platform, identity: Identity, i: int):
    from notifications.providers.base import Recipient

    return Recipient(
        player_id=uuid.uuid4(),
        device_type=platform.device_type,
        identifier=identity.identifier,
        language="en",
        tags={"level": str(i % 50)},
        web_auth=identity.web_auth,
        web_p256=identity.web_p256,
    )


def _message(body: dict):
    from notifications.providers.base import RenderedMessage

    contents = body.get("contents") or {}
    return RenderedMessage(
        notification_id=str(uuid.uuid4()), heading=None, content=contents.get("en"), subtitle=None, body=body
    )


def _http2_requests(platform: Platform, app, identities: list[Identity], body: dict) -> list:
    from django.conf import settings

    from notifications.providers import apns, fcm, webpush, wns
    from notifications.providers.http2 import HttpRequest

    message = _message(body)
    recipients = [_recipient(platform, identity, i) for i, identity in enumerate(identities)]
    if platform.simulator == "fcm":
        token = fcm._access_token(app.fcm_service_account_json)
        url = f"{settings.HERALD_FCM_BASE_URL}/v1/projects/{app.fcm_project_id}/messages:send"
        headers = [f"authorization: Bearer {token}", "content-type: application/json"]
        return [
            HttpRequest(url, orjson.dumps({"message": fcm.build_message(r, message)}), headers)
            for r in recipients
        ]
    if platform.simulator == "apns":
        token = apns.provider_token(app.apns_key_id, app.apns_team_id, app.apns_p8)
        sandbox = app.apns_env == "sandbox"
        base = settings.HERALD_APNS_SANDBOX_URL if sandbox else settings.HERALD_APNS_PRODUCTION_URL
        headers = [
            *apns.build_headers(message, app.apns_bundle_id, time.time()),
            f"authorization: bearer {token}",
        ]
        return [
            HttpRequest(
                f"{base}/3/device/{r.identifier}", orjson.dumps(apns.build_payload(r, message)), headers
            )
            for r in recipients
        ]
    if platform.simulator == "webpush":
        requests = []
        for r in recipients:
            plaintext = orjson.dumps(
                webpush.build_payload(
                    notification_id=message.notification_id,
                    heading=message.heading,
                    content=message.content,
                    body=body,
                    device_type=r.device_type,
                    site_name=app.site_name,
                    default_icon=app.chrome_web_default_notification_icon,
                )
            )
            parts = urlsplit(r.identifier)
            authorization = webpush.vapid_authorization(app, f"{parts.scheme}://{parts.netloc}")
            headers = [
                f"authorization: {authorization}",
                "content-encoding: aes128gcm",
                "content-type: application/octet-stream",
                f"ttl: {message.ttl_seconds}",
                "urgency: normal",
            ]
            encrypted = webpush.encrypt(plaintext, webpush.subscription_keys(r))
            requests.append(HttpRequest(r.identifier, encrypted, headers))
        return requests
    if platform.simulator == "wns":
        token = wns.access_token(app.wns_package_sid, app.wns_client_secret)
        return [wns.build_request(r, message, token) for r in recipients]
    raise ValueError(platform.name)


def _send_http(client, requests: list) -> None:
    for start in range(0, len(requests), CHUNK):
        responses = client.send_all(requests[start : start + CHUNK])
        bad = [r for r in responses if not 200 <= r.status < 300]
        assert not bad, (bad[0].status, bad[0].error, bad[0].body[:300])


def _sms_requests(app, identities: list[Identity], body: dict) -> list:
    from notifications.providers.sms import SmsRequest, build_query, gateway_url

    config = json.loads(app.sms_gateway_json)
    url = gateway_url(config)
    content = body["contents"]["en"]
    shared = {"message": content, "from": "", "mediaUrls": ""}
    return [
        SmsRequest(
            url=f"{url}?{build_query(config, {**shared, 'phoneNumber': i.identifier})}",
            body=b"",
            headers=[],
            method="GET",
        )
        for i in identities
    ]


def _emails(platform: Platform, app, identities: list[Identity], body: dict) -> tuple[str, list]:
    from notifications.providers.email import build_email
    from notifications.unsubscribe import unsubscribe_base_url

    message = _message(body)
    from_email = formataddr((app.email_from_name, app.email_from_address))
    base_url = unsubscribe_base_url()
    emails = []
    for i, identity in enumerate(identities):
        email = build_email(
            _recipient(platform, identity, i),
            message,
            app_id=str(app.pk),
            from_email=from_email,
            reply_to=None,
            base_url=base_url,
        )
        emails.append((identity.identifier, email.message().as_bytes(linesep="\r\n")))
    return app.email_from_address, emails


def _send_emails(app, from_address: str, emails: list) -> None:
    for start in range(0, len(emails), CHUNK):
        with smtplib.SMTP(app.smtp_host, app.smtp_port, timeout=30) as smtp:
            for address, data in emails[start : start + CHUNK]:
                refused = smtp.sendmail(from_address, [address], data)
                assert not refused, refused


def raw_baseline(platform: Platform, app, identities: list[Identity], body: dict, sim) -> RawResult:
    """Send one request per identity the minimal way; the clock runs only while sending."""
    from django.conf import settings

    from notifications.providers.http2 import Http2Client
    from notifications.providers.sms import CONNECTIONS_PER_GATEWAY, MAX_IN_FLIGHT, SmsHttpClient

    ca_file = settings.HERALD_GATEWAY_CA_FILE
    if platform.http2:
        requests = _http2_requests(platform, app, identities, body)
        client = Http2Client(ca_file=ca_file, max_in_flight=settings.HERALD_HTTP2_MAX_IN_FLIGHT)

        def send() -> None:
            _send_http(client, requests)

    elif platform.simulator == "sms":
        requests = _sms_requests(app, identities, body)
        client = SmsHttpClient(
            ca_file=ca_file, max_in_flight=MAX_IN_FLIGHT, max_connections=CONNECTIONS_PER_GATEWAY
        )

        def send() -> None:
            _send_http(client, requests)

    elif platform.simulator == "email":
        client = None
        from_address, emails = _emails(platform, app, identities, body)

        def send() -> None:
            _send_emails(app, from_address, emails)

    else:
        raise ValueError(platform.name)
    cpu_before = sim.cpu_seconds()
    started = time.perf_counter()
    send()
    elapsed = time.perf_counter() - started
    sink_cpu = sim.cpu_seconds() - cpu_before
    if client is not None:
        client.close()
    return RawResult(platform.name, len(identities), elapsed, sink_cpu)
