"""The control API: stats, deliveries, duplicate counting, fault injection and reset."""

from __future__ import annotations

import json
import time

import pytest

from tests.gatewaysim.simulator import Simulator
from tests.gatewaysim.test_fcm_send import onesignal_message, send

PLATFORMS = {"apns", "fcm", "webpush", "email", "sms", "wns", "hms", "adm"}
ZERO = {"received": 0, "accepted": 0, "rejected": 0, "duplicates": 0}


def fcm_error(response) -> tuple[int, str, str]:
    error = response.json()["error"]
    [detail] = [d for d in error["details"] if d["@type"].endswith("FcmError")]
    return error["code"], error["status"], detail["errorCode"]


def test_stats_list_every_platform_with_zeros(sim: Simulator):
    stats = sim.stats()

    assert set(stats) == PLATFORMS
    assert all(counts == ZERO for counts in stats.values())


def test_deliveries_record_what_was_received_and_answered(sim: Simulator, client, access_token):
    before = time.time()
    message = onesignal_message("device-1")
    send(sim, client, access_token, message)
    send(sim, client, None, onesignal_message("device-2"))

    first, second = sim.deliveries()

    assert first["platform"] == "fcm"
    assert first["token"] == "device-1"
    assert first["status"] == 200
    assert first["payload"] == message
    assert before <= first["received_at"] <= time.time()
    assert first["headers"]["authorization"] == "Bearer [redacted]"
    assert first["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in first["headers"])
    assert access_token not in json.dumps(first)
    assert (second["token"], second["status"]) == ("device-2", 401)


def test_deliveries_filter_by_token_and_platform(sim: Simulator, client, access_token):
    for token in ("a", "b", "a"):
        send(sim, client, access_token, onesignal_message(token, f"n-{time.monotonic_ns()}"))

    assert [d["token"] for d in sim.deliveries(token="a")] == ["a", "a"]
    assert len(sim.deliveries(platform="fcm")) == 3
    assert sim.deliveries(platform="apns") == []
    assert len(sim.deliveries(limit=1)) == 1
    assert sim.control("GET", "/_sim/deliveries?platform=pigeon").status == 400


def test_a_notification_accepted_twice_for_one_device_is_a_duplicate(sim: Simulator, client, access_token):
    send(sim, client, access_token, onesignal_message("device-1", "n-1"))
    # Same OneSignal id, different content: still the same notification.
    send(sim, client, access_token, onesignal_message("device-1", "n-1", notification={"title": "retry"}))
    send(sim, client, access_token, onesignal_message("device-2", "n-1"))
    send(sim, client, access_token, onesignal_message("device-1", "n-2"))

    assert sim.stats()["fcm"] == {"received": 4, "accepted": 4, "rejected": 0, "duplicates": 1}
    assert [d["duplicate"] for d in sim.deliveries()] == [False, True, False, False]


def test_without_a_onesignal_id_identical_messages_are_duplicates(sim: Simulator, client, access_token):
    message = {"token": "device-1", "notification": {"title": "Hi"}}
    send(sim, client, access_token, message)
    send(sim, client, access_token, message)
    send(sim, client, access_token, {**message, "notification": {"title": "Hello"}})

    assert sim.stats()["fcm"]["duplicates"] == 1


def test_a_retry_after_a_rejection_is_not_a_duplicate(sim: Simulator, client, access_token):
    sim.faults(fail_first={"UNAVAILABLE": 1})

    assert send(sim, client, access_token, onesignal_message("device-1")).status == 503
    assert send(sim, client, access_token, onesignal_message("device-1")).status == 200
    assert sim.stats()["fcm"] == {"received": 2, "accepted": 1, "rejected": 1, "duplicates": 0}


def test_fail_first_fails_exactly_that_many_requests(sim: Simulator, client, access_token):
    sim.faults(fail_first={"UNAVAILABLE": 2, "INTERNAL": 1}, retry_after=2)

    statuses = [send(sim, client, access_token, onesignal_message("d", f"n-{n}")) for n in range(5)]

    assert [r.status for r in statuses] == [503, 503, 500, 200, 200]
    assert fcm_error(statuses[0]) == (503, "UNAVAILABLE", "UNAVAILABLE")
    assert statuses[0].headers["retry-after"] == "2"
    assert fcm_error(statuses[2]) == (500, "INTERNAL", "INTERNAL")
    assert "retry-after" not in statuses[2].headers
    assert sim.stats()["fcm"] == {"received": 5, "accepted": 2, "rejected": 3, "duplicates": 0}


def test_token_errors_fail_one_device_permanently_with_googles_envelope(sim: Simulator, client, access_token):
    sim.faults(token_errors={"gone": "UNREGISTERED", "foreign": "SENDER_ID_MISMATCH"})

    for _ in range(2):
        response = send(sim, client, access_token, onesignal_message("gone"))
        assert response.status == 404
        assert response.json() == {
            "error": {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": "UNREGISTERED",
                    }
                ],
            }
        }
    assert fcm_error(send(sim, client, access_token, onesignal_message("foreign"))) == (
        403,
        "PERMISSION_DENIED",
        "SENDER_ID_MISMATCH",
    )
    assert send(sim, client, access_token, onesignal_message("fine")).status == 200


@pytest.mark.parametrize(
    ("error", "status", "google_status"),
    [
        ("UNREGISTERED", 404, "NOT_FOUND"),
        ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT"),
        ("SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED"),
        ("QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED"),
        ("UNAVAILABLE", 503, "UNAVAILABLE"),
        ("INTERNAL", 500, "INTERNAL"),
        ("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED"),
    ],
)
def test_every_fcm_error_code_can_be_injected(
    sim: Simulator, client, access_token, error, status, google_status
):
    sim.faults(error_rates={error: 1.0}, retry_after=7)

    response = send(sim, client, access_token, onesignal_message("device-1"))

    assert fcm_error(response) == (status, google_status, error)
    assert ("retry-after" in response.headers) == (status in (429, 503))


def test_error_rates_are_reproducible_with_a_seed(sim: Simulator, client, access_token):
    def run() -> list[int]:
        sim.faults(error_rates={"QUOTA_EXCEEDED": 0.3, "UNAVAILABLE": 0.2}, seed=42)
        return [send(sim, client, access_token, onesignal_message("d", f"n-{n}")).status for n in range(40)]

    first, second = run(), run()

    assert first == second
    assert {200, 429, 503} == set(first)


def test_latency_delays_answers(sim: Simulator, client, access_token):
    sim.faults(latency_ms=300)
    started = time.monotonic()

    send(sim, client, access_token, onesignal_message("device-1"))

    assert time.monotonic() - started >= 0.3


def test_a_new_plan_replaces_the_old_and_a_bare_platform_clears_it(sim: Simulator, client, access_token):
    sim.faults(token_errors={"d": "UNREGISTERED"})
    sim.faults(fail_first={"INTERNAL": 1})

    assert send(sim, client, access_token, onesignal_message("d", "1")).status == 500
    assert send(sim, client, access_token, onesignal_message("d", "2")).status == 200

    sim.faults(error_rates={"INTERNAL": 1.0})
    assert sim.faults() == {"platform": "fcm", "faults": None}
    assert send(sim, client, access_token, onesignal_message("d", "3")).status == 200


@pytest.mark.parametrize(
    "config",
    [
        {"platform": "pigeon"},
        {"platform": "fcm", "error_rates": {"BadDeviceToken": 0.1}},
        {"platform": "fcm", "error_rates": {"UNAVAILABLE": 0.7, "INTERNAL": 0.7}},
        {"platform": "fcm", "error_rates": {"UNAVAILABLE": "often"}},
        {"platform": "fcm", "retry_after": -1},
        {"platform": "fcm", "fail_first": {"UNAVAILABLE": 1.5}},
        {"platform": "fcm", "token_errors": {"t": "GONE"}},
        {"platform": "fcm", "latency": 5},
    ],
)
def test_bad_fault_plans_are_refused(sim: Simulator, config):
    response = sim.control("POST", "/_sim/faults", config)

    assert response.status == 400
    assert response.body["error"]


def test_reset_clears_deliveries_stats_faults_and_tokens(sim: Simulator, client, access_token):
    send(sim, client, access_token, onesignal_message("device-1"))
    send(sim, client, access_token, onesignal_message("device-1"))
    sim.faults(error_rates={"INTERNAL": 1.0})

    sim.reset()

    assert sim.deliveries() == []
    assert all(counts == ZERO for counts in sim.stats().values())
    assert sim.control("GET", "/_sim/faults").body == {}
    fresh_token = sim.fcm_access_token()
    # The first send after the reset is accepted (no faults) and is no duplicate (seen set cleared).
    assert send(sim, client, fresh_token, onesignal_message("device-1")).status == 200
    assert sim.stats()["fcm"]["duplicates"] == 0


def test_unknown_control_routes_are_404_and_wrong_methods_405(sim: Simulator):
    assert sim.control("GET", "/_sim/nothing").status == 404
    assert sim.control("POST", "/_sim/stats", {}).status == 405
