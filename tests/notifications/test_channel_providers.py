"""Email, SMS and WNS: API validation, the unsubscribe link, include_unsubscribed, and each provider
driven directly (no worker) against the real simulators over real sockets."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
from django.test import Client

from apps.models import App
from notifications.providers.base import Outcome, Recipient, RenderedMessage
from notifications.providers.email import EmailProvider
from notifications.providers.sms import SmsProvider, build_query
from notifications.providers.wns import WnsProvider, allowed_channel, forget_token
from notifications.targeting import resolve_audience
from notifications.unsubscribe import read_token, unsubscribe_token, unsubscribe_url
from players.models import Player
from tests.factories import PlayerFactory
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.django_db

EMAIL, SMS, WNS = 11, 14, 6
BODY = (
    '<html><body><p>Hi {{ first_name | default: "you" }}</p>'
    '<a href="[unsubscribe_url]">Stop</a></body></html>'
)


@pytest.fixture
def gateways(sim: Simulator, settings) -> Simulator:
    sim.reset()
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    settings.HERALD_WNS_TOKEN_URL = sim.wns_token_url
    settings.HERALD_UNSUBSCRIBE_BASE_URL = "https://herald.test/"
    return sim


def send(api, tenant, **fields):
    return api.post("/notifications", {"app_id": str(tenant.app.id), **fields}, key=tenant.app_key)


def item(player: Player, body: dict, *, content: str | None = None, heading: str | None = None):
    recipient = Recipient(
        player_id=player.pk,
        device_type=player.device_type,
        identifier=player.identifier,
        language=player.language,
        tags=player.tags,
    )
    return recipient, RenderedMessage(
        notification_id=str(uuid.uuid4()), heading=heading, content=content, subtitle=None, body=body
    )


# --- API validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email_body": "<p>no link</p>"}, "email_body must contain [unsubscribe_url]"),
        ({"email_from_address": "nope"}, "email_from_address must be an email address"),
        ({"email_reply_to_address": "a@"}, "email_reply_to_address must be an email address"),
        ({"email_subject": 5}, "email_subject must be a string"),
        ({"include_unsubscribed": "yes"}, "include_unsubscribed must be a boolean"),
    ],
)
def test_email_fields_are_validated(api, own, fields, message):
    PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    request = {"email_to": ["a@example.com"], "email_subject": "S", "email_body": BODY, **fields}
    response = send(api, own, **request)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)


def test_a_valid_email_is_accepted(api, own):
    PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    response = send(
        api, own, email_to=["a@example.com"], email_subject="S", email_body=BODY, email_preheader="P"
    )
    assert response.status_code == 200 and response.json()["recipients"] == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sms_from": "12345"}, "sms_from must be a phone number in E.164 format"),
        ({"sms_media_urls": [f"https://cdn.example.com/{i}.png" for i in range(11)]}, "at most 10"),
        ({"sms_media_urls": ["ftp://x/y.png"]}, "http(s) URLs"),
        ({"sms_media_urls": ["http://169.254.169.254/latest"]}, "non-public address"),
    ],
)
def test_sms_fields_are_validated(api, own, fields, message):
    PlayerFactory(app=own.app, device_type=SMS, identifier="+15551234567")
    response = send(api, own, include_phone_numbers=["+15551234567"], contents={"en": "Hi"}, **fields)
    assert response.status_code == 400
    assert message in response.json()["errors"][0]


# --- unsubscribe link and include_unsubscribed --------------------------------------------------


def test_the_unsubscribe_token_is_signed_and_names_app_and_player(own):
    player = PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    token = unsubscribe_token(own.app.pk, player.pk)
    assert read_token(token) == (own.app.pk, player.pk)
    assert read_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert read_token("garbage") is None


def test_get_unsubscribes_and_answers_a_page(own, settings):
    settings.HERALD_UNSUBSCRIBE_BASE_URL = "https://herald.test"
    player = PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    url = unsubscribe_url(own.app.pk, player.pk)
    assert url.startswith("https://herald.test/email/unsubscribe/")
    response = Client().get(urlsplit(url).path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html") and b"unsubscribed" in response.content
    assert own.app.name.encode() in response.content
    player.refresh_from_db()
    assert (player.notification_types, player.unsubscribed_reason) == (-2, "unsubscribed")
    assert player.invalid_identifier is False
    assert Client().get(urlsplit(url).path).status_code == 200  # idempotent


def test_one_click_post_unsubscribes_without_csrf(own):
    player = PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    client = Client(enforce_csrf_checks=True)
    path = f"/email/unsubscribe/{unsubscribe_token(own.app.pk, player.pk)}"
    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    player.refresh_from_db()
    assert player.notification_types == -2


def test_a_bad_or_foreign_token_changes_nothing(own, outsider):
    player = PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    push = PlayerFactory(app=own.app)
    assert Client().get("/email/unsubscribe/not-a-token").status_code == 404
    wrong_app = unsubscribe_token(outsider.app.pk, player.pk)
    assert Client().get(f"/email/unsubscribe/{wrong_app}").status_code == 404
    assert Client().post(f"/email/unsubscribe/{unsubscribe_token(own.app.pk, push.pk)}").status_code == 404
    assert Client().put(f"/email/unsubscribe/{unsubscribe_token(own.app.pk, player.pk)}").status_code == 405
    assert Player.objects.filter(notification_types=-2).count() == 0


def test_a_bounce_keeps_its_reason_when_the_link_is_followed(own):
    player = PlayerFactory(
        app=own.app,
        device_type=EMAIL,
        identifier="a@example.com",
        notification_types=-2,
        invalid_identifier=True,
        unsubscribed_reason="Bounced",
    )
    Client().get(f"/email/unsubscribe/{unsubscribe_token(own.app.pk, player.pk)}")
    player.refresh_from_db()
    assert player.unsubscribed_reason == "Bounced"


def test_include_unsubscribed_reaches_unsubscribed_but_not_bounced_email_players(api, own):
    subscribed = PlayerFactory(app=own.app, device_type=EMAIL, identifier="a@example.com")
    unsubscribed = PlayerFactory(
        app=own.app, device_type=EMAIL, identifier="b@example.com", notification_types=-2
    )
    PlayerFactory(
        app=own.app,
        device_type=EMAIL,
        identifier="c@example.com",
        notification_types=-2,
        invalid_identifier=True,
    )
    addresses = ["a@example.com", "b@example.com", "c@example.com"]
    body = {"email_to": addresses, "email_subject": "S", "email_body": BODY}
    assert send(api, own, **body).json()["recipients"] == 1
    response = send(api, own, **body, include_unsubscribed=True)
    assert response.json()["recipients"] == 2
    assert response.json()["errors"] == {"invalid_player_ids": ["c@example.com"]}
    players = resolve_audience(
        app=own.app, body={**body, "include_unsubscribed": True}, mode="email", device_types={EMAIL}
    ).players
    assert set(players.values_list("pk", flat=True)) == {subscribed.pk, unsubscribed.pk}
    push = resolve_audience(
        app=own.app, body={"include_unsubscribed": True}, mode="segments", device_types={1}
    )
    assert push.players.filter(notification_types__lte=0).count() == 0


# --- EmailProvider ------------------------------------------------------------------------------


def configure_email(app: App, sim: Simulator, **fields) -> App:
    defaults = {
        "smtp_host": sim.smtp_host,
        "smtp_port": sim.smtp_port,
        "email_from_address": "news@example.com",
        "email_from_name": "Example News",
    }
    for key, value in {**defaults, **fields}.items():
        setattr(app, key, value)
    app.save()
    return app


def test_email_provider_sends_personalised_mail_with_a_working_link(own, gateways):
    app = configure_email(own.app, gateways, smtp_username="mailer", smtp_password="pw")
    ada = PlayerFactory(
        app=app, device_type=EMAIL, identifier="ada@example.com", tags={"first_name": "<Ada>"}
    )
    bob = PlayerFactory(app=app, device_type=EMAIL, identifier="bob@example.com")
    body = {
        "email_subject": 'Hello {{ first_name | default: "friend" }}',
        "email_body": BODY,
        "email_preheader": "Read me",
        "email_reply_to_address": "reply@example.com",
    }
    results = EmailProvider(app).send([item(ada, body), item(bob, body)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    first, second = gateways.deliveries(platform="email")
    assert (first["token"], second["token"]) == ("ada@example.com", "bob@example.com")
    # One connection for the batch: both messages came from the same client port.
    assert first["headers"]["x-smtp-peer"] == second["headers"]["x-smtp-peer"]
    assert first["headers"]["x-smtp-auth-user"] == "mailer"
    mail = first["payload"]
    assert mail["subject"] == "Hello <Ada>" and second["payload"]["subject"] == "Hello friend"
    assert mail["from"] == "Example News <news@example.com>" and mail["mail_from"] == "news@example.com"
    assert mail["headers"]["reply-to"] == "reply@example.com"
    assert "<p>Hi &lt;Ada&gt;</p>" in mail["html"] and "Read me" in mail["html"]
    link = mail["headers"]["list-unsubscribe"].strip("<>")
    assert link.startswith("https://herald.test/email/unsubscribe/")
    assert f'href="{link}"' in mail["html"] and link in mail["text"]
    assert mail["headers"]["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    assert read_token(link.rsplit("/", 1)[1]) == (app.pk, ada.pk)


def test_email_provider_uses_starttls_verified_against_the_gateway_ca(own, gateways, settings):
    app = configure_email(own.app, gateways, smtp_use_tls=True, smtp_username="u", smtp_password="p")
    player = PlayerFactory(app=app, device_type=EMAIL, identifier="a@example.com")
    body = {"email_subject": "S", "email_body": BODY}
    assert EmailProvider(app).send([item(player, body)])[0].outcome is Outcome.SENT
    [delivery] = gateways.deliveries(platform="email")
    assert delivery["headers"]["x-smtp-tls"] == "starttls"
    settings.HERALD_GATEWAY_CA_FILE = ""  # the simulator's CA no longer trusted: a certificate error
    [result] = EmailProvider(app).send([item(player, body)])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "SmtpCertificateNotTrusted")


def test_email_provider_classifies_bounces_and_temporary_failures(own, gateways):
    app = configure_email(own.app, gateways)
    players = [
        PlayerFactory(app=app, device_type=EMAIL, identifier=f"{name}@example.com")
        for name in ("gone", "later", "fine")
    ]
    gateways.faults(
        platform="email",
        token_errors={"gone@example.com": "Bounce", "later@example.com": "TempFail"},
    )
    body = {"email_subject": "S", "email_body": BODY}
    results = {r.player_id: r for r in EmailProvider(app).send([item(p, body) for p in players])}
    gone, later, fine = (results[p.pk] for p in players)
    assert (gone.outcome, gone.reason) == (Outcome.INVALID_RECIPIENT, "Bounced")
    assert (later.outcome, later.reason) == (Outcome.TRANSIENT, "smtp 451")
    assert fine.outcome is Outcome.SENT


def test_email_provider_refuses_private_smtp_hosts_and_reports_dead_servers(own, gateways, settings):
    app = configure_email(own.app, gateways)
    player = PlayerFactory(app=app, device_type=EMAIL, identifier="a@example.com")
    body = {"email_subject": "S", "email_body": BODY}
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    [result] = EmailProvider(app).send([item(player, body)])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "UnsafeSmtpHost")
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    app.smtp_port = 1  # nothing listens there
    [result] = EmailProvider(app).send([item(player, body)])
    assert result.outcome is Outcome.TRANSIENT and result.reason.startswith("smtp connect")
    app.email_from_address = None
    [result] = EmailProvider(app).send([item(player, body)])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "NoFromAddress")


# --- SmsProvider --------------------------------------------------------------------------------


def test_sms_query_substitutes_and_encodes():
    config = {
        "parameters": [
            {"name": "key", "value": "a b", "encode": True},
            {"name": "raw", "value": "x%20y", "encode": False},
            {"name": "to", "value": "{phoneNumber}"},
            {"name": "text", "value": "Msg: {message}"},
            {"name": "from", "value": "{from}"},
        ]
    }
    values = {"phoneNumber": "+15551234567", "message": "Hi & bye/ü", "from": "+15550000000", "mediaUrls": ""}
    assert build_query(config, values) == (
        "key=a%20b&raw=x%20y&to=%2B15551234567&text=Msg%3A%20Hi%20%26%20bye%2F%C3%BC&from=%2B15550000000"
    )
    mfp = {"parameters": [{"name": "k", "value": "v"}]}  # MobileFirst style: no placeholders
    assert build_query(mfp, values).endswith("&to=%2B15551234567&text=Hi%20%26%20bye%2F%C3%BC")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sms_provider_sends_the_substituted_text(own, gateways, method):
    app = own.app
    app.sms_gateway_json = json.dumps({**gateways.sms_gateway("/api/send"), "method": method})
    app.save()
    players = [PlayerFactory(app=app, device_type=SMS, identifier=f"+1555123456{i}") for i in range(3)]
    body = {"sms_from": "+15550000000"}
    results = SmsProvider(app).send([item(p, body, content=f"Hi & {i}") for i, p in enumerate(players)])
    assert {r.outcome for r in results} == {Outcome.SENT}
    deliveries = {d["token"]: d for d in gateways.deliveries(platform="sms")}
    assert set(deliveries) == {p.identifier for p in players}
    payload = deliveries["+15551234561"]["payload"]
    assert (payload["message"], payload["method"], payload["path"]) == ("Hi & 1", method, "/api/send")
    assert payload["params"]["apiKey"] == "sim-key"


def test_sms_provider_classifies_gateway_answers(own, gateways):
    app = own.app
    app.sms_gateway_json = json.dumps(gateways.sms_gateway())
    app.save()
    bad, busy, fine = (
        PlayerFactory(app=app, device_type=SMS, identifier=f"+1555000000{i}") for i in range(3)
    )
    gateways.faults(
        platform="sms", token_errors={bad.identifier: "InvalidNumber", busy.identifier: "Unavailable"}
    )
    results = {
        r.player_id: r for r in SmsProvider(app).send([item(p, {}, content="x") for p in (bad, busy, fine)])
    }
    assert (results[bad.pk].outcome, results[bad.pk].reason) == (Outcome.INVALID_RECIPIENT, "InvalidNumber")
    assert results[busy.pk].outcome is Outcome.TRANSIENT
    assert results[fine.pk].outcome is Outcome.SENT


def test_sms_provider_does_not_unsubscribe_everyone_when_the_gateway_refuses_everyone(own, gateways):
    app = own.app
    app.sms_gateway_json = json.dumps(gateways.sms_gateway())
    app.save()
    players = [PlayerFactory(app=app, device_type=SMS, identifier=f"+1555000001{i}") for i in range(5)]
    gateways.faults(platform="sms", error_rates={"InvalidNumber": 1.0})
    results = SmsProvider(app).send([item(p, {}, content="x") for p in players])
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.ERROR, "GatewayRejectedAll")}


def test_sms_provider_refuses_a_private_gateway_unless_allowed(own, gateways, settings):
    app = own.app
    app.sms_gateway_json = json.dumps(gateways.sms_gateway())
    app.save()
    player = PlayerFactory(app=app, device_type=SMS, identifier="+15551234567")
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    [result] = SmsProvider(app).send([item(player, {}, content="x")])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "UnsafeGateway")
    assert gateways.stats()["sms"]["received"] == 0


# --- WnsProvider --------------------------------------------------------------------------------


def configure_wns(app: App) -> App:
    app.wns_package_sid = f"ms-app://s-1-15-2-{uuid.uuid4().int % 10**9}"
    app.wns_client_secret = "wns-secret"
    app.save()
    return app


def test_wns_provider_sends_a_toast_with_the_notification_id(own, gateways):
    app = configure_wns(own.app)
    gateways.register_wns_app(app.wns_package_sid, "wns-secret")
    player = PlayerFactory(app=app, device_type=WNS, identifier=gateways.wns_channel())
    recipient, message = item(
        player, {"url": "https://example.com/x"}, content="Body & more", heading="Title"
    )
    [result] = WnsProvider(app).send([(recipient, message)])
    assert result.outcome is Outcome.SENT
    [delivery] = gateways.deliveries(platform="wns")
    assert delivery["token"] == player.identifier
    assert delivery["headers"]["x-wns-type"] == "wns/toast"
    assert delivery["headers"]["x-wns-cache-policy"] == "cache"
    assert int(delivery["headers"]["x-wns-ttl"]) == message.ttl_seconds
    payload = delivery["payload"]
    assert payload["root"] == "toast" and payload["texts"] == ["Title", "Body & more"]
    assert json.loads(payload["launch"]) == {"i": message.notification_id, "u": "https://example.com/x"}


def test_wns_provider_unsubscribes_expired_and_unknown_channels(own, gateways):
    app = configure_wns(own.app)
    live, expired = gateways.wns_channels(2)
    gateways.expire_wns_channels([expired])
    players = [
        PlayerFactory(app=app, device_type=WNS, identifier=uri)
        for uri in (live, expired, gateways.wns_url + "/w/unknown", "https://evil.example.com/w/1")
    ]
    results = {
        r.player_id: (r.outcome, r.reason)
        for r in WnsProvider(app).send([item(p, {}, content="x") for p in players])
    }
    assert [results[p.pk] for p in players] == [
        (Outcome.SENT, ""),
        (Outcome.INVALID_RECIPIENT, "ChannelExpired"),
        (Outcome.INVALID_RECIPIENT, "NotFound"),
        (Outcome.INVALID_RECIPIENT, "InvalidChannelUri"),
    ]
    assert gateways.stats()["wns"]["received"] == 3  # the foreign URI was never contacted


def test_wns_provider_refreshes_its_token_after_a_401(own, gateways):
    app = configure_wns(own.app)
    player = PlayerFactory(app=app, device_type=WNS, identifier=gateways.wns_channel())
    forget_token(app.wns_package_sid, app.wns_client_secret)
    assert WnsProvider(app).send([item(player, {}, content="x")])[0].outcome is Outcome.SENT
    gateways.reset(keep_tokens=False)  # the simulator forgets the token (and the channel)
    player.identifier = gateways.wns_channel()
    [result] = WnsProvider(app).send([item(player, {}, content="x")])
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "Unauthorized")
    assert WnsProvider(app).send([item(player, {}, content="x")])[0].outcome is Outcome.SENT


def test_wns_provider_reports_bad_credentials_as_errors(own, gateways):
    app = configure_wns(own.app)
    gateways.register_wns_app(app.wns_package_sid, "the-real-secret")
    player = PlayerFactory(app=app, device_type=WNS, identifier=gateways.wns_channel())
    [result] = WnsProvider(app).send([item(player, {}, content="x")])
    assert (result.outcome, result.reason) == (Outcome.ERROR, "WnsAuth: invalid_client")


def test_wns_channels_must_be_microsofts_or_the_configured_gateways(gateways, settings):
    assert allowed_channel("https://db5.notify.windows.com/?token=abc")
    assert allowed_channel(gateways.wns_url + "/w/x")
    assert not allowed_channel("http://db5.notify.windows.com/?token=abc")
    assert not allowed_channel("https://notify.windows.com.evil.example/?token=abc")
    assert not allowed_channel("https://169.254.169.254/latest/meta-data")
    assert not allowed_channel("https://user@db5.notify.windows.com/")
