"""The connection-level faults every gateway serves (``_timeout``, ``_reset``, ``_malformed``, and
``goaway_after`` on any HTTP/2 gateway), over real sockets."""

from __future__ import annotations

import smtplib
import time

import pycurl
import pytest

from tests.gatewaysim.http2 import Http2Client
from tests.gatewaysim.simulator import Simulator
from tests.gatewaysim.test_fcm_send import onesignal_message, send


def test_a_reset_is_an_http2_stream_reset_and_nothing_is_recorded(sim: Simulator, client, access_token):
    sim.faults(fail_first={"_reset": 1})
    with pytest.raises(pycurl.error) as raised:
        send(sim, client, access_token, onesignal_message("device-1"))
    assert "INTERNAL_ERROR" in str(raised.value) or "reset" in str(raised.value).lower()
    assert send(sim, client, access_token, onesignal_message("device-1")).status == 200
    assert sim.stats()["fcm"] == {"received": 1, "accepted": 1, "rejected": 0, "duplicates": 0}


def test_a_reset_over_http1_drops_the_connection(sim: Simulator, access_token):
    sim.faults(fail_first={"_reset": 1})
    with Http2Client(sim.ca_path, http1=True) as http1, pytest.raises(pycurl.error):
        send(sim, http1, access_token, onesignal_message("device-1"))


def test_malformed_is_a_502_html_page(sim: Simulator, client, access_token):
    sim.faults(fail_first={"_malformed": 1})
    response = send(sim, client, access_token, onesignal_message("device-1"))
    assert response.status == 502 and response.body.startswith(b"<html>")
    assert response.headers["content-type"] == "text/html"


def test_a_timeout_is_never_answered(sim: Simulator, client, access_token):
    sim.faults(fail_first={"_timeout": 1})
    client.curl.setopt(pycurl.TIMEOUT_MS, 700)
    started = time.monotonic()
    with pytest.raises(pycurl.error) as raised:
        send(sim, client, access_token, onesignal_message("device-1"))
    assert raised.value.args[0] == pycurl.E_OPERATION_TIMEDOUT and time.monotonic() - started >= 0.6


def test_connection_faults_are_accepted_on_every_platform_and_unknown_names_are_not(sim: Simulator):
    for platform in ("apns", "fcm", "webpush", "email", "sms", "wns", "hms", "adm"):
        plan = sim.faults(platform, error_rates={"_timeout": 0.1, "_reset": 0.1, "_malformed": 0.1})
        assert plan["faults"]["error_rates"] == {"_timeout": 0.1, "_reset": 0.1, "_malformed": 0.1}
    refused = sim.control("POST", "/_sim/faults", {"platform": "sms", "fail_first": {"_explode": 1}})
    assert refused.status == 400 and "_malformed" in refused.body["error"]


def test_goaway_is_served_by_every_http2_gateway_not_only_apns(sim: Simulator):
    [subscription] = sim.webpush_subscriptions(1)

    def connections_per_request(goaway_after: int | None) -> list[int]:
        sim.faults("webpush", goaway_after=goaway_after) if goaway_after else sim.faults("webpush")
        with Http2Client(sim.ca_path) as client:
            counts = []
            for _ in range(3):
                client.post(subscription["endpoint"], b"", headers={"ttl": "60"})  # refused (no VAPID)
                counts.append(client.curl.getinfo(pycurl.NUM_CONNECTS))
            return counts

    assert connections_per_request(None) == [1, 0, 0]  # one connection, reused
    assert connections_per_request(1) == [1, 1, 1]  # a GOAWAY after each stream: a new one each time


def test_smtp_faults(sim: Simulator):
    host, port = sim.smtp_host, sim.smtp_port
    sim.faults("email", fail_first={"_malformed": 1, "_reset": 1})
    with smtplib.SMTP(host, port, timeout=5) as smtp:
        smtp.ehlo()
        smtp.mail("news@herald.test")
        code, _ = smtp.rcpt("a@example.com")
        assert code == -1  # not an SMTP reply
    with smtplib.SMTP(host, port, timeout=5) as smtp, pytest.raises(smtplib.SMTPServerDisconnected):
        smtp.ehlo()
        smtp.mail("news@herald.test")
        smtp.rcpt("b@example.com")
