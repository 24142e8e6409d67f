"""The Huawei Push Kit and ADM providers driven directly (no worker) against the real simulators over
real sockets: payload shapes, one request per 1,000 identical messages, every answer sorted into
sent / invalid recipient / transient / error, and the token refreshed once when it expired."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.models import App
from notifications.providers import hms as hms_module
from notifications.providers.adm import AdmProvider, message_url
from notifications.providers.adm import tokens as adm_tokens
from notifications.providers.base import Outcome, ProviderNotConfigured, Recipient, RenderedMessage
from notifications.providers.hms import HmsProvider, build_message
from notifications.providers.hms import tokens as hms_tokens
from tests.gatewaysim.simulator import Simulator, running_simulator

pytestmark = pytest.mark.django_db

HUAWEI, AMAZON = 13, 2
HMS_APP_ID, HMS_SECRET = "104421234", "hms-app-secret"
ADM_CLIENT = "amzn1.application-oa2-client.0123456789abcdef"
ADM_SECRET = "adm-client-secret"


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[Simulator]:
    with running_simulator(Path(tmp_path_factory.mktemp("hms-adm-providers"))) as simulator:
        simulator.register_hms_app(HMS_APP_ID, HMS_SECRET)
        simulator.register_adm_client(ADM_CLIENT, ADM_SECRET)
        yield simulator


@pytest.fixture
def gateways(sim: Simulator, settings) -> Simulator:
    sim.reset()
    hms_tokens.clear()
    adm_tokens.clear()
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_HMS_TOKEN_URL = sim.hms_token_url
    settings.HERALD_HMS_BASE_URL = sim.hms_url
    settings.HERALD_ADM_TOKEN_URL = sim.adm_token_url
    settings.HERALD_ADM_BASE_URL = sim.adm_url
    return sim


@pytest.fixture
def app(own) -> App:
    own.app.huawei_app_id, own.app.huawei_app_secret = HMS_APP_ID, HMS_SECRET
    own.app.adm_client_id, own.app.adm_client_secret = ADM_CLIENT, ADM_SECRET
    own.app.save()
    return own.app


def item(device_type: int, identifier: str, body: dict | None = None, **text):
    recipient = Recipient(
        player_id=uuid.uuid4(), device_type=device_type, identifier=identifier, language="en", tags={}
    )
    message = RenderedMessage(
        notification_id=text.pop("notification_id", "0b7c1bd2-5a43-4ad6-9f4e-28f0c2a0a0a1"),
        heading=text.get("heading", "Herald"),
        content=text.get("content", "Your order shipped"),
        subtitle=None,
        body=body or {},
        ttl_seconds=text.get("ttl", 3600),
    )
    return recipient, message


def outcomes(results) -> dict:
    return {r.player_id: (r.outcome, r.reason) for r in results}


# --- Huawei Push Kit ------------------------------------------------------------------------------


def test_the_providers_need_credentials(own):
    with pytest.raises(ProviderNotConfigured):
        HmsProvider(own.app)
    with pytest.raises(ProviderNotConfigured):
        AdmProvider(own.app)


def test_a_huawei_notification_message_in_onesignals_convention():
    _, message = item(
        HUAWEI,
        "t",
        {
            "url": "https://example.com/o/1",
            "data": {"order": 1},
            "huawei_channel_id": "orders",
            "huawei_accent_color": "FFFF0000",
            "huawei_big_picture": "https://example.com/big.png",
            "huawei_category": "EXPRESS",
            "collapse_id": "order-1",
            "huawei_badge_class": "com.example.Main",
            "huawei_badge_add_num": 1,
        },
        ttl=99_999_999,
    )
    hms_message = build_message(message, default_title="App")
    android = hms_message["android"]
    assert android["ttl"] == "1296000s" and android["category"] == "EXPRESS"
    assert android["notification"] == {
        "title": "Herald",
        "body": "Your order shipped",
        "click_action": {"type": 3},
        "channel_id": "orders",
        "color": "#FF0000",
        "image": "https://example.com/big.png",
        "tag": "order-1",
        "badge": {"class": "com.example.Main", "add_num": 1},
    }
    data = json.loads(hms_message["data"])
    assert json.loads(data["custom"]) == {
        "i": message.notification_id,
        "u": "https://example.com/o/1",
        "a": {"order": 1},
    }
    assert data["title"] == "Herald" and data["alert"] == "Your order shipped"
    assert "token" not in hms_message


def test_a_huawei_data_message_when_asked_or_without_text():
    _, message = item(HUAWEI, "t", {"huawei_msg_type": "data", "priority": 10})
    assert build_message(message, default_title="App")["android"] == {"ttl": "3600s", "urgency": "HIGH"}
    _, silent = item(HUAWEI, "t", {}, content=None, heading=None)
    assert "notification" not in build_message(silent, default_title="App")["android"]
    _, untitled = item(HUAWEI, "t", {}, heading=None)
    assert build_message(untitled, default_title="Shop")["android"]["notification"]["title"] == "Shop"


def test_identical_messages_share_requests_of_at_most_1000_tokens(gateways, app):
    items = [item(HUAWEI, f"tok-{i}") for i in range(1203)]
    items.append(item(HUAWEI, "tok-fr", content="Votre commande est partie"))
    results = HmsProvider(app).send(items)
    assert len(results) == len(items) and {r.outcome for r in results} == {Outcome.SENT}
    records = gateways.deliveries(platform="hms")
    assert len(records) == 1204 and {r["status"] for r in records} == {200}
    # 1000 + 203 of the English text, 1 of the French: three requests, each token recorded once.
    sizes = Counter(r["received_at"] for r in records)
    assert sorted(sizes.values()) == [1, 203, 1000]
    assert gateways.access_tokens_issued("hms") == 1


def test_illegal_tokens_are_invalid_recipients_and_the_rest_sent(gateways, app):
    items = [item(HUAWEI, name) for name in ("ok-1", "gone-1", "ok-2", "gone-2")]
    gateways.invalidate_hms_tokens("gone-1", "gone-2")
    got = outcomes(HmsProvider(app).send(items))
    assert [got[r.player_id] for r, _ in items] == [
        (Outcome.SENT, ""),
        (Outcome.INVALID_RECIPIENT, "InvalidToken"),
        (Outcome.SENT, ""),
        (Outcome.INVALID_RECIPIENT, "InvalidToken"),
    ]
    # A request whose every token is invalid (80300007) unsubscribes them all.
    alone = [item(HUAWEI, "gone-1")]
    assert outcomes(HmsProvider(app).send(alone)) == {
        alone[0][0].player_id: (Outcome.INVALID_RECIPIENT, "InvalidToken")
    }


def test_an_expired_token_is_refreshed_once_and_the_send_retried(gateways, app):
    provider = HmsProvider(app)
    assert {r.outcome for r in provider.send([item(HUAWEI, "a")])} == {Outcome.SENT}
    gateways.expire_access_tokens("hms")
    results = provider.send([item(HUAWEI, "b"), item(HUAWEI, "c", content="other text")])
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert gateways.access_tokens_issued("hms") == 2
    statuses = sorted((d["token"], d["status"]) for d in gateways.deliveries(platform="hms"))
    assert statuses == [("a", 200), ("b", 200), ("b", 401), ("c", 200), ("c", 401)]


def test_a_token_expired_twice_is_transient(gateways, app):
    gateways.faults(platform="hms", fail_first={"80200003": 2})
    [result] = HmsProvider(app).send([item(HUAWEI, "a")])
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "TokenExpired")
    assert gateways.access_tokens_issued("hms") == 2


def test_huawei_faults_are_sorted(gateways, app):
    gateways.faults(
        platform="hms", fail_first={"81000001": 1, "TrafficControl": 1, "80300008": 1}, retry_after=4
    )
    provider = HmsProvider(app)
    [internal] = provider.send([item(HUAWEI, "a")])
    assert (internal.outcome, internal.reason) == (Outcome.TRANSIENT, "InternalError")
    [flow] = provider.send([item(HUAWEI, "a")])
    assert (flow.outcome, flow.reason, flow.retry_after) == (Outcome.TRANSIENT, "http 503", 4.0)
    [large] = provider.send([item(HUAWEI, "a")])
    assert (large.outcome, large.reason) == (Outcome.ERROR, "PayloadTooLarge")


def test_wrong_huawei_credentials_error_every_recipient(gateways, app):
    app.huawei_app_secret = "wrong"
    results = HmsProvider(app).send([item(HUAWEI, "a"), item(HUAWEI, "b")])
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.ERROR, "HmsAuth: invalid client_secret")}
    assert gateways.deliveries(platform="hms") == []


def test_the_huawei_app_id_cannot_leave_its_path_segment(settings):
    settings.HERALD_HMS_BASE_URL = "https://push-api.cloud.huawei.com"
    assert (
        hms_module.send_url("1/../../x")
        == "https://push-api.cloud.huawei.com/v1/1%2F..%2F..%2Fx/messages:send"
    )


# --- ADM ------------------------------------------------------------------------------------------


def test_adm_messages_reach_each_registration(gateways, app):
    ids = gateways.adm_registration_ids(3)
    items = [
        item(AMAZON, i, {"collapse_id": "orders", "adm_sound": "ding", "url": "https://e.com"}) for i in ids
    ]
    results = AdmProvider(app).send(items)
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.SENT, "")}
    assert all(r.extra == {} for r in results)
    records = gateways.deliveries(platform="adm")
    assert sorted(d["token"] for d in records) == sorted(ids)
    payload = records[0]["payload"]
    assert payload["consolidationKey"] == "orders" and payload["expiresAfter"] == 3600
    data = payload["data"]
    assert data["title"] == "Herald" and data["alert"] == "Your order shipped" and data["sound"] == "ding"
    assert json.loads(data["custom"])["u"] == "https://e.com"
    assert all(isinstance(value, str) for value in data.values())
    headers = records[0]["headers"]
    assert headers["x-amzn-type-version"] == "com.amazon.device.messaging.ADMMessage@1.0"
    assert headers["x-amzn-accept-type"] == "com.amazon.device.messaging.ADMSendResult@1.0"


def test_adm_expiry_is_clamped_to_what_adm_takes():
    from notifications.providers.adm import build_body

    assert build_body(item(AMAZON, "r", ttl=5)[1])["expiresAfter"] == 60
    assert build_body(item(AMAZON, "r", ttl=10**9)[1])["expiresAfter"] == 2_678_400
    assert "consolidationKey" not in build_body(item(AMAZON, "r", {"collapse_id": "k" * 65})[1])


def test_adm_permanent_and_transient_answers(gateways, app):
    live, gone, throttled = gateways.adm_registration_ids(3)
    gateways.unregister_adm(gone)
    gateways.faults(platform="adm", token_errors={throttled: "MaxRateExceeded"}, retry_after=9)
    items = [item(AMAZON, i) for i in (live, gone, "not-an-adm-id", throttled)]
    got = outcomes(AdmProvider(app).send(items))
    assert [got[r.player_id] for r, _ in items] == [
        (Outcome.SENT, ""),
        (Outcome.INVALID_RECIPIENT, "Unregistered"),
        (Outcome.INVALID_RECIPIENT, "InvalidRegistrationId"),
        (Outcome.TRANSIENT, "MaxRateExceeded"),
    ]
    [retry] = AdmProvider(app).send([item(AMAZON, throttled)])
    assert (retry.outcome, retry.retry_after) == (Outcome.TRANSIENT, 9.0)


def test_adm_too_large_is_an_error(gateways, app):
    [registration_id] = gateways.adm_registration_ids(1)
    [result] = AdmProvider(app).send([item(AMAZON, registration_id, content="x" * 7000)])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "MessageTooLarge")


def test_adm_refreshes_an_expired_token_once(gateways, app):
    ids = gateways.adm_registration_ids(2)
    provider = AdmProvider(app)
    assert {r.outcome for r in provider.send([item(AMAZON, ids[0])])} == {Outcome.SENT}
    gateways.expire_access_tokens("adm")
    assert {r.outcome for r in provider.send([item(AMAZON, i) for i in ids])} == {Outcome.SENT}
    assert gateways.access_tokens_issued("adm") == 2
    gateways.faults(platform="adm", fail_first={"AccessTokenExpired": 2})
    [result] = provider.send([item(AMAZON, ids[0])])
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "AccessTokenExpired")


def test_wrong_adm_credentials_error_every_recipient(gateways, app):
    app.adm_client_secret = "wrong"
    results = AdmProvider(app).send([item(AMAZON, "amzn1.adm-registration.v3.x")])
    assert {(r.outcome, r.reason) for r in results} == {
        (Outcome.ERROR, "AdmAuth: invalid_client (gatewaysim)")
    }


def test_a_registration_id_cannot_leave_its_path_segment(settings):
    settings.HERALD_ADM_BASE_URL = "https://api.amazon.com"
    assert message_url("../../auth/o2/token?x=1#") == (
        "https://api.amazon.com/messaging/registrations/..%2F..%2Fauth%2Fo2%2Ftoken%3Fx%3D1%23/messages"
    )


# --- the demo app (make run) ----------------------------------------------------------------------


def test_the_demo_app_is_wired_to_both_simulators(gateways, settings):
    settings.HERALD_FCM_BASE_URL = "https://127.0.0.1:9101"  # what make run sets: simulators in use
    settings.HERALD_GATEWAYSIM_CONTROL_URL = ""  # no APNs key registration in this test
    call_command("bootstrap_demo", "--json", stdout=StringIO())
    app = App.objects.get(name="demo app")
    assert app.huawei_app_id and app.huawei_app_secret and app.adm_client_id and app.adm_client_secret
    [huawei] = HmsProvider(app).send([item(HUAWEI, "demo-token")])
    [amazon] = AdmProvider(app).send([item(AMAZON, gateways.adm_registration_ids(1)[0])])
    assert (huawei.outcome, amazon.outcome) == (Outcome.SENT, Outcome.SENT)
    secrets_before = (app.huawei_app_secret, app.adm_client_secret)
    call_command("bootstrap_demo", "--json", stdout=StringIO())
    app.refresh_from_db()
    assert (app.huawei_app_secret, app.adm_client_secret) == secrets_before  # kept across runs
