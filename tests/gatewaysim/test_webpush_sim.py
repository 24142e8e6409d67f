"""The Web Push simulator over real sockets: pywebpush (HTTP/1.1, requests) and pycurl (HTTP/2) as
clients, the payload decrypted by the simulator, VAPID checked, faults injected."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from py_vapid import jwt as vapid_jwt
from pywebpush import WebPusher

from tests.gatewaysim.http2 import Http2Client
from tests.gatewaysim.simulator import Simulator

SUBJECT = "mailto:ops@example.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class VapidKey:
    """An application server's VAPID key pair, signing as pywebpush would."""

    def __init__(self) -> None:
        self.vapid = Vapid()
        self.vapid.generate_keys()
        self.public = b64url(
            self.vapid.public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def authorization(self, endpoint: str, **claims: Any) -> str:
        """``vapid t=<JWT>, k=<key>`` for ``endpoint``'s origin; ``claims`` override (None drops)."""
        scheme, _, rest = endpoint.partition("://")
        payload = {
            "aud": f"{scheme}://{rest.split('/')[0]}",
            "exp": int(time.time()) + 12 * 3600,
            "sub": SUBJECT,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        token = vapid_jwt.sign(payload, self.vapid.private_key)
        return f"vapid t={token}, k={self.public}"


@pytest.fixture
def vapid() -> VapidKey:
    return VapidKey()


@pytest.fixture
def session(sim: Simulator) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False
        http.verify = str(sim.ca_path)
        yield http


def encrypt(subscription: dict, plaintext: bytes) -> bytes:
    return WebPusher(subscription).encode(plaintext, content_encoding="aes128gcm")["body"]


def push(
    session: requests.Session,
    subscription: dict,
    vapid: VapidKey,
    message: Any,
    *,
    headers: dict[str, str | None] | None = None,
    body: bytes | None = None,
    **claims: Any,
) -> requests.Response:
    """POST an encrypted message as a server would; ``headers`` override (None drops one)."""
    plaintext = message if isinstance(message, bytes) else json.dumps(message).encode()
    endpoint = subscription["endpoint"]
    sent = {
        "authorization": vapid.authorization(endpoint, **claims),
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
        "ttl": "60",
        **(headers or {}),
    }
    data = encrypt(subscription, plaintext) if body is None else body
    return session.post(endpoint, data=data, headers={k: v for k, v in sent.items() if v is not None})


def webpush_deliveries(sim: Simulator) -> list[dict]:
    return sim.deliveries(platform="webpush")


# --- accepted pushes ---------------------------------------------------------------------------------


def test_pywebpush_send_is_decrypted_and_recorded_as_the_browser_sees_it(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    message = {"title": "Sale", "alert": "50% off", "custom": {"i": "n-1", "u": "https://shop.example/"}}

    response = WebPusher(subscription, requests_session=session).send(
        json.dumps(message),
        headers={"authorization": vapid.authorization(subscription["endpoint"]), "urgency": "high"},
        ttl=3600,
    )

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(sim.webpush_url + "/m/")
    assert response.headers["ttl"] == "3600"
    [delivery] = webpush_deliveries(sim)
    assert delivery["token"] == subscription["endpoint"]
    assert delivery["status"] == 201
    assert delivery["payload"] == message
    assert delivery["headers"]["ttl"] == "3600"
    assert delivery["headers"]["urgency"] == "high"
    assert delivery["headers"]["content-encoding"] == "aes128gcm"
    assert delivery["headers"]["authorization"] == "vapid [redacted]"
    assert sim.stats()["webpush"] == {"received": 1, "accepted": 1, "rejected": 0, "duplicates": 0}


def test_subscriptions_look_like_push_manager_subscribe_output(sim: Simulator):
    subscriptions = sim.webpush_subscriptions(3)

    assert len({s["endpoint"] for s in subscriptions}) == 3
    for subscription in subscriptions:
        assert subscription["endpoint"].startswith(sim.webpush_url + "/push/")
        p256dh = base64.urlsafe_b64decode(subscription["keys"]["p256dh"] + "==")
        auth = base64.urlsafe_b64decode(subscription["keys"]["auth"] + "==")
        assert len(p256dh) == 65 and p256dh[0] == 4
        assert len(auth) == 16


def test_it_speaks_http2_to_pycurl_like_herald(sim: Simulator, vapid):
    subscription = sim.webpush_subscription()
    body = encrypt(subscription, b'{"custom": {"i": "n-2"}, "alert": "hi"}')
    headers = {
        "authorization": vapid.authorization(subscription["endpoint"]),
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
        "ttl": "0",
        "topic": "cart-reminder",
    }
    with Http2Client(sim.ca_path) as client:
        response = client.post(subscription["endpoint"], body, headers)

    assert response.http_version == "2"
    assert response.status == 201
    [delivery] = webpush_deliveries(sim)
    assert delivery["payload"] == {"custom": {"i": "n-2"}, "alert": "hi"}
    assert delivery["headers"]["topic"] == "cart-reminder"


def test_a_second_send_of_the_same_notification_is_a_duplicate(sim: Simulator, session, vapid):
    first, second = sim.webpush_subscriptions(2)
    for subscription, notification_id in ((first, "n-1"), (first, "n-1"), (first, "n-2"), (second, "n-1")):
        assert push(session, subscription, vapid, {"custom": {"i": notification_id}}).status_code == 201

    assert [d["duplicate"] for d in webpush_deliveries(sim)] == [False, True, False, False]
    assert sim.stats()["webpush"]["duplicates"] == 1


def test_a_payloadless_push_is_accepted(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, b"", body=b"", headers={"content-encoding": None})

    assert response.status_code == 201
    assert webpush_deliveries(sim)[0]["payload"] is None


# --- VAPID -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "mentions"),
    [
        ({"aud": "https://elsewhere.example"}, "aud"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": int(time.time()) + 25 * 3600}, "24 hours"),
        ({"exp": None}, "exp"),
        ({"sub": "ops@example.com"}, "sub"),
        ({"sub": None}, "sub"),
    ],
    ids=["wrong-aud", "expired", "exp-too-far", "no-exp", "sub-not-url", "no-sub"],
)
def test_bad_vapid_claims_are_401(sim: Simulator, session, vapid, claims, mentions):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, {"custom": {"i": "n"}}, **claims)

    assert response.status_code == 401
    assert mentions in response.json()["message"]
    assert response.json()["error"] == "Unauthorized"
    assert sim.stats()["webpush"] == {"received": 1, "accepted": 0, "rejected": 1, "duplicates": 0}


def test_a_signature_from_another_key_is_401(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    impostor = VapidKey()
    token = impostor.authorization(subscription["endpoint"]).split("t=")[1].split(",")[0]

    response = push(
        session,
        subscription,
        vapid,
        {"a": 1},
        headers={"authorization": f"vapid t={token}, k={vapid.public}"},
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "vapid t=abc", "vapid t=a.b.c, k=not-a-key", "WebPush eyJ0.eyJ1.sig"],
    ids=["missing", "bearer", "no-k", "bad-k", "legacy-scheme"],
)
def test_missing_or_malformed_authorization_is_401(sim: Simulator, session, vapid, authorization):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, {"a": 1}, headers={"authorization": authorization})

    assert response.status_code == 401


def test_a_subscription_bound_to_an_application_server_key_refuses_others_with_403(
    sim: Simulator, session, vapid
):
    subscription = sim.webpush_subscription(application_server_key=vapid.public)

    assert push(session, subscription, vapid, {"a": 1}).status_code == 201
    assert push(session, subscription, VapidKey(), {"a": 2}).status_code == 403


# --- headers and body -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"ttl": None}, 400),
        ({"ttl": "-1"}, 400),
        ({"ttl": "soon"}, 400),
        ({"urgency": "urgent"}, 400),
        ({"topic": "has spaces"}, 400),
        ({"topic": "x" * 33}, 400),
        ({"content-encoding": None}, 415),
        ({"content-encoding": "aesgcm"}, 415),
    ],
    ids=["no-ttl", "negative-ttl", "word-ttl", "bad-urgency", "bad-topic", "long-topic", "no-ce", "aesgcm"],
)
def test_protocol_violations_are_refused(sim: Simulator, session, vapid, headers, status):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, {"a": 1}, headers=headers)

    assert response.status_code == status
    assert webpush_deliveries(sim)[0]["status"] == status


def test_a_body_over_4096_bytes_is_413(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, b"x" * 4000)  # 4000 + 103 bytes of overhead

    assert response.status_code == 413


def test_the_largest_plaintext_that_fits_is_3993_bytes(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()

    response = push(session, subscription, vapid, b"y" * 3993)

    assert response.status_code == 201
    assert webpush_deliveries(sim)[0]["payload"] == "y" * 3993


def test_a_body_encrypted_for_another_subscription_is_400(sim: Simulator, session, vapid):
    mine, theirs = sim.webpush_subscriptions(2)

    response = push(session, mine, vapid, {"a": 1}, body=encrypt(theirs, b'{"a": 1}'))

    assert response.status_code == 400
    assert "decrypt" in response.json()["message"]


def test_unknown_subscriptions_are_404_and_expired_ones_410(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    unknown = {**subscription, "endpoint": sim.webpush_url + "/push/nobody"}

    assert push(session, unknown, vapid, {"a": 1}).status_code == 404
    assert sim.expire_webpush(subscription["endpoint"]) == 1
    gone = push(session, subscription, vapid, {"a": 1})
    assert gone.status_code == 410
    assert gone.json()["error"] == "Gone"


def test_a_reset_forgets_subscriptions(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    sim.reset()

    assert push(session, subscription, vapid, {"a": 1}).status_code == 404


# --- faults ------------------------------------------------------------------------------------------


def test_fail_first_answers_429_with_retry_after_then_accepts(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    sim.faults("webpush", fail_first={"TooManyRequests": 2}, retry_after=7)

    answers = [push(session, subscription, vapid, {"custom": {"i": "n"}}) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 201]
    assert answers[0].headers["retry-after"] == "7"
    assert [d["duplicate"] for d in webpush_deliveries(sim)] == [False, False, False]
    assert sim.stats()["webpush"] == {"received": 3, "accepted": 1, "rejected": 2, "duplicates": 0}


def test_token_errors_are_keyed_by_endpoint(sim: Simulator, session, vapid):
    doomed, fine = sim.webpush_subscriptions(2)
    sim.faults("webpush", token_errors={doomed["endpoint"]: "Gone"})

    assert push(session, doomed, vapid, {"a": 1}).status_code == 410
    assert push(session, fine, vapid, {"a": 1}).status_code == 201


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("NotFound", 404),
        ("Gone", 410),
        ("PayloadTooLarge", 413),
        ("TooManyRequests", 429),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_every_fault_has_its_status(sim: Simulator, session, vapid, error, status):
    subscription = sim.webpush_subscription()
    sim.faults("webpush", error_rates={error: 1.0}, retry_after=1)

    response = push(session, subscription, vapid, {"a": 1})

    assert response.status_code == status
    assert response.json()["error"] == error
    assert ("retry-after" in response.headers) == (status in (429, 503))


def test_unknown_fault_names_are_refused(sim: Simulator):
    response = sim.control("POST", "/_sim/faults", {"platform": "webpush", "fail_first": {"UNREGISTERED": 1}})

    assert response.status == 400
    assert "unknown error" in response.body["error"]


def test_latency_delays_the_answer(sim: Simulator, session, vapid):
    subscription = sim.webpush_subscription()
    sim.faults("webpush", latency_ms=300)

    started = time.monotonic()
    assert push(session, subscription, vapid, {"a": 1}).status_code == 201
    assert time.monotonic() - started >= 0.3


def test_control_routes_validate_their_input(sim: Simulator):
    assert sim.control("POST", "/_sim/webpush/subscriptions", {"count": 0}).status == 400
    assert (
        sim.control("POST", "/_sim/webpush/subscriptions", {"application_server_key": "nope"}).status == 400
    )
    assert sim.control("POST", "/_sim/webpush/expire", {"endpoints": "x"}).status == 400
    assert sim.control("POST", "/_sim/webpush/expire", {"endpoint": "https://x/push/none"}).body == {
        "expired": 0
    }
