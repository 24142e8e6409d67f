"""The APNs provider: payload and headers (pure functions), response mapping, JWT caching, the API's
size check, and the provider against the simulator in this process (token and certificate auth).
The pipeline with a real worker is in tests/e2e/test_apns_delivery.py."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from collections import Counter

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from apps.models import App
from notifications.providers import apns, provider_for
from notifications.providers.apns import (
    ApnsProvider,
    build_headers,
    build_payload,
    classify,
    provider_token,
    push_type_of,
)
from notifications.providers.base import Outcome, ProviderNotConfigured, Recipient, RenderedMessage
from notifications.providers.http2 import HttpRequest, HttpResponse
from tests.gatewaysim.simulator import Simulator

BUNDLE = "com.example.herald"
NOW = 1_800_000_000.0


def recipient(badge_count: int = 0, test_type: int | None = None) -> Recipient:
    return Recipient(
        player_id=uuid.uuid4(),
        device_type=0,
        identifier=secrets.token_hex(32),
        language="en",
        tags={},
        badge_count=badge_count,
        test_type=test_type,
    )


def message(content: str | None = "Hello", ttl: int = 3600, **body) -> RenderedMessage:
    return RenderedMessage(
        notification_id="9f1c6f6e-0000-4000-8000-000000000001",
        heading=body.pop("heading", "Herald"),
        content=content,
        subtitle=body.pop("subtitle", None),
        body=body,
        ttl_seconds=ttl,
    )


def headers_of(msg: RenderedMessage, topic: str | None = BUNDLE) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in build_headers(msg, topic, NOW))


# --- payload --------------------------------------------------------------------------------------


def test_an_alert_carries_title_subtitle_body_default_sound_and_onesignals_custom():
    payload = build_payload(recipient(), message(subtitle="Sub"))

    assert payload == {
        "aps": {"alert": {"title": "Herald", "subtitle": "Sub", "body": "Hello"}, "sound": "default"},
        "custom": {"i": "9f1c6f6e-0000-4000-8000-000000000001"},
    }


def test_every_ios_field_lands_where_apns_and_onesignals_sdk_expect_it():
    msg = message(
        ios_sound="ping.caf",
        thread_id="chat-1",
        ios_category="reply",
        ios_interruption_level="time-sensitive",
        ios_relevance_score=0.5,
        target_content_identifier="window-1",
        url="https://example.com/a",
        data={"order": 7},
        ios_attachments={"pic": "https://example.com/p.png"},
        buttons=[{"id": "yes", "text": "Yes", "icon": "ok"}, {"id": "no", "text": "No"}],
        apns_alert={"loc-key": "GREETING", "loc-args": ["Ann"]},
    )

    payload = build_payload(recipient(), msg)

    aps = payload["aps"]
    assert aps["alert"] == {"title": "Herald", "body": "Hello", "loc-key": "GREETING", "loc-args": ["Ann"]}
    assert aps["sound"] == "ping.caf"
    assert aps["thread-id"] == "chat-1"
    assert aps["category"] == "reply"
    assert aps["interruption-level"] == "time-sensitive"
    assert aps["relevance-score"] == 0.5
    assert aps["target-content-id"] == "window-1"
    assert aps["mutable-content"] == 1
    assert "content-available" not in aps
    assert payload["custom"] == {"i": msg.notification_id, "u": "https://example.com/a", "a": {"order": 7}}
    assert payload["att"] == {"pic": "https://example.com/p.png"}
    assert payload["buttons"] == [{"i": "yes", "n": "Yes", "p": "ok"}, {"i": "no", "n": "No"}]


def test_app_url_wins_over_url_and_nil_sound_means_silent():
    payload = build_payload(recipient(), message(url="https://web", app_url="app://x", ios_sound="nil"))

    assert payload["custom"]["u"] == "app://x"
    assert "sound" not in payload["aps"]


@pytest.mark.parametrize(
    "body,badge_count,expected",
    [
        ({"ios_badgeType": "SetTo", "ios_badgeCount": 4}, 9, 4),
        ({"ios_badgeType": "SetTo", "ios_badgeCount": 0}, 9, 0),
        ({"ios_badgeType": "Increase", "ios_badgeCount": 2}, 5, 7),
        ({"ios_badgeType": "Increase", "ios_badgeCount": -10}, 5, 0),
        ({"ios_badgeType": "Increase"}, 5, 5),
        ({"ios_badgeType": "None", "ios_badgeCount": 4}, 5, None),
        ({"ios_badgeCount": 4}, 5, None),
    ],
)
def test_badge_follows_ios_badge_type_and_the_players_count(body, badge_count, expected):
    aps = build_payload(recipient(badge_count=badge_count), message(**body))["aps"]

    assert aps.get("badge") == expected


def test_mutable_content_for_attachments_buttons_or_when_asked():
    for body in (
        {"ios_attachments": {"a": "https://x"}},
        {"buttons": [{"id": "b"}]},
        {"mutable_content": True},
    ):
        assert build_payload(recipient(), message(**body))["aps"]["mutable-content"] == 1
    assert "mutable-content" not in build_payload(recipient(), message())["aps"]


# --- push types, priorities, topics, expiration ---------------------------------------------------


def test_a_plain_alert_is_high_priority_with_the_bundle_topic_and_ttl_expiration():
    headers = headers_of(message(ttl=3600, collapse_id="score"))

    assert headers == {
        "content-type": "application/json",
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": str(int(NOW) + 3600),
        "apns-topic": BUNDLE,
        "apns-collapse-id": "score",
    }


def test_content_available_without_text_is_a_background_push_at_priority_5():
    msg = message(content=None, heading=None, content_available=True)

    assert push_type_of(msg) == "background"
    assert headers_of(msg)["apns-priority"] == "5"
    assert headers_of(msg)["apns-push-type"] == "background"
    assert build_payload(recipient(), msg)["aps"] == {"content-available": 1}


def test_content_available_with_text_stays_an_alert_that_also_wakes_the_app():
    msg = message(content_available=True)

    assert headers_of(msg)["apns-push-type"] == "alert"
    assert headers_of(msg)["apns-priority"] == "10"
    assert build_payload(recipient(), msg)["aps"]["content-available"] == 1


@pytest.mark.parametrize("priority,expected", [(None, "10"), (10, "10"), (5, "5"), ("5", "5"), (1, "5")])
def test_a_priority_below_10_is_apns_priority_5(priority, expected):
    assert headers_of(message(priority=priority))["apns-priority"] == expected


def test_the_voip_override_sets_push_type_and_the_voip_topic():
    headers = headers_of(message(apns_push_type_override="voip"))

    assert headers["apns-push-type"] == "voip"
    assert headers["apns-topic"] == f"{BUNDLE}.voip"
    assert headers_of(message(apns_push_type_override="nonsense"))["apns-push-type"] == "alert"


def test_request_fields_cannot_break_header_lines():
    lines = build_headers(message(collapse_id="a\r\nx-evil: 1"), BUNDLE, NOW)

    assert "apns-collapse-id: ax-evil: 1" in lines
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_expiration_is_now_plus_what_is_left_of_the_ttl():
    assert headers_of(message(ttl=0))["apns-expiration"] == str(int(NOW))
    assert headers_of(message(ttl=259_200))["apns-expiration"] == str(int(NOW) + 259_200)


# --- responses ---------------------------------------------------------------------------------


def response(status: int, reason: str | None = None, **headers: str) -> HttpResponse:
    body = b'{"reason":"%s"}' % reason.encode() if reason else b""
    return HttpResponse(HttpRequest("https://x", b"", []), status, body, headers)


@pytest.mark.parametrize(
    "answer,outcome,reason,retry_after",
    [
        (response(200), Outcome.SENT, "", None),
        (response(410, "Unregistered"), Outcome.INVALID_RECIPIENT, "Unregistered", None),
        (response(400, "BadDeviceToken"), Outcome.INVALID_RECIPIENT, "BadDeviceToken", None),
        (response(400, "DeviceTokenNotForTopic"), Outcome.INVALID_RECIPIENT, "DeviceTokenNotForTopic", None),
        (response(429, "TooManyRequests", **{"retry-after": "5"}), Outcome.TRANSIENT, "TooManyRequests", 5.0),
        (response(500, "InternalServerError"), Outcome.TRANSIENT, "InternalServerError", None),
        (
            response(503, "ServiceUnavailable", **{"retry-after": "2"}),
            Outcome.TRANSIENT,
            "ServiceUnavailable",
            2,
        ),
        (response(502), Outcome.TRANSIENT, "http 502", None),
        (response(403, "ExpiredProviderToken"), Outcome.TRANSIENT, "ExpiredProviderToken", None),
        (response(403, "InvalidProviderToken"), Outcome.ERROR, "InvalidProviderToken", None),
        (response(413, "PayloadTooLarge"), Outcome.ERROR, "PayloadTooLarge", None),
        (response(400, "BadTopic"), Outcome.ERROR, "BadTopic", None),
    ],
)
def test_apns_answers_map_to_outcomes(answer, outcome, reason, retry_after):
    assert classify(answer) == (outcome, reason, retry_after)


def test_transport_errors_are_transient():
    failed = HttpResponse(HttpRequest("https://x", b"", []), 0, error="Connection died")

    assert classify(failed)[0] is Outcome.TRANSIENT


# --- the JWT --------------------------------------------------------------------------------------


@pytest.fixture
def p8() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_the_jwt_is_es256_with_kid_and_iss_and_is_reused(p8):
    token = provider_token("KEY1", "TEAM1", p8)

    assert provider_token("KEY1", "TEAM1", p8) == token
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "TEAM1" and isinstance(claims["iat"], int)


def test_the_jwt_is_renewed_after_40_minutes(p8, monkeypatch):
    clock = [NOW]
    monkeypatch.setattr(apns.time, "time", lambda: clock[0])
    token = provider_token("KEY2", "TEAM1", p8)

    clock[0] += 39 * 60
    assert provider_token("KEY2", "TEAM1", p8) == token
    clock[0] += 60
    renewed = provider_token("KEY2", "TEAM1", p8)
    assert renewed != token
    assert jwt.decode(renewed, options={"verify_signature": False})["iat"] == int(clock[0])


def test_a_refused_jwt_is_renewed_once_however_many_refusals(p8):
    token = provider_token("KEY3", "TEAM1", p8)

    renewed = provider_token("KEY3", "TEAM1", p8, stale=token)
    again = provider_token("KEY3", "TEAM1", p8, stale=token)

    assert renewed != token
    assert again == renewed


# --- configuration ---------------------------------------------------------------------------------


def test_an_app_without_apns_credentials_is_not_configured(p8):
    with pytest.raises(ProviderNotConfigured):
        provider_for("apns", App(name="bare"))
    with pytest.raises(ProviderNotConfigured):  # a key is not enough without its ids and bundle
        provider_for("apns", App(name="half", apns_p8=p8, apns_key_id="K"))
    provider = provider_for(
        "apns", App(name="ok", apns_p8=p8, apns_key_id="K", apns_team_id="T", apns_bundle_id=BUNDLE)
    )
    assert isinstance(provider, ApnsProvider)


def test_test_players_and_sandbox_apps_go_to_the_sandbox(p8, settings):
    settings.HERALD_APNS_PRODUCTION_URL = "https://production"
    settings.HERALD_APNS_SANDBOX_URL = "https://sandbox"
    credentials = {"apns_p8": p8, "apns_key_id": "K", "apns_team_id": "T", "apns_bundle_id": BUNDLE}
    production = ApnsProvider(App(name="p", apns_env="production", **credentials))
    sandbox = ApnsProvider(App(name="s", apns_env="sandbox", **credentials))

    assert production._base_url(recipient()) == "https://production"
    assert production._base_url(recipient(test_type=1)) == "https://sandbox"
    assert production._base_url(recipient(test_type=2)) == "https://sandbox"
    assert sandbox._base_url(recipient()) == "https://sandbox"


# --- the API's size check --------------------------------------------------------------------------


def post(api, tenant, **fields):
    """To iOS only unless told otherwise: other platforms' size checks stay out of the way."""
    body = {"app_id": str(tenant.app.id), "included_segments": ["All"], "isIos": True, **fields}
    return api.post("/notifications", body, key=tenant.app_key)


@pytest.mark.django_db
def test_the_api_refuses_an_apns_payload_over_4096_bytes(api, own):
    # 2100 quotes pass the 3500-byte metadata check but take 4200 bytes once JSON-escaped.
    response = post(api, own, contents={"en": '"' * 2100})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert "APNs" in error and "4096" in error and "language en" in error


@pytest.mark.django_db
def test_the_api_measures_every_language_and_the_ios_fields(api, own):
    long_es = post(api, own, contents={"en": "Hi", "es": "\n" * 2100})
    loc_args = post(api, own, contents={"en": "Hi"}, apns_alert={"loc-args": ["x" * 4100]})

    assert long_es.status_code == 400 and "language es" in long_es.json()["errors"][0]
    assert loc_args.status_code == 400 and "4096" in loc_args.json()["errors"][0]


@pytest.mark.django_db
def test_the_apns_limit_applies_only_when_ios_can_be_reached_and_voip_gets_5120(api, own):
    big = {"contents": {"en": '"' * 2200}}

    # Windows: the toast keeps '"' as is (2,200 bytes of 5,000). Android would not do: FCM carries
    # the escaped text twice (data and notification), past its own 4,096 bytes.
    assert post(api, own, isIos=False, isWP_WNS=True, **big).status_code == 200
    assert post(api, own, isIos=None, isWP_WNS=True, isMacOSX=True, **big).status_code == 400
    assert post(api, own, isIos=True, apns_push_type_override="voip", **big).status_code == 200
    assert post(api, own, **big).status_code == 400


# --- against the simulator -----------------------------------------------------------------------


@pytest.fixture
def gateway(sim: Simulator, settings) -> Simulator:
    sim.reset()
    settings.HERALD_APNS_PRODUCTION_URL = sim.apns_url
    settings.HERALD_APNS_SANDBOX_URL = sim.apns_url
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    return sim


@pytest.fixture
def token_app(gateway: Simulator) -> App:
    key_id, team_id, pem = gateway.apns_key(topics=[BUNDLE], strict_token_updates=True)
    return App(name="token", apns_p8=pem, apns_key_id=key_id, apns_team_id=team_id, apns_bundle_id=BUNDLE)


def items(count: int, **body) -> list[tuple[Recipient, RenderedMessage]]:
    return [(recipient(badge_count=n), message(**body)) for n in range(count)]


def test_a_batch_is_sent_with_one_jwt_and_every_item_gets_its_result(gateway: Simulator, token_app):
    batch = items(150, ios_badgeType="Increase", ios_badgeCount=1)

    results = ApnsProvider(token_app).send(batch)

    assert Counter(r.outcome for r in results) == {Outcome.SENT: 150}
    assert {r.player_id for r in results} == {r.player_id for r, _ in batch}
    deliveries = gateway.deliveries(platform="apns")
    assert len({d["headers"]["x-sim-jwt"] for d in deliveries}) == 1
    badges = {d["token"]: d["payload"]["aps"]["badge"] for d in deliveries}
    assert badges == {r.identifier: r.badge_count + 1 for r, _ in batch}


def test_an_expired_jwt_is_renewed_once_and_the_refused_sends_retried(gateway: Simulator, token_app):
    provider = ApnsProvider(token_app)
    assert {r.outcome for r in provider.send(items(5))} == {Outcome.SENT}
    gateway.faults("apns", fail_first={"ExpiredProviderToken": 1})

    refused = provider.send(items(100))
    retried = provider.send(items(100))

    assert {(r.outcome, r.reason) for r in refused} == {(Outcome.TRANSIENT, "ExpiredProviderToken")}
    assert {r.outcome for r in retried} == {Outcome.SENT}
    [key] = [
        k
        for k in gateway.control("GET", "/_sim/apns/keys").body["keys"]
        if k["key_id"] == token_app.apns_key_id
    ]
    assert key["tokens_seen"] == 2  # renewed once, not once per refusal
    assert key["refused_updates"] == 0  # never TooManyProviderTokenUpdates


def test_invalid_tokens_are_invalid_recipients_without_a_request(gateway: Simulator, token_app):
    bad = recipient()
    bad.identifier = "not hex/../"

    [result] = ApnsProvider(token_app).send([(bad, message())])

    assert (result.outcome, result.reason) == (Outcome.INVALID_RECIPIENT, "BadDeviceToken")
    assert gateway.stats()["apns"]["received"] == 0


def test_goaway_and_a_stream_limit_of_one_lose_nothing(gateway: Simulator, token_app):
    gateway.faults("apns", goaway_after=25, max_concurrent_streams=1)

    results = ApnsProvider(token_app).send(items(120))

    sent = [r for r in results if r.outcome is Outcome.SENT]
    assert len(results) == 120
    assert all(r.outcome in (Outcome.SENT, Outcome.TRANSIENT) for r in results)
    assert gateway.stats()["apns"]["accepted"] == len(sent)
    assert gateway.control("GET", "/_sim/apns/connections").body["goaway"] >= 1


def p12_for(sim: Simulator, bundle_id: str, password: str) -> str:
    """An APNs push certificate (.p12, base64) issued by the simulator's CA for ``bundle_id``."""
    ca = x509.load_pem_x509_certificate((sim.state_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((sim.state_dir / "ca-key.pem").read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, bundle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    encryption = serialization.BestAvailableEncryption(password.encode())
    return base64.b64encode(
        pkcs12.serialize_key_and_certificates(b"push", key, cert, None, encryption)
    ).decode()


def test_certificate_auth_sends_with_the_p12_and_no_jwt(gateway: Simulator):
    app = App(
        name="cert", apns_p12=p12_for(gateway, "com.example.cert", "s3cret"), apns_p12_password="s3cret"
    )

    results = ApnsProvider(app).send(items(3))

    assert {r.outcome for r in results} == {Outcome.SENT}
    for delivery in gateway.deliveries(platform="apns"):
        assert delivery["headers"]["x-sim-auth"] == "certificate"
        assert "authorization" not in delivery["headers"]
        assert delivery["headers"]["apns-topic"] == "com.example.cert"


def test_an_unreadable_p12_is_not_configured():
    with pytest.raises(ProviderNotConfigured):
        ApnsProvider(App(name="bad", apns_p12=base64.b64encode(b"nope").decode(), apns_p12_password="x"))
