"""SSRF guard for every outbound URL or host a tenant controls (issue 8 §6, core/ssrf.py).

The audit: what Herald (or a device, on Herald's word) connects to on a tenant's say, where it
is set, and when it is checked.

- Web Push endpoint (player identifier, types 5/8/7): POST/PUT /players. 400 when saved (here);
  pinned at every send (tests/notifications/test_webpush_api.py).
- Event webhook URL: PUT /apps ``webhooks``, /imfpush webhooks, the dashboard. 400 when saved
  (here, tests/webhooks); pinned at every attempt (tests/webhooks/test_delivery.py).
- SMS gateway host: PUT /apps ``sms_gateway``, /imfpush smsConf. 400 when saved; pinned per batch.
- SMTP host: PUT /apps ``smtp_host``. 400 when saved; pinned per batch (both here).
- FCM service account ``token_uri``: PUT /apps, /imfpush gcmConf. Only Google's hosts or the
  origin of HERALD_FCM_BASE_URL, when saved and before every token request (here).
- WNS channel URI (player identifier, type 6): only ``*.notify.windows.com`` or the origin of
  HERALD_WNS_TOKEN_URL (tests/notifications/test_channel_providers.py).
- A notification's image URLs (big_picture, icons, ios_attachments, button icons; /imfpush
  attachmentUrl and style url) and sms_media_urls: 400 when saved (here). Devices and the SMS
  gateway fetch them; Herald never does.
- An app's default icons (chrome_web_default_notification_icon, safari_icon_256_256): 400 when
  saved (here); devices fetch them.

APNs, Huawei, ADM and FCM message endpoints, and the WNS token URL, are the operator's settings,
not a tenant's. Herald fetches no image itself (no previews are rendered server-side).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass

import pytest
from django.test import Client

from apps.models import App
from core import ssrf
from imfpush.clients import confidential_client_create
from imfpush.services import mfp_application_create
from notifications.providers.base import Outcome, Recipient, RenderedMessage
from notifications.providers.email import EmailProvider
from notifications.providers.fcm import FcmProvider
from notifications.providers.sms import SmsProvider
from tests.factories import PlayerFactory
from tests.security.test_isolation_imfpush import _ALL_SCOPES, token

pytestmark = pytest.mark.django_db

# Non-public targets in several spellings; each must be refused wherever a tenant can name a host.
FORBIDDEN_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("10.0.0.7", "private"),
    ("2130706433", "loopback"),  # 127.0.0.1 as one decimal number
    ("[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("internal.test", "private"),  # a name that resolves to a private address
]


@pytest.fixture(autouse=True)
def _dns(monkeypatch, settings):
    """No network: ``internal.test`` resolves to a private address, ``public.test`` to a public one."""
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    ssrf.clear_dns_cache()
    answers = {"internal.test": "10.1.2.3", "public.test": "93.184.216.34"}

    def resolve(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", resolve)
    yield
    ssrf.clear_dns_cache()


def put_app(tenant, body):
    return Client().put(
        f"/api/v1/apps/{tenant.app.id}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Key {tenant.user_key}",
    )


def post(path, body, key):
    return Client().post(path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key)


def sms_gateway(host: str) -> dict:
    return {
        "host": host.strip("[]"),
        "port": 80,
        "programName": "/send",
        "parameters": [{"name": "to", "value": "{phoneNumber}"}, {"name": "text", "value": "{message}"}],
    }


def service_account(token_uri: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "p",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key": pem,
        "token_uri": token_uri,
    }


# --- refused when saved ----------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS)
def test_smtp_and_sms_gateway_hosts_must_be_public(own, host, reason):
    bare = host.strip("[]")
    for body in ({"smtp_host": bare}, {"sms_gateway": sms_gateway(host)}):
        response = put_app(own, body)
        assert response.status_code == 400, (body, response.content)
        assert "non-public address" in response.json()["errors"][0], response.json()
    own.app.refresh_from_db()
    assert own.app.smtp_host is None and own.app.sms_gateway_json is None


def test_public_and_allowed_hosts_are_accepted(own, settings):
    assert put_app(own, {"smtp_host": "public.test"}).status_code == 200
    assert put_app(own, {"sms_gateway": sms_gateway("93.184.216.34")}).status_code == 200
    assert put_app(own, {"smtp_host": "not-yet-resolvable.test"}).status_code == 200  # checked at send
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]  # make run: the simulators
    assert put_app(own, {"smtp_host": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize(
    "token_uri",
    [
        "http://169.254.169.254/computeMetadata/v1/token",
        "https://127.0.0.1/token",
        "https://public.test/token",  # public, but not Google's: a tenant's own collector
        "http://oauth2.googleapis.com/token",  # Google, but not https
        "https://oauth2.googleapis.com.public.test/token",
        "https://user@oauth2.googleapis.com/token",
    ],
)
def test_a_service_account_token_uri_must_be_googles(own, token_uri):
    response = put_app(own, {"fcm_v1_service_account_json": service_account(token_uri)})
    assert response.status_code == 400 and "token_uri" in response.json()["errors"][0]
    own.app.refresh_from_db()
    assert own.app.fcm_service_account_json is None


def test_googles_token_uri_and_the_operators_fcm_endpoint_are_accepted(own, settings):
    assert (
        put_app(
            own, {"fcm_v1_service_account_json": service_account("https://oauth2.googleapis.com/token")}
        ).status_code
        == 200
    )
    settings.HERALD_FCM_BASE_URL = "https://127.0.0.1:9101"  # the simulator, as make run sets it
    account = service_account("https://127.0.0.1:9101/token")
    assert put_app(own, {"fcm_v1_service_account_json": account}).status_code == 200
    assert (
        put_app(
            own, {"fcm_v1_service_account_json": service_account("https://127.0.0.1:9999/token")}
        ).status_code
        == 400
    )


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS[:3])
def test_app_default_icons_must_not_point_at_private_hosts(own, host, reason):
    for field in ("chrome_web_default_notification_icon", "safari_icon_256_256"):
        response = put_app(own, {field: f"https://{host}/icon.png"})
        assert response.status_code == 400 and "non-public address" in response.json()["errors"][0]
    assert (
        put_app(own, {"chrome_web_default_notification_icon": "https://public.test/i.png"}).status_code == 200
    )


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS)
def test_onesignal_surface_urls_are_refused(own, host, reason):
    key = f"Key {own.app_key}"
    app_id = str(own.app.id)
    cases = {
        "web push endpoint": (
            "/api/v1/players",
            {
                "app_id": app_id,
                "device_type": 5,
                "identifier": f"https://{host}/push/abc",
                "web_auth": "a",
                "web_p256": "b",
            },
        ),
        "image url": (
            "/api/v1/notifications",
            {
                "app_id": app_id,
                "included_segments": ["All"],
                "contents": {"en": "x"},
                "big_picture": f"http://{host}/a.png",
            },
        ),
        "sms media": (
            "/api/v1/notifications",
            {
                "app_id": app_id,
                "included_segments": ["All"],
                "contents": {"en": "x"},
                "sms_from": "+15550000000",
                "sms_media_urls": [f"http://{host}/a.png"],
            },
        ),
    }
    for what, (path, body) in cases.items():
        response = post(path, body, key)
        assert response.status_code == 400, (what, response.content)
    response = put_app(own, {"webhooks": [{"url": f"http://{host}/hook", "events": ["notification.sent"]}]})
    assert response.status_code == 400 and "non-public" in response.content.decode()


@dataclass
class Mfp:
    bearer: str
    base: str = "/imfpush/v1/apps/ssrf"


@pytest.fixture
def mfp(own) -> Mfp:
    mfp_application_create(organization=own.organization, body={"applicationId": "ssrf"})
    confidential_client_create(organization=own.organization, client_id="ssrf-client")
    return Mfp(token(("ssrf-client", None), f"{_ALL_SCOPES} push.application.ssrf"))


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS[:4])
def test_imfpush_urls_and_hosts_are_refused(mfp, host, reason):
    bearer = f"Bearer {mfp.bearer}"
    cases = {
        "webhooks": {"name": "w", "url": f"http://{host}/hook", "eventTypes": "onDeviceRegister"},
        "messages": {
            "message": {"alert": "x"},
            "settings": {
                "gcm": {"style": {"type": "picture_notification", "url": f"http://{host}/a.png"}},
                "apns": {"attachmentUrl": f"http://{host}/b.png"},
            },
        },
    }
    for path, body in cases.items():
        response = post(f"{mfp.base}/{path}", body, bearer)
        assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E", (
            path,
            response.content,
        )
    sms = {"host": host.strip("[]"), "port": "80", "name": "g", "programName": "/send", "parameters": []}
    response = Client().put(
        f"{mfp.base}/settings/smsConf",
        data=json.dumps(sms),
        content_type="application/json",
        HTTP_AUTHORIZATION=bearer,
    )
    assert response.status_code == 400, response.content
    account = service_account(f"http://{host}/token")
    response = Client().put(
        f"{mfp.base}/settings/gcmConf",
        data=json.dumps({"senderId": "1", "serviceAccount": account}),
        content_type="application/json",
        HTTP_AUTHORIZATION=bearer,
    )
    assert response.status_code == 400 and "serviceAccount" in response.json()["message"], response.content


# --- refused when used (values stored before the check, or DNS that changed since) ---------------------


def item(player):
    recipient = Recipient(
        player_id=player.pk,
        device_type=player.device_type,
        identifier=player.identifier,
        language="en",
        tags={},
        badge_count=0,
        test_type=None,
        web_auth=None,
        web_p256=None,
    )
    body = {"contents": {"en": "x"}, "email_subject": "s", "email_body": "<p>x</p>"}
    return recipient, RenderedMessage(
        notification_id="n", heading="", content="x", subtitle="", body=body, ttl_seconds=60
    )


def test_a_stored_token_uri_that_is_not_googles_is_never_called(own, settings):
    """An account stored before the upload check existed: the batch errors, nothing is requested
    (the token_uri points at a closed port: a request would be a connection error instead)."""
    App.objects.filter(pk=own.app.pk).update(
        fcm_service_account_json=json.dumps(service_account("http://169.254.169.254/token")),
        fcm_project_id="p",
    )
    own.app.refresh_from_db()
    player = PlayerFactory(app=own.app)
    [result] = FcmProvider(own.app).send([item(player)])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "UnsafeTokenUri")


@pytest.mark.parametrize("host", ["127.0.0.1", "internal.test", "169.254.169.254"])
def test_stored_private_smtp_and_sms_hosts_are_refused_at_send(own, host):
    App.objects.filter(pk=own.app.pk).update(
        smtp_host=host,
        smtp_port=25,
        email_from_address="news@example.com",
        sms_gateway_json=json.dumps({**sms_gateway(host), "method": "GET"}),
    )
    own.app.refresh_from_db()
    email = PlayerFactory(app=own.app, device_type=11, identifier="a@example.com")
    phone = PlayerFactory(app=own.app, device_type=14, identifier="+15550000001")
    [mail] = EmailProvider(own.app).send([item(email)])
    assert (mail.outcome, mail.reason) == (Outcome.ERROR, "UnsafeSmtpHost")
    [sms] = SmsProvider(own.app).send([item(phone)])
    assert (sms.outcome, sms.reason) == (Outcome.ERROR, "UnsafeGateway")


def test_every_app_field_that_names_a_host_or_url_is_audited():
    """A new App field that names somewhere to connect to must join the audit above."""
    audited = {
        "smtp_host": "SSRF-checked when saved and when used",
        "sms_gateway_json": "SSRF-checked when saved and when used",
        "fcm_service_account_json": "token_uri: Google or HERALD_FCM_BASE_URL only",
        "chrome_web_default_notification_icon": "image policy when saved",
        "safari_icon_256_256": "image policy when saved",
        "chrome_web_origin": "an origin the browser compares; never fetched",
        "safari_site_origin": "an origin the browser compares; never fetched",
        "chrome_web_sub_domain": "a label of OneSignal's web SDK; never fetched",
    }
    pattern = re.compile(r"url|uri|host|endpoint|origin|icon|domain|server|gateway|service_account")
    fields = {field.name for field in App._meta.fields if pattern.search(field.name)}
    assert fields <= set(audited), f"App fields naming a host or URL, not audited: {fields - set(audited)}"
