"""Safari (device type 7): the legacy payload (pure functions), the per-player choice between Web
Push and legacy APNs, and both driven directly (no worker) against the simulator over real
sockets. The pipeline with a real worker is in tests/e2e/test_safari_delivery.py."""

from __future__ import annotations

import secrets
import uuid

import pytest

from apps.vapid import ensure_vapid_keys
from core.metrics import platform_label
from notifications.platforms import PROVIDER_FOR_DEVICE_TYPE, STATS_KEY_FOR_DEVICE_TYPE
from notifications.providers import provider_for
from notifications.providers.base import Outcome, ProviderNotConfigured, Recipient, RenderedMessage
from notifications.providers.safari import (
    SafariApnsProvider,
    SafariProvider,
    build_legacy_payload,
    url_args,
)
from tests.gatewaysim.simulator import Simulator
from tests.notifications.test_apns_provider import p12_for

pytestmark = pytest.mark.django_db

SAFARI = 7
WEBSITE_PUSH_ID = "web.com.example.herald"
PASSWORD = "safari-p12-password"
NOTIFICATION_ID = "5a1e7c43-0000-4000-8000-000000000007"


def message(heading: str | None = "Herald", content: str | None = "Hello", **body) -> RenderedMessage:
    return RenderedMessage(
        notification_id=NOTIFICATION_ID, heading=heading, content=content, subtitle=None, body=body
    )


def legacy(identifier: str | None = None) -> Recipient:
    return Recipient(
        player_id=uuid.uuid4(),
        device_type=SAFARI,
        identifier=identifier or secrets.token_hex(32).upper(),  # Safari hands out upper-case hex
        language="en",
        tags={},
    )


def web(subscription: dict) -> Recipient:
    return Recipient(
        player_id=uuid.uuid4(),
        device_type=SAFARI,
        identifier=subscription["endpoint"],
        language="en",
        tags={},
        web_auth=subscription["keys"]["auth"],
        web_p256=subscription["keys"]["p256dh"],
    )


# --- the legacy payload ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [""]),
        ({"url": "https://example.com/orders/1?tab=2#top"}, ["orders/1?tab=2#top"]),
        ({"url": "https://example.com/"}, [""]),
        ({"url": "https://example.com/app", "web_url": "https://example.com/web/1"}, ["web/1"]),
    ],
)
def test_url_args_carry_the_launch_urls_path_for_one_placeholder(body, expected):
    assert url_args(body) == expected


def test_the_legacy_payload_is_apples_website_push_shape():
    payload = build_legacy_payload(message(url="https://example.com/news/7"), default_title="Site")

    assert payload == {
        "aps": {"alert": {"title": "Herald", "body": "Hello"}, "url-args": ["news/7"]},
        "custom": {"i": NOTIFICATION_ID},
    }


def test_safari_needs_a_title_and_a_body_so_both_are_always_there():
    payload = build_legacy_payload(message(heading=None, content=None), default_title="Example News")

    assert payload["aps"]["alert"] == {"title": "Example News", "body": ""}


def test_device_type_7_is_delivered_by_the_safari_provider_and_counted_as_safari_web_push(own):
    assert PROVIDER_FOR_DEVICE_TYPE[SAFARI] == "safari"
    assert STATS_KEY_FOR_DEVICE_TYPE[SAFARI] == "safari_web_push"
    assert platform_label(SAFARI) == "safari"  # the /metrics label
    assert isinstance(provider_for("safari", own.app), SafariProvider)


# --- credentials ----------------------------------------------------------------------------------


@pytest.fixture
def gateway(sim: Simulator, settings) -> Simulator:
    sim.reset()
    settings.HERALD_APNS_PRODUCTION_URL = sim.apns_url
    settings.HERALD_APNS_SANDBOX_URL = "https://127.0.0.1:9/never-used-by-safari"
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    return sim


@pytest.fixture
def safari_app(own, gateway: Simulator):
    """``own.app`` with a Safari certificate issued by the simulator's CA, and its Web Push keys.
    ``apns_env`` is sandbox: the iOS app's setting, which legacy Safari must ignore."""
    app = own.app
    app.safari_apns_p12 = p12_for(gateway, WEBSITE_PUSH_ID, PASSWORD)
    app.safari_apns_p12_password = PASSWORD
    app.safari_push_id = WEBSITE_PUSH_ID
    app.site_name = "Example News"
    app.apns_env = "sandbox"
    app.save()
    return ensure_vapid_keys(app)


def test_legacy_safari_needs_the_safari_certificate(own):
    with pytest.raises(ProviderNotConfigured, match="no safari_apns_p12"):
        SafariApnsProvider(own.app)


def test_a_certificate_for_an_app_bundle_is_no_website_push_certificate(own, sim):
    own.app.safari_apns_p12 = p12_for(sim, "com.example.herald", PASSWORD)
    own.app.safari_apns_p12_password = PASSWORD

    with pytest.raises(ProviderNotConfigured, match="Website Push ID"):
        SafariApnsProvider(own.app)


def test_an_unreadable_safari_certificate_is_not_configured(own, sim):
    own.app.safari_apns_p12 = p12_for(sim, WEBSITE_PUSH_ID, PASSWORD)
    own.app.safari_apns_p12_password = "wrong"

    with pytest.raises(ProviderNotConfigured, match=r"Safari: the \.p12 certificate cannot be read"):
        SafariApnsProvider(own.app)


# --- against the simulator ------------------------------------------------------------------------


def test_each_safari_player_goes_through_its_own_gateway(gateway: Simulator, safari_app):
    subscription = gateway.webpush_subscription(application_server_key=safari_app.vapid_public_key)
    old_mac, new_mac, broken = legacy(), web(subscription), legacy("not-a-token")
    msg = message(url="https://example.com/orders/1")

    results = SafariProvider(safari_app).send([(old_mac, msg), (new_mac, msg), (broken, msg)])

    outcomes = {r.player_id: (r.outcome, r.reason) for r in results}
    assert outcomes == {
        old_mac.player_id: (Outcome.SENT, ""),
        new_mac.player_id: (Outcome.SENT, ""),
        broken.player_id: (Outcome.INVALID_RECIPIENT, "BadDeviceToken"),
    }
    [apns] = gateway.deliveries(platform="apns")
    assert apns["token"] == old_mac.identifier
    assert apns["headers"]["apns-topic"] == WEBSITE_PUSH_ID
    assert apns["headers"]["apns-push-type"] == "alert"
    assert apns["headers"]["x-sim-auth"] == "certificate"
    assert "authorization" not in apns["headers"]
    assert apns["payload"]["aps"] == {
        "alert": {"title": "Herald", "body": "Hello"},
        "url-args": ["orders/1"],
    }
    [webpush] = gateway.deliveries(platform="webpush")
    assert webpush["token"] == subscription["endpoint"]
    assert webpush["payload"]["title"] == "Herald" and webpush["payload"]["alert"] == "Hello"
    assert webpush["payload"]["custom"] == {"i": NOTIFICATION_ID, "u": "https://example.com/orders/1"}


def test_without_the_safari_certificate_legacy_players_end_errored_and_web_ones_are_sent(
    gateway: Simulator, own
):
    app = ensure_vapid_keys(own.app)
    subscription = gateway.webpush_subscription(application_server_key=app.vapid_public_key)
    old_mac, new_mac = legacy(), web(subscription)

    results = SafariProvider(app).send([(old_mac, message()), (new_mac, message())])

    outcomes = {r.player_id: (r.outcome, r.reason) for r in results}
    assert outcomes == {
        old_mac.player_id: (Outcome.ERROR, "Safari legacy push: the app has no safari_apns_p12"),
        new_mac.player_id: (Outcome.SENT, ""),
    }
    assert gateway.stats()["apns"]["received"] == 0


def test_apns_answers_are_sorted_as_for_ios(gateway: Simulator, safari_app):
    gone, busy = legacy(), legacy()
    gateway.faults("apns", token_errors={gone.identifier: "Unregistered", busy.identifier: "TooManyRequests"})

    results = SafariProvider(safari_app).send([(gone, message()), (busy, message())])

    assert {r.player_id: (r.outcome, r.reason) for r in results} == {
        gone.player_id: (Outcome.INVALID_RECIPIENT, "Unregistered"),
        busy.player_id: (Outcome.TRANSIENT, "TooManyRequests"),
    }


def test_a_legacy_payload_over_4096_bytes_is_an_error_without_a_request(gateway: Simulator, safari_app):
    [result] = SafariProvider(safari_app).send([(legacy(), message(content="x" * 4100))])

    assert (result.outcome, result.reason) == (Outcome.ERROR, "PayloadTooLarge")
    assert gateway.stats()["apns"]["received"] == 0
