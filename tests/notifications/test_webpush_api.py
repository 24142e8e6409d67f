"""Web Push at the API: endpoint and image URL SSRF checks, the plaintext size limit, VAPID keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apps.models import App
from apps.vapid import b64url_decode, ensure_vapid_keys, vapid_key_pair
from core import ssrf
from notifications.models import Notification
from notifications.providers.webpush import MAX_PLAINTEXT_BYTES
from players.models import Player
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db

PRIVATE_ENDPOINTS = [
    ("https://127.0.0.1:9103/push/abc", "127.0.0.1 is a loopback address"),
    ("https://10.1.2.3/push/abc", "10.1.2.3 is a private address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://[::1]/push", "::1 is a loopback address"),
    ("https://[::ffff:127.0.0.1]/push", "IPv4-mapped"),
    ("https://2130706433/push", "2130706433 is 127.0.0.1, a loopback address"),
    ("https://localhost/push", "localhost resolves to"),
    ("http://push.example/send/abc", "must use https"),
    ("https://user@push.example/send/abc", "user name or password"),
]


@pytest.fixture(autouse=True)
def _no_allow_list(settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    ssrf.clear_dns_cache()


def register(api, tenant, device_type: int, identifier: str, **fields):
    body = {"app_id": str(tenant.app.id), "device_type": device_type, "identifier": identifier, **fields}
    return api.post("/players", body)


def send(api, tenant, **fields):
    body = {"app_id": str(tenant.app.id), "contents": {"en": "Hi"}, **fields}
    return api.post("/notifications", body, key=tenant.app_key)


# --- player registration ---------------------------------------------------------------------------


@pytest.mark.parametrize("device_type", [5, 8, 7])
@pytest.mark.parametrize(("endpoint", "reason"), PRIVATE_ENDPOINTS)
def test_web_push_endpoints_must_be_public(api, own, device_type, endpoint, reason):
    response = register(api, own, device_type, endpoint)

    assert response.status_code == 400
    [message] = response.json()["errors"]
    assert message.startswith("identifier (the web push endpoint) ")
    assert reason in message
    assert not Player.objects.exists()


def test_an_update_to_a_private_endpoint_is_refused_too(api, own):
    player_id = register(api, own, 5, "https://push.example/send/abc").json()["id"]

    response = api.put(
        f"/players/{player_id}", {"app_id": str(own.app.id), "identifier": "https://10.0.0.5/push/x"}
    )

    assert response.status_code == 400
    assert Player.objects.get(pk=player_id).identifier == "https://push.example/send/abc"


def test_unresolvable_endpoints_are_accepted_at_registration(api, own):
    """Nothing is fetched at registration; the provider checks (and pins) again at send time."""
    response = register(api, own, 8, "https://updates.push.example/wpush/v2/x", web_auth="a", web_p256="b")
    assert response.status_code == 200


def test_the_allow_list_admits_the_simulators(api, own, settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]

    assert register(api, own, 5, "https://127.0.0.1:9103/push/abc").status_code == 200
    assert register(api, own, 5, "https://10.1.2.3/push/abc").status_code == 400


def test_other_device_types_keep_their_token_rules(api, own):
    # An Android token that happens to look like a URL is a token, not an endpoint to fetch.
    assert register(api, own, 1, "https://127.0.0.1/not-an-endpoint").status_code == 200


# --- image URLs at POST /notifications -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"big_picture": "http://127.0.0.1/a.png"}, "big_picture must not point at a non-public address"),
        ({"chrome_web_image": "https://10.1.2.3/a.png"}, "chrome_web_image"),
        ({"chrome_web_icon": "https://169.254.169.254/latest/meta-data"}, "169.254.169.254"),
        ({"large_icon": "https://[::1]/i.png"}, "large_icon"),
        ({"firefox_icon": "https://localhost/i.png"}, "firefox_icon"),
        ({"ios_attachments": {"pic": "https://10.9.8.7/p.jpg"}}, "ios_attachments.pic"),
        ({"web_buttons": [{"id": "b", "text": "B", "icon": "http://2130706433/i"}]}, "web_buttons icon"),
    ],
)
def test_image_urls_pointing_at_private_addresses_are_a_400(api, own, fields, mentions):
    PlayerFactory(app=own.app)

    response = send(api, own, included_segments=["All"], **fields)

    assert response.status_code == 400
    assert mentions in response.json()["errors"][0]
    assert not Notification.objects.exists()


def test_public_unresolvable_and_non_url_images_are_accepted(api, own):
    PlayerFactory(app=own.app)

    response = send(
        api,
        own,
        included_segments=["All"],
        big_picture="https://8.8.8.8/banner.png",
        chrome_web_image="http://cdn.example/img.png",  # unresolvable here: devices resolve it
        large_icon="ic_launcher_round",  # an Android resource name
        ios_attachments={"id1": "local-file.png"},
    )

    assert response.status_code == 200, response.json()


def test_allowed_networks_admit_image_urls(api, own, settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    PlayerFactory(app=own.app)

    assert send(api, own, included_segments=["All"], big_picture="http://127.0.0.1/a.png").status_code == 200


# --- the Web Push plaintext limit ------------------------------------------------------------------


def test_a_web_push_payload_over_3993_bytes_is_a_400(api, own):
    PlayerFactory(app=own.app)
    big = {
        "chrome_web_image": "https://cdn.example/" + "i" * 1500,
        "web_url": "https://x.example/" + "u" * 1500,
    }

    response = send(api, own, included_segments=["All"], contents={"en": "c" * 1000}, **big)

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(
        f"Message Web push payload must not exceed {MAX_PLAINTEXT_BYTES} bytes"
    )
    # The same fields are fine when no web device type is targeted.
    android_only = send(
        api, own, isAndroid=True, included_segments=["All"], contents={"en": "c" * 1000}, **big
    )
    assert android_only.status_code == 200


def test_web_push_topic_must_use_the_base64url_alphabet(api, own):
    PlayerFactory(app=own.app)
    response = send(api, own, included_segments=["All"], web_push_topic="not allowed!")
    assert response.status_code == 400
    assert "web_push_topic" in response.json()["errors"][0]
    assert send(api, own, included_segments=["All"], web_push_topic="cart_reminder-1").status_code == 200


# --- VAPID keys -------------------------------------------------------------------------------------


def _public_of(private_raw: str) -> str:
    key = ec.derive_private_key(int.from_bytes(b64url_decode(private_raw), "big"), ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        .hex()
    )


def test_a_new_app_gets_a_vapid_key_pair_and_shows_only_the_public_key(api, own):
    response = api.post("/apps", {"name": "Shop"}, key=own.user_key)

    assert response.status_code == 200
    body = response.json()
    app = App.objects.get(pk=body["id"])
    public = b64url_decode(body["vapid_public_key"])
    assert len(public) == 65 and public[0] == 4
    assert public.hex() == _public_of(app.vapid_private_key)
    assert "vapid_private_key" not in body
    assert app.vapid_private_key not in response.content.decode()


def test_the_public_key_endpoint_is_keyless_and_creates_a_pair_when_missing(api, api_root, own):
    assert own.app.vapid_public_key is None  # made by the factory, not app_create

    response = api_root.get(f"/apps/{own.app.id}/web_push_public_key")

    assert response.status_code == 200
    own.app.refresh_from_db()
    assert response.json() == {"vapid_public_key": own.app.vapid_public_key}
    assert api.get(f"/apps/{own.app.id}/web_push_public_key").json() == response.json()  # stable
    assert api.get("/apps/not-an-app/web_push_public_key").status_code == 400


def test_ensure_vapid_keys_is_idempotent(own):
    first = ensure_vapid_keys(App.objects.get(pk=own.app.pk)).vapid_public_key
    second = ensure_vapid_keys(App.objects.get(pk=own.app.pk)).vapid_public_key
    assert first == second and first


def _pem(private_raw: str) -> str:
    key = ec.derive_private_key(int.from_bytes(b64url_decode(private_raw), "big"), ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize("form", ["raw", "padded", "pem"])
def test_put_accepts_a_p256_private_key_raw_or_pem_and_derives_the_public_key(api, own, form):
    private, public = vapid_key_pair()
    value = {"raw": private, "padded": private + "=", "pem": _pem(private)}[form]

    response = api.put(f"/apps/{own.app.id}", {"vapid_private_key": value}, key=own.user_key)

    assert response.status_code == 200
    assert response.json()["vapid_public_key"] == public
    own.app.refresh_from_db()
    assert (own.app.vapid_private_key, own.app.vapid_public_key) == (private, public)


@pytest.mark.parametrize(
    "value",
    [
        "plain-vapid",
        "AAAA",
        "A" * 43,  # 32 zero bytes: not a valid scalar
        ec.generate_private_key(ec.SECP384R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode(),
    ],
    ids=["text", "short", "zero", "p384"],
)
def test_put_refuses_what_is_not_a_p256_private_key(api, own, value):
    response = api.put(f"/apps/{own.app.id}", {"vapid_private_key": value}, key=own.user_key)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        "vapid_private_key must be a P-256 private key: base64url of the raw 32-byte key, or PEM"
    ]
    own.app.refresh_from_db()
    assert own.app.vapid_private_key is None


def test_a_public_key_that_does_not_match_is_refused(api, own):
    private, public = vapid_key_pair()
    _other_private, other_public = vapid_key_pair()

    ok = api.put(
        f"/apps/{own.app.id}", {"vapid_private_key": private, "vapid_public_key": public}, key=own.user_key
    )
    bad = api.put(f"/apps/{own.app.id}", {"vapid_public_key": other_public}, key=own.user_key)

    assert ok.status_code == 200
    assert bad.status_code == 400
    assert bad.json()["errors"][0].startswith("vapid_public_key must be the public key")


def test_vapid_subject_must_be_mailto_or_https(api, own):
    assert (
        api.put(f"/apps/{own.app.id}", {"vapid_subject": "ops@x.example"}, key=own.user_key).status_code
        == 400
    )
    ok = api.put(f"/apps/{own.app.id}", {"vapid_subject": "mailto:ops@x.example"}, key=own.user_key)
    assert ok.status_code == 200
    own.app.refresh_from_db()
    assert own.app.vapid_subject == "mailto:ops@x.example"


# --- the provider, without a network -----------------------------------------------------------


def test_the_vapid_jwt_is_reused_for_most_of_its_life_then_signed_anew(own):
    import jwt as pyjwt

    from notifications.providers import webpush

    app = ensure_vapid_keys(App.objects.get(pk=own.app.pk))
    origin = "https://push.example"
    now = 1_800_000_000.0
    first = webpush.vapid_authorization(app, origin, now=now)
    assert webpush.vapid_authorization(app, origin, now=now + 10 * 3600) == first
    assert webpush.vapid_authorization(app, "https://other.example", now=now) != first
    later = webpush.vapid_authorization(app, origin, now=now + 11 * 3600 + 1)
    assert later != first

    token, key = first.removeprefix("vapid t=").split(", k=")
    assert key == app.vapid_public_key
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims == {"aud": origin, "exp": int(now) + 12 * 3600, "sub": webpush.DEFAULT_VAPID_SUBJECT}


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (201, {}, ("sent", "", None)),
        (200, {}, ("sent", "", None)),
        (202, {}, ("sent", "", None)),
        (404, {}, ("invalid_recipient", "NotFound", None)),
        (410, {}, ("invalid_recipient", "Gone", None)),
        (413, {}, ("error", "PayloadTooLarge", None)),
        (429, {"retry-after": "7"}, ("transient", "TooManyRequests", 7.0)),
        (503, {"retry-after": "2"}, ("transient", "http 503", 2.0)),
        (500, {}, ("transient", "http 500", None)),
        (401, {}, ("error", "http 401", None)),
        (400, {}, ("error", "http 400", None)),
    ],
)
def test_push_service_answers_map_to_outcomes(status, headers, expected):
    from notifications.providers.http2 import HttpRequest, HttpResponse
    from notifications.providers.webpush import classify

    outcome, reason, retry_after = classify(HttpResponse(HttpRequest("u", b"", []), status, headers=headers))
    assert (outcome.value, reason, retry_after) == expected


def test_retry_after_may_be_an_http_date():
    import email.utils
    import time

    from notifications.providers.http2 import HttpRequest, HttpResponse
    from notifications.providers.webpush import classify

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    _, _, retry_after = classify(HttpResponse(HttpRequest("u", b"", []), 429, headers={"retry-after": when}))
    assert 25 <= retry_after <= 31


def test_a_transport_failure_is_transient():
    from notifications.providers.http2 import HttpRequest, HttpResponse
    from notifications.providers.webpush import classify

    outcome, reason, _ = classify(HttpResponse(HttpRequest("u", b"", []), 0, error="Connection refused"))
    assert (outcome.value, reason) == ("transient", "transport: Connection refused")


def _recipient(endpoint: str, **keys):
    import uuid

    from notifications.providers.base import Recipient

    return Recipient(uuid.uuid4(), 5, endpoint, "en", {}, **keys)


def test_recipients_that_cannot_be_sent_to_are_sorted_without_a_request(own, monkeypatch):
    from notifications.providers.base import RenderedMessage
    from notifications.providers.webpush import WebPushProvider

    def nxdomain(host, *args, **kwargs):
        raise ssrf.socket.gaierror(ssrf.socket.EAI_NONAME, "nope")

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", nxdomain)
    valid_keys = {"web_auth": "nR7LWSVboet9rsTuQJiO0g", "web_p256": "B" + "A" * 86}
    items = [
        _recipient("https://gone.example/push/1", **valid_keys),  # does not resolve: retried later
        _recipient("https://10.0.0.1/push/2", **valid_keys),  # private: refused, not retried
        _recipient("https://8.8.8.8/push/3"),  # no keys
        _recipient("https://8.8.8.8/push/4", web_auth="short", web_p256="BAAA"),  # malformed keys
    ]
    message = RenderedMessage("n-1", "T", "C", None, {}, 60)

    results = WebPushProvider(own.app).send([(r, message) for r in items])

    outcomes = {r.player_id: (r.outcome.value, r.reason) for r in results}
    assert [outcomes[r.player_id] for r in items] == [
        ("transient", "EndpointUnresolvable"),
        ("error", "UnsafeEndpoint"),
        ("error", "InvalidSubscriptionKeys"),
        ("error", "InvalidSubscriptionKeys"),
    ]
    own.app.refresh_from_db()
    assert own.app.vapid_public_key  # the provider gave the app a key pair


def test_the_payload_follows_onesignals_web_sdk_shape():
    from notifications.providers.webpush import build_payload

    body = {
        "url": "https://app.example/",
        "data": {"k": "v"},
        "chrome_web_icon": "https://c/i.png",
        "firefox_icon": "https://c/f.png",
        "web_buttons": [{"id": "a", "text": "A"}],
    }
    chrome = build_payload(notification_id="n", heading=None, content="Hi", body=body, site_name="Site")
    firefox = build_payload(notification_id="n", heading="H", content="Hi", body=body, device_type=8)

    assert chrome == {
        "custom": {"i": "n", "u": "https://app.example/", "a": {"k": "v"}},
        "title": "Site",
        "alert": "Hi",
        "icon": "https://c/i.png",
        "o": [{"i": "a", "n": "A"}],
    }
    assert firefox["icon"] == "https://c/f.png" and firefox["title"] == "H"
