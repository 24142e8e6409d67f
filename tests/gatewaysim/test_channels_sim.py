"""The email (SMTP), SMS gateway and WNS simulators over real sockets, with their faults."""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

import pytest

from tests.gatewaysim.simulator import Simulator

ZERO = {"received": 0, "accepted": 0, "rejected": 0, "duplicates": 0}


def test_the_channel_gateways_are_printed_before_the_ready_line(sim: Simulator):
    labels = [line.partition(" ")[0] for line in sim.output]
    assert labels.index("email") < labels.index("gatewaysim")
    assert sim.smtp_url.startswith("smtp://127.0.0.1:") and sim.smtp_port > 0
    assert urlsplit(sim.sms_url).scheme == "http"
    assert urlsplit(sim.wns_url).scheme == "https"
    assert sim.wns_token_url.endswith("/accesstoken.srf")


# --- SMTP -----------------------------------------------------------------------------------------


def mail(to: str, subject: str = "Hello", html: str = "<p>Hi <b>there</b></p>", **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "News <news@example.com>"
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hi there")
    message.add_alternative(html, subtype="html")
    return message


def smtp(sim: Simulator) -> smtplib.SMTP:
    return smtplib.SMTP(sim.smtp_host, sim.smtp_port, timeout=10)


def test_smtp_records_one_delivery_per_recipient_with_the_parsed_message(sim: Simulator):
    with smtp(sim) as client:
        refused = client.send_message(
            mail("a@example.com, b@example.com", List_Unsubscribe="<https://x/u>"),
            from_addr="bounces@example.com",
            to_addrs=["a@example.com", "b@example.com"],
        )
    assert refused == {}
    first, second = sim.deliveries(platform="email")
    assert [first["token"], second["token"]] == ["a@example.com", "b@example.com"]
    payload = first["payload"]
    assert payload["from"] == "News <news@example.com>"
    assert payload["to"] == "a@example.com"
    assert payload["mail_from"] == "bounces@example.com"
    assert payload["subject"] == "Hello"
    assert payload["html"].strip() == "<p>Hi <b>there</b></p>"
    assert payload["text"].strip() == "Hi there"
    assert payload["headers"]["list-unsubscribe"] == "<https://x/u>"
    assert first["status"] == 250 and not first["duplicate"]
    assert sim.stats()["email"] == {**ZERO, "received": 2, "accepted": 2}


def test_smtp_bounces_a_token_error_with_550_at_rcpt(sim: Simulator):
    sim.faults(platform="email", token_errors={"gone@example.com": "Bounce"})
    with smtp(sim) as client:
        refused = client.send_message(
            mail("x"), from_addr="n@example.com", to_addrs=["ok@example.com", "gone@example.com"]
        )
        assert refused["gone@example.com"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as error:
            client.send_message(mail("x"), from_addr="n@example.com", to_addrs=["gone@example.com"])
        assert error.value.recipients["gone@example.com"][0] == 550
    statuses = [(d["token"], d["status"]) for d in sim.deliveries(platform="email")]
    assert statuses == [("gone@example.com", 550), ("ok@example.com", 250), ("gone@example.com", 550)]
    assert sim.stats()["email"] == {**ZERO, "received": 3, "accepted": 1, "rejected": 2}


def test_smtp_tempfail_answers_451_and_the_retry_is_accepted(sim: Simulator):
    sim.faults(platform="email", fail_first={"TempFail": 1})
    with smtp(sim) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as error:
            client.send_message(mail("x"), from_addr="n@example.com", to_addrs=["a@example.com"])
        assert error.value.recipients["a@example.com"][0] == 451
        assert client.send_message(mail("x"), from_addr="n@example.com", to_addrs=["a@example.com"]) == {}
    assert [d["status"] for d in sim.deliveries(platform="email")] == [451, 250]


def test_smtp_error_rates_and_latency(sim: Simulator):
    sim.faults(platform="email", error_rates={"TempFail": 1.0}, latency_ms=150)
    with smtp(sim) as client:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(mail("x"), from_addr="n@example.com", to_addrs=["a@example.com"])
        assert time.monotonic() - started >= 0.15
    assert sim.stats()["email"]["rejected"] == 1


def test_smtp_counts_a_second_copy_of_the_same_notification_as_a_duplicate(sim: Simulator):
    with smtp(sim) as client:
        for subject in ("One", "Two"):  # same id header, different text: still the same notification
            client.send_message(
                mail("a@example.com", subject=subject, X_Herald_Notification_Id="n-1"),
                from_addr="n@example.com",
                to_addrs=["a@example.com"],
            )
        client.send_message(mail("a@example.com", subject="Other"), from_addr="n@example.com")
        client.send_message(mail("a@example.com", subject="Other"), from_addr="n@example.com")
    assert [d["duplicate"] for d in sim.deliveries(platform="email")] == [False, True, False, True]
    assert sim.stats()["email"]["duplicates"] == 2


def test_smtp_starttls_and_auth_are_offered(sim: Simulator):
    with smtp(sim) as client:
        client.starttls(context=sim.ssl_context())
        client.login("mailer", "secret")
        client.send_message(mail("a@example.com"), from_addr="n@example.com")
    [delivery] = sim.deliveries(platform="email")
    assert delivery["headers"]["x-smtp-tls"] == "starttls"
    assert delivery["headers"]["x-smtp-auth-user"] == "mailer"


def test_smtp_fault_config_is_checked_against_its_catalogue(sim: Simulator):
    response = sim.control("POST", "/_sim/faults", {"platform": "email", "token_errors": {"a@b": "Nope"}})
    assert response.status == 400 and "Bounce" in response.body["error"]


# --- SMS gateway ----------------------------------------------------------------------------------


def sms_call(sim: Simulator, path: str, *, query: dict | None = None, data: bytes | None = None, **headers):
    url = sim.sms_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")  # noqa: S310
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read()), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), {k.lower(): v for k, v in error.headers.items()}


def test_sms_get_records_the_number_the_text_and_every_parameter(sim: Simulator):
    status, body, _ = sms_call(
        sim, "/cgi-bin/send", query={"key": "k1", "to": "+15551234567", "text": "Héllo & bye"}
    )
    assert status == 200 and body["status"] == "accepted"
    [delivery] = sim.deliveries(platform="sms")
    assert delivery["token"] == "+15551234567"
    assert delivery["payload"] == {
        "phoneNumber": "+15551234567",
        "message": "Héllo & bye",
        "params": {"key": "k1", "to": "+15551234567", "text": "Héllo & bye"},
        "method": "GET",
        "path": "/cgi-bin/send",
    }


def test_sms_post_takes_a_form_or_a_json_body(sim: Simulator):
    form = urllib.parse.urlencode({"phoneNumber": "+4915112345678", "message": "form"}).encode()
    assert sms_call(sim, "/a", data=form, content_type="application/x-www-form-urlencoded")[0] == 200
    payload = json.dumps({"msisdn": "447700900123", "body": "json", "n": 2}).encode()
    assert sms_call(sim, "/b", data=payload, content_type="application/json")[0] == 200
    first, second = sim.deliveries(platform="sms")
    assert (first["payload"]["phoneNumber"], first["payload"]["message"]) == ("+4915112345678", "form")
    assert (second["payload"]["phoneNumber"], second["payload"]["message"]) == ("447700900123", "json")
    assert second["payload"]["params"]["n"] == "2" and second["payload"]["method"] == "POST"


def test_sms_refuses_bad_numbers_and_missing_text(sim: Simulator):
    assert sms_call(sim, "/s", query={"to": "12ab", "text": "x"})[:2] == (
        400,
        {"error": "InvalidNumber", "message": "The destination number is not a valid mobile number."},
    )
    assert sms_call(sim, "/s", query={"text": "x"})[0] == 400
    assert sms_call(sim, "/s", query={"to": "+15551234567"})[1]["error"] == "MissingMessage"
    assert sim.stats()["sms"] == {**ZERO, "received": 3, "rejected": 3}


def test_sms_faults_fail_numbers_and_throttle(sim: Simulator):
    sim.faults(
        platform="sms",
        token_errors={"+15550000001": "InvalidNumber"},
        fail_first={"TooManyRequests": 1},
        retry_after=3,
    )
    status, body, headers = sms_call(sim, "/s", query={"to": "+15550000002", "text": "x"})
    assert (status, body["error"], headers.get("retry-after")) == (429, "TooManyRequests", "3")
    assert sms_call(sim, "/s", query={"to": "+15550000002", "text": "x"})[0] == 200
    assert sms_call(sim, "/s", query={"to": "+15550000001", "text": "x"})[0] == 400
    sim.faults(platform="sms", error_rates={"Unavailable": 1.0})
    assert sms_call(sim, "/s", query={"to": "+15550000002", "text": "y"})[0] == 503
    assert sim.stats()["sms"] == {**ZERO, "received": 4, "accepted": 1, "rejected": 3}


def test_sms_same_text_to_the_same_number_is_a_duplicate(sim: Simulator):
    for text in ("a", "a", "b"):
        sms_call(sim, "/s", query={"to": "+15551234567", "text": text})
    assert [d["duplicate"] for d in sim.deliveries(platform="sms")] == [False, True, False]


# --- WNS ------------------------------------------------------------------------------------------


def https(sim: Simulator, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10, context=sim.ssl_context()) as answer:  # noqa: S310
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def wns_token(sim: Simulator, **form: str) -> tuple[int, dict]:
    fields = {
        "grant_type": "client_credentials",
        "client_id": "ms-app://s-1-15-2-1",
        "client_secret": "secret",
        "scope": "notify.windows.com",
        **form,
    }
    status, _, body = https(
        sim,
        sim.wns_token_url,
        urllib.parse.urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, json.loads(body)


def toast(heading: str = "Hi", content: str = "There", notification_id: str = "n-1") -> bytes:
    launch = quoteattr(json.dumps({"i": notification_id}))
    return (
        f'<toast launch={launch}><visual><binding template="ToastGeneric">'
        f"<text>{heading}</text><text>{content}</text></binding></visual></toast>"
    ).encode()


def notify(sim: Simulator, channel: str, body: bytes, token: str | None, **headers: str):
    sent = {"Content-Type": "text/xml", "X-WNS-Type": "wns/toast", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return https(sim, channel, body, sent)


@pytest.fixture
def wns_access_token(sim: Simulator) -> str:
    status, body = wns_token(sim)
    assert status == 200, body
    return body["access_token"]


def test_wns_token_endpoint_grants_client_credentials(sim: Simulator):
    status, body = wns_token(sim)
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 86400 and body["access_token"]
    assert wns_token(sim, grant_type="password") == (
        400,
        {"error": "unsupported_grant_type", "error_description": "unsupported_grant_type (gatewaysim)"},
    )
    assert wns_token(sim, scope="s.notify.live.net")[1]["error"] == "invalid_scope"
    assert wns_token(sim, client_secret="")[1]["error"] == "invalid_request"
    sim.register_wns_app("ms-app://s-1-15-2-9", "right")
    sid = "ms-app://s-1-15-2-9"
    assert wns_token(sim, client_id=sid, client_secret="wrong")[1]["error"] == "invalid_client"
    assert wns_token(sim, client_id=sid, client_secret="right")[0] == 200


def test_wns_toast_to_an_issued_channel_is_received(sim: Simulator, wns_access_token: str):
    channel = sim.wns_channel()
    assert channel.startswith(sim.wns_url + "/w/")
    status, headers, _ = notify(
        sim,
        channel,
        toast("Héllo", "Wörld"),
        wns_access_token,
        **{"X-WNS-Cache-Policy": "cache", "X-WNS-TTL": "60", "X-WNS-RequestForStatus": "true"},
    )
    assert status == 200
    assert headers["x-wns-status"] == "received" and headers["x-wns-msg-id"]
    assert headers["x-wns-deviceconnectionstatus"] == "connected"
    [delivery] = sim.deliveries(platform="wns")
    assert delivery["token"] == channel
    assert delivery["headers"]["authorization"] == "Bearer [redacted]"
    assert delivery["headers"]["x-wns-type"] == "wns/toast"
    payload = delivery["payload"]
    assert payload["root"] == "toast" and payload["texts"] == ["Héllo", "Wörld"]
    assert json.loads(payload["launch"]) == {"i": "n-1"}


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        ("wns/tile", "text/xml", b'<tile><visual><binding template="TileMedium"/></visual></tile>'),
        ("wns/badge", "text/xml", b'<badge value="7"/>'),
        ("wns/raw", "application/octet-stream", b"opaque bytes"),
    ],
)
def test_wns_tile_badge_and_raw_are_accepted(sim: Simulator, wns_access_token, kind, content_type, body):
    status, _, _ = notify(
        sim, sim.wns_channel(), body, wns_access_token, **{"X-WNS-Type": kind, "Content-Type": content_type}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"X-WNS-Type": "wns/popup"}, toast(), 400),
        ({"Content-Type": "application/json"}, toast(), 400),
        ({"X-WNS-Cache-Policy": "sometimes"}, toast(), 400),
        ({"X-WNS-TTL": "-1"}, toast(), 400),
        ({}, b"<toast><visual>", 400),
        ({}, b'<tile><visual><binding template="T"/></visual></tile>', 400),
        ({}, b"<toast><visual><binding/></visual></toast>", 400),
        ({"X-WNS-Type": "wns/badge"}, b"<badge/>", 400),
        ({}, b"<toast>" + b"x" * 5000 + b"</toast>", 413),
    ],
)
def test_wns_refuses_bad_headers_and_payloads(sim: Simulator, wns_access_token, headers, body, expected):
    status, answer_headers, _ = notify(sim, sim.wns_channel(), body, wns_access_token, **headers)
    assert status == expected
    if expected == 400:
        assert answer_headers["x-wns-error-description"]
    assert sim.stats()["wns"]["rejected"] == 1


def test_wns_needs_a_valid_token_and_a_live_channel(sim: Simulator, wns_access_token):
    channel = sim.wns_channel()
    assert notify(sim, channel, toast(), None)[0] == 401
    assert notify(sim, channel, toast(), "made-up")[0] == 401
    assert notify(sim, sim.wns_url + "/w/never-issued", toast(), wns_access_token)[0] == 404
    [expired] = sim.wns_channels(1, expired=True)
    assert notify(sim, expired, toast(), wns_access_token)[0] == 410
    assert sim.expire_wns_channels([channel]) == 1
    assert notify(sim, channel, toast(), wns_access_token)[0] == 410


def test_wns_faults(sim: Simulator, wns_access_token):
    gone, other = sim.wns_channels(2)
    sim.faults(
        platform="wns",
        token_errors={gone: "ChannelExpired"},
        fail_first={"TooManyRequests": 1},
        retry_after=2,
    )
    status, headers, _ = notify(sim, other, toast(), wns_access_token)
    assert (status, headers["retry-after"]) == (429, "2")
    assert notify(sim, other, toast(), wns_access_token)[0] == 200
    assert notify(sim, gone, toast(), wns_access_token)[0] == 410
    sim.faults(platform="wns", error_rates={"Throttled": 1.0})
    assert notify(sim, other, toast(notification_id="n-2"), wns_access_token)[0] == 406
    assert sim.stats()["wns"] == {**ZERO, "received": 4, "accepted": 1, "rejected": 3}


def test_wns_duplicates_follow_the_launch_notification_id(sim: Simulator, wns_access_token):
    channel = sim.wns_channel()
    for heading, notification_id in (("a", "n-1"), ("b", "n-1"), ("a", "n-2")):
        payload = toast(heading, notification_id=notification_id)
        assert notify(sim, channel, payload, wns_access_token)[0] == 200
    assert [d["duplicate"] for d in sim.deliveries(platform="wns")] == [False, True, False]


def test_wns_reset_forgets_tokens_and_channels_unless_kept(sim: Simulator, wns_access_token):
    channel = sim.wns_channel()
    sim.reset(keep_tokens=True)
    assert notify(sim, channel, toast(), wns_access_token)[0] == 200
    sim.reset()
    assert notify(sim, channel, toast(), wns_access_token)[0] == 401
    _, body = wns_token(sim)
    assert notify(sim, channel, toast(), body["access_token"])[0] == 404


def test_wns_channel_control_validates_its_input(sim: Simulator):
    assert sim.control("POST", "/_sim/wns/channels", {"count": 0}).status == 400
    assert sim.control("POST", "/_sim/wns/channels", {"count": "3"}).status == 400
    assert sim.control("POST", "/_sim/wns/channels/expire", {"channels": "x"}).status == 400
    assert sim.control("POST", "/_sim/wns/apps", {"package_sid": "x"}).status == 400
