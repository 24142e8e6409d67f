"""``POST /v1/projects/{id}/messages:send`` over HTTP/2 with pycurl, as Herald sends it."""

from __future__ import annotations

import json
import re
import time

import pycurl
import pytest

from tests.gatewaysim.http2 import Http2Client, Response, post_many
from tests.gatewaysim.simulator import Simulator


def send(sim: Simulator, client: Http2Client, token: str | None, message: dict | bytes, **extra) -> Response:
    body = message if isinstance(message, bytes) else {"message": message, **extra}
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.post(f"{sim.fcm_url}/v1/projects/demo/messages:send", body, headers)


def onesignal_message(token: str, notification_id: str = "n-1", **extra) -> dict:
    return {
        "token": token,
        "data": {"custom": json.dumps({"i": notification_id}), "alert": "Hello", "title": "Herald"},
        "android": {"priority": "HIGH", "ttl": "259200s", "collapse_key": "c"},
        **extra,
    }


def assert_invalid_argument(response: Response, mentions: str) -> None:
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert {
        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
        "errorCode": "INVALID_ARGUMENT",
    } in error["details"]
    assert mentions in error["message"]


def test_it_accepts_a_valid_message_over_http2(sim: Simulator, client, access_token):
    response = send(sim, client, access_token, onesignal_message("device-1"))

    assert response.http_version == "2"
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"projects/demo/messages/\S+", response.json()["name"])
    assert set(response.json()) == {"name"}


def test_each_accepted_message_gets_its_own_name(sim: Simulator, client, access_token):
    names = {
        send(sim, client, access_token, onesignal_message(f"device-{n}")).json()["name"] for n in range(3)
    }

    assert len(names) == 3


def test_it_also_speaks_http1(sim: Simulator, access_token):
    with Http2Client(sim.ca_path, http1=True) as http1:
        response = send(sim, http1, access_token, onesignal_message("device-1"))

    assert response.http_version == "1.1"
    assert response.status == 200


@pytest.mark.parametrize("token", [None, "ya29.not-issued-here"], ids=["no-token", "unknown-token"])
def test_it_answers_401_unauthenticated_without_a_token_from_token_endpoint(sim: Simulator, client, token):
    response = send(sim, client, token, onesignal_message("device-1"))

    assert response.status == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert response.json()["error"]["code"] == 401
    assert sim.stats()["fcm"] == {"received": 1, "accepted": 0, "rejected": 1, "duplicates": 0}


def test_a_reset_revokes_issued_tokens(sim: Simulator, client, access_token):
    sim.reset()

    assert send(sim, client, access_token, onesignal_message("device-1")).status == 401


def test_a_reset_can_keep_issued_tokens(sim: Simulator, client, access_token):
    sim.reset(keep_tokens=True)

    assert send(sim, client, access_token, onesignal_message("device-1")).status == 200


INVALID_MESSAGES = {
    "no-target": ({"data": {"a": "b"}}, "Recipient of the message is not set"),
    "two-targets": ({"token": "t", "topic": "news"}, "oneof field 'target' is already set"),
    "empty-token": ({"token": ""}, "must not be empty"),
    "data-number": ({"token": "t", "data": {"count": 3}}, "message.data[0].value"),
    "data-not-object": ({"token": "t", "data": ["a"]}, "message.data"),
    "data-reserved-key": ({"token": "t", "data": {"from": "x"}}, "Invalid data payload key"),
    "android-priority": ({"token": "t", "android": {"priority": "URGENT"}}, "message.android.priority"),
    "android-ttl-number": ({"token": "t", "android": {"ttl": 3600}}, "message.android.ttl"),
    "android-ttl-no-unit": ({"token": "t", "android": {"ttl": "3600"}}, "message.android.ttl"),
    "android-collapse-key": ({"token": "t", "android": {"collapse_key": 1}}, "message.android.collapse_key"),
    "android-data-number": ({"token": "t", "android": {"data": {"a": 1}}}, "message.android.data[0].value"),
    "android-color": ({"token": "t", "android": {"notification": {"color": "red"}}}, "#RRGGBB"),
    "notification-title": ({"token": "t", "notification": {"title": 1}}, "message.notification.title"),
    "notification-body": ({"token": "t", "notification": {"body": ["x"]}}, "message.notification.body"),
    "notification-image": ({"token": "t", "notification": {"image": {}}}, "message.notification.image"),
    "notification-unknown": ({"token": "t", "notification": {"subtitle": "x"}}, 'Unknown name "subtitle"'),
    "unknown-field": ({"token": "t", "priority": "high"}, 'Unknown name "priority"'),
    "too-big": ({"token": "t", "data": {"blob": "x" * 4100}}, "too big"),
}


@pytest.mark.parametrize("message,mentions", INVALID_MESSAGES.values(), ids=INVALID_MESSAGES.keys())
def test_it_rejects_what_fcm_rejects_with_invalid_argument(
    sim: Simulator, client, access_token, message, mentions
):
    response = send(sim, client, access_token, message)

    assert_invalid_argument(response, mentions)
    [delivery] = sim.deliveries()
    assert delivery["status"] == 400
    assert delivery["payload"] == message


def test_it_rejects_a_body_that_is_not_json_or_has_unknown_fields(sim: Simulator, client, access_token):
    assert_invalid_argument(send(sim, client, access_token, b"{not json"), "Invalid JSON payload")
    assert_invalid_argument(
        send(sim, client, access_token, {"token": "t"}, dry_run=True), 'Unknown name "dry_run"'
    )
    assert_invalid_argument(
        send(sim, client, access_token, {"token": "t"}, validate_only="yes"), "validate_only"
    )
    assert_invalid_argument(send(sim, client, access_token, b'{"message": "t"}'), "message")


def test_the_size_limit_counts_data_and_notification(sim: Simulator, client, access_token):
    # {"blob":"…"} is 11 bytes of JSON around the value.
    fits = {"token": "t", "data": {"blob": "x" * (4096 - 11)}}
    too_big = {"token": "t", "data": {"blob": "x" * 2000}, "notification": {"body": "y" * 2100}}

    assert send(sim, client, access_token, fits).status == 200
    assert_invalid_argument(send(sim, client, access_token, too_big), "4096")


def test_it_takes_camel_case_names_and_lower_case_enums_as_google_does(sim: Simulator, client, access_token):
    message = {"token": "t", "android": {"collapseKey": "c", "priority": "high", "ttl": "3.5s"}}

    assert send(sim, client, access_token, message).status == 200


def test_it_accepts_topic_and_condition_targets(sim: Simulator, client, access_token):
    assert send(sim, client, access_token, {"topic": "news", "data": {"a": "b"}}).status == 200
    assert send(sim, client, access_token, {"condition": "'a' in topics"}).status == 200


def test_validate_only_answers_a_fake_name_and_delivers_nothing(sim: Simulator, client, access_token):
    response = send(sim, client, access_token, onesignal_message("device-1"), validate_only=True)

    assert response.status == 200
    assert response.json() == {"name": "projects/demo/messages/fake_message_id"}
    # A real send after a validation is not a duplicate.
    send(sim, client, access_token, onesignal_message("device-1"))
    assert sim.stats()["fcm"]["duplicates"] == 0


def test_unknown_paths_are_404(sim: Simulator, client, access_token):
    response = client.post(f"{sim.fcm_url}/v1/projects/demo/messages:batchSend", {}, {})

    assert response.status == 404


def test_many_streams_in_flight_share_one_connection(sim: Simulator, access_token):
    bodies = [
        json.dumps({"message": onesignal_message(f"device-{n}", f"n-{n}")}).encode() for n in range(600)
    ]

    responses, connections = post_many(
        f"{sim.fcm_url}/v1/projects/demo/messages:send",
        bodies,
        {"authorization": f"Bearer {access_token}"},
        sim.ca_path,
        in_flight=300,
    )

    assert {response.status for response in responses} == {200}
    assert {response.http_version for response in responses} == {"2"}
    assert len({response.json()["name"] for response in responses}) == 600
    assert connections == 1
    assert sim.stats()["fcm"] == {"received": 600, "accepted": 600, "rejected": 0, "duplicates": 0}


def test_http1_bodies_over_1kb_do_not_wait_for_100_continue(sim: Simulator, access_token):
    message = {"token": "t", "data": {"blob": "x" * 2000}}
    with Http2Client(sim.ca_path, http1=True) as http1:
        started = time.monotonic()
        response = send(sim, http1, access_token, message)

    assert response.status == 200
    # curl waits up to a second for "100 Continue" before sending a body over 1 KB.
    assert time.monotonic() - started < 0.8


def test_a_client_giving_up_on_a_slow_answer_does_not_disturb_the_server(sim: Simulator, access_token):
    sim.faults(latency_ms=500)
    with Http2Client(sim.ca_path) as impatient:
        impatient.curl.setopt(pycurl.TIMEOUT_MS, 100)
        with pytest.raises(pycurl.error):
            send(sim, impatient, access_token, onesignal_message("device-1"))
    time.sleep(0.6)  # let the abandoned answer be produced
    sim.faults()

    with Http2Client(sim.ca_path) as client:
        assert send(sim, client, access_token, onesignal_message("device-2")).status == 200
    assert sim.stats()["fcm"]["received"] == 2
