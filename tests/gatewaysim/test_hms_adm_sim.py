"""The Huawei Push Kit and Amazon Device Messaging simulators over real sockets (HTTP/2 over TLS):
their OAuth endpoints, what they accept and refuse, partial success, faults and the control API."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.gatewaysim.http2 import Http2Client, Response
from tests.gatewaysim.simulator import Simulator

ZERO = {"received": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
HMS_APP = "104421234"
ADM_CLIENT = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef"
ADM_TYPE = "com.amazon.device.messaging.ADMMessage@1.0"
ADM_ACCEPT = "com.amazon.device.messaging.ADMSendResult@1.0"


def form(client: Http2Client, url: str, **fields: str) -> Response:
    body = urllib.parse.urlencode(fields).encode()
    return client.post(url, body, {"Content-Type": "application/x-www-form-urlencoded"})


def test_both_gateways_are_listed_and_counted(sim: Simulator):
    labels = [line.partition(" ")[0] for line in sim.output]
    ready = labels.index("gatewaysim")
    assert labels.index("hms") < ready and labels.index("adm") < ready
    assert sim.hms_url.startswith("https://127.0.0.1:") and sim.adm_url.startswith("https://127.0.0.1:")
    stats = sim.stats()
    assert stats["hms"] == ZERO and stats["adm"] == ZERO


# --- Huawei Push Kit ------------------------------------------------------------------------------


def hms_token(client: Http2Client, sim: Simulator, **fields: str) -> Response:
    sent = {"grant_type": "client_credentials", "client_id": HMS_APP, "client_secret": "s3cret", **fields}
    return form(client, sim.hms_token_url, **sent)


@pytest.fixture
def hms_access_token(sim: Simulator, client: Http2Client) -> str:
    response = hms_token(client, sim)
    assert response.status == 200, response.body
    return response.json()["access_token"]


def hms_message(*tokens: str, notification_id: str = "n-1", **android: Any) -> dict[str, Any]:
    data = json.dumps({"custom": json.dumps({"i": notification_id}), "alert": "Hello"})
    notification = {"title": "Herald", "body": "Hello", "click_action": {"type": 3}}
    return {
        "validate_only": False,
        "message": {
            "token": list(tokens),
            "data": data,
            "android": {"ttl": "3600s", "notification": notification, **android},
        },
    }


def hms_send(
    sim: Simulator, client: Http2Client, token: str | None, body: Any, app_id: str = HMS_APP
) -> Response:
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(f"{sim.hms_url}/v1/{app_id}/messages:send", body, headers)


def test_hms_token_endpoint_grants_client_credentials(sim: Simulator, client: Http2Client):
    granted = hms_token(client, sim)
    assert granted.status == 200 and granted.http_version == "2"
    answer = granted.json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600 and answer["access_token"]
    refused = hms_token(client, sim, grant_type="password")
    assert refused.status == 400 and refused.json()["error"] == 1101
    sim.register_hms_app("555", "right")
    wrong = hms_token(client, sim, client_id="555", client_secret="wrong")
    assert wrong.status == 400
    assert wrong.json() == {"sub_error": 12304, "error_description": "invalid client_secret", "error": 1101}
    assert hms_token(client, sim, client_id="555", client_secret="right").status == 200
    assert sim.access_tokens_issued("hms") == 2


def test_hms_send_to_several_tokens_records_one_delivery_each(sim, client, hms_access_token):
    response = hms_send(sim, client, hms_access_token, hms_message("tok-a", "tok-b"))
    assert response.status == 200
    answer = response.json()
    assert answer["code"] == "80000000" and answer["msg"] == "Success" and answer["requestId"]
    first, second = sim.deliveries(platform="hms")
    assert [first["token"], second["token"]] == ["tok-a", "tok-b"]
    assert first["status"] == 200 and not first["duplicate"]
    assert "token" not in first["payload"]
    assert first["payload"]["android"]["notification"]["title"] == "Herald"
    assert first["headers"]["authorization"] == "Bearer [redacted]"
    assert sim.stats()["hms"] == {**ZERO, "received": 2, "accepted": 2}


def test_hms_auth_is_checked_per_app_and_expires(sim, client, hms_access_token):
    assert hms_send(sim, client, None, hms_message("t")).json()["code"] == "80200001"
    other_app = hms_send(sim, client, hms_access_token, hms_message("t"), app_id="999")
    assert (other_app.status, other_app.json()["code"]) == (401, "80200001")
    assert sim.expire_access_tokens("hms") == 1
    expired = hms_send(sim, client, hms_access_token, hms_message("t"))
    assert (expired.status, expired.json()["code"]) == (401, "80200003")
    assert sim.stats()["hms"]["rejected"] == 3 and sim.stats()["hms"]["accepted"] == 0


def test_hms_partial_success_names_the_illegal_tokens(sim, client, hms_access_token):
    sim.invalidate_hms_tokens("gone-1")
    sim.faults(platform="hms", token_errors={"gone-2": "80300007"})
    response = hms_send(sim, client, hms_access_token, hms_message("ok-1", "gone-1", "gone-2", "ok-2"))
    assert response.status == 200
    answer = response.json()
    assert answer["code"] == "80100000"
    assert json.loads(answer["msg"]) == {"success": 2, "failure": 2, "illegal_tokens": ["gone-1", "gone-2"]}
    statuses = {d["token"]: d["status"] for d in sim.deliveries(platform="hms")}
    assert statuses == {"ok-1": 200, "gone-1": 400, "gone-2": 400, "ok-2": 200}
    assert sim.stats()["hms"] == {**ZERO, "received": 4, "accepted": 2, "rejected": 2}


def test_hms_all_tokens_invalid_is_80300007(sim, client, hms_access_token):
    sim.invalidate_hms_tokens("x", "y")
    response = hms_send(sim, client, hms_access_token, hms_message("x", "y"))
    assert (response.status, response.json()["code"]) == (400, "80300007")
    bad_shape = hms_send(sim, client, hms_access_token, hms_message("has space"))
    assert bad_shape.json()["code"] == "80300007"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda m: m["message"].update(token=[]), "80300010"),
        (lambda m: m["message"].update(token=[f"t{i}" for i in range(1001)]), "80300010"),
        (lambda m: m["message"].update(topic="news"), "80100003"),
        (lambda m: m["message"]["android"].update(urgency="URGENT"), "80100003"),
        (lambda m: m["message"]["android"].update(ttl="1 day"), "80100003"),
        (lambda m: m["message"]["android"].update(ttl="2000000s"), "80100003"),
        (lambda m: m["message"]["android"].update(collapse_key=101), "80100003"),
        (lambda m: m["message"]["android"]["notification"].pop("click_action"), "80100003"),
        (lambda m: m["message"]["android"]["notification"].update(click_action={"type": 2}), "80100003"),
        (
            lambda m: m["message"]["android"]["notification"].update(
                click_action={"type": 2, "url": "http://example.com"}
            ),
            "80100003",
        ),
        (lambda m: m["message"]["android"]["notification"].update(color="red"), "80100003"),
        (lambda m: m["message"]["android"]["notification"].pop("title"), "80100003"),
        (lambda m: m["message"]["android"]["notification"].update(colour="#FF0000"), "80100003"),
        (lambda m: m["message"].update(data={"not": "a string"}), "80100003"),
        (lambda m: m["message"].update(data="x" * 5000), "80300008"),
        (lambda m: m.update(validate_only="no"), "80100003"),
    ],
)
def test_hms_refuses_what_push_kit_refuses(sim, client, hms_access_token, change, code):
    body = hms_message("tok")
    change(body)
    response = hms_send(sim, client, hms_access_token, body)
    assert (response.status, response.json()["code"]) == (400, code), response.json()
    assert response.json()["msg"]


def test_hms_data_messages_and_validate_only(sim, client, hms_access_token):
    data_only = {"message": {"token": ["d"], "data": "plain text", "android": {"urgency": "HIGH"}}}
    assert hms_send(sim, client, hms_access_token, data_only).json()["code"] == "80000000"
    checked = {**hms_message("v"), "validate_only": True}
    assert hms_send(sim, client, hms_access_token, checked).json()["code"] == "80000000"
    assert hms_send(sim, client, hms_access_token, checked).json()["code"] == "80000000"
    assert [d["duplicate"] for d in sim.deliveries(platform="hms")] == [False, False, False]


def test_hms_faults_fail_the_whole_request_with_retry_after(sim, client, hms_access_token):
    sim.faults(platform="hms", fail_first={"81000001": 1, "TrafficControl": 1}, retry_after=3)
    internal = hms_send(sim, client, hms_access_token, hms_message("a", "b"))
    assert (internal.status, internal.json()["code"]) == (500, "81000001")
    flow = hms_send(sim, client, hms_access_token, hms_message("a", "b"))
    assert flow.status == 503 and "code" not in flow.json() and flow.headers["retry-after"] == "3"
    assert hms_send(sim, client, hms_access_token, hms_message("a", "b")).json()["code"] == "80000000"
    assert sim.stats()["hms"] == {**ZERO, "received": 6, "accepted": 2, "rejected": 4}


def test_hms_duplicates_follow_custom_i(sim, client, hms_access_token):
    for notification_id in ("n-1", "n-1", "n-2"):
        hms_send(sim, client, hms_access_token, hms_message("tok", notification_id=notification_id))
    assert [d["duplicate"] for d in sim.deliveries(platform="hms")] == [False, True, False]
    assert sim.stats()["hms"]["duplicates"] == 1


def test_hms_reset_forgets_tokens_unless_kept(sim, client, hms_access_token):
    sim.invalidate_hms_tokens("bad")
    sim.reset(keep_tokens=True)
    assert hms_send(sim, client, hms_access_token, hms_message("bad")).json()["code"] == "80000000"
    sim.reset()
    assert hms_send(sim, client, hms_access_token, hms_message("bad")).json()["code"] == "80200001"


def test_hms_fault_plan_rejects_unknown_codes(sim):
    response = sim.control("POST", "/_sim/faults", {"platform": "hms", "error_rates": {"UNAVAILABLE": 1}})
    assert response.status == 400 and "81000001" in response.body["error"]


# --- ADM ------------------------------------------------------------------------------------------


def adm_token(client: Http2Client, sim: Simulator, **fields: str) -> Response:
    sent = {
        "grant_type": "client_credentials",
        "scope": "messaging:push",
        "client_id": ADM_CLIENT,
        "client_secret": "s3cret",
        **fields,
    }
    return form(client, sim.adm_token_url, **sent)


@pytest.fixture
def adm_access_token(sim: Simulator, client: Http2Client) -> str:
    response = adm_token(client, sim)
    assert response.status == 200, response.body
    return response.json()["access_token"]


def adm_body(notification_id: str = "n-1", **extra: Any) -> dict[str, Any]:
    data = {"custom": json.dumps({"i": notification_id}), "title": "Herald", "alert": "Hello"}
    return {"data": data, "expiresAfter": 86400, **extra}


def adm_send(
    sim: Simulator, client: Http2Client, token: str | None, registration_id: str, body: Any, **headers: str
) -> Response:
    sent = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Amzn-Type-Version": ADM_TYPE,
        "X-Amzn-Accept-Type": ADM_ACCEPT,
        **headers,
    }
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    quoted = urllib.parse.quote(registration_id, safe="")
    return client.post(f"{sim.adm_url}/messaging/registrations/{quoted}/messages", body, sent)


def test_adm_token_endpoint_is_login_with_amazon(sim: Simulator, client: Http2Client):
    granted = adm_token(client, sim)
    assert granted.status == 200
    answer = granted.json()
    assert answer["access_token"].startswith("Atc|")
    assert (answer["scope"], answer["token_type"], answer["expires_in"]) == ("messaging:push", "bearer", 3600)
    assert adm_token(client, sim, scope="profile").json()["error"] == "invalid_scope"
    assert adm_token(client, sim, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert adm_token(client, sim, client_secret="").json()["error"] == "invalid_request"
    sim.register_adm_client(ADM_CLIENT + "ff", "right")
    wrong = adm_token(client, sim, client_id=ADM_CLIENT + "ff", client_secret="wrong")
    assert (wrong.status, wrong.json()["error"]) == (401, "invalid_client")


def test_adm_message_to_a_registration_is_accepted(sim, client, adm_access_token):
    [registration_id] = sim.adm_registration_ids(1)
    assert registration_id.startswith("amzn1.adm-registration.v3.")
    response = adm_send(sim, client, adm_access_token, registration_id, adm_body(consolidationKey="news"))
    assert response.status == 200
    assert response.json() == {"registrationID": registration_id}
    assert response.headers["x-amzn-requestid"]
    assert response.headers["x-amzn-type-version"] == ADM_ACCEPT
    [delivery] = sim.deliveries(platform="adm")
    assert delivery["token"] == registration_id and delivery["status"] == 200
    assert delivery["payload"]["data"]["title"] == "Herald"
    assert delivery["headers"]["x-amzn-type-version"] == ADM_TYPE
    assert sim.stats()["adm"] == {**ZERO, "received": 1, "accepted": 1}


def test_adm_needs_a_live_token(sim, client, adm_access_token):
    [registration_id] = sim.adm_registration_ids(1)
    for token in (None, "Atc|forged"):
        response = adm_send(sim, client, token, registration_id, adm_body())
        assert (response.status, response.json()) == (401, {"reason": "AccessTokenExpired"})
    sim.expire_access_tokens("adm")
    assert adm_send(sim, client, adm_access_token, registration_id, adm_body()).status == 401


@pytest.mark.parametrize(
    ("registration", "body", "headers", "status", "reason"),
    [
        ("not-an-adm-id", adm_body(), {}, 400, "InvalidRegistrationId"),
        (None, adm_body(), {"X-Amzn-Type-Version": "ADMMessage@2.0"}, 400, "InvalidType"),
        (None, adm_body(), {"X-Amzn-Accept-Type": "json"}, 400, "InvalidType"),
        (None, {"data": {"count": 3}}, {}, 400, "InvalidData"),
        (None, {"data": {"a": "b"}, "colour": "red"}, {}, 400, "InvalidData"),
        (None, adm_body(consolidationKey="k" * 65), {}, 400, "InvalidConsolidationKey"),
        (None, adm_body(expiresAfter=30), {}, 400, "InvalidExpiration"),
        (None, adm_body(expiresAfter=2_678_401), {}, 400, "InvalidExpiration"),
        (None, adm_body(md5="nope"), {}, 400, "InvalidChecksum"),
        (None, {"data": {"blob": "x" * 7000}}, {}, 413, "MessageTooLarge"),
    ],
)
def test_adm_refuses_what_adm_refuses(
    sim, client, adm_access_token, registration, body, headers, status, reason
):
    registration = registration or sim.adm_registration_ids(1)[0]
    response = adm_send(sim, client, adm_access_token, registration, body, **headers)
    assert (response.status, response.json()) == (status, {"reason": reason})
    assert sim.stats()["adm"]["rejected"] == 1


def test_adm_unregistered_ids_get_410(sim, client, adm_access_token):
    live, gone = sim.adm_registration_ids(2)
    [born_gone] = sim.adm_registration_ids(1, unregistered=True)
    sim.unregister_adm(gone)
    assert adm_send(sim, client, adm_access_token, live, adm_body()).status == 200
    for registration_id in (gone, born_gone):
        response = adm_send(sim, client, adm_access_token, registration_id, adm_body())
        assert (response.status, response.json()) == (410, {"reason": "Unregistered"})


def test_a_rotated_registration_is_delivered_and_answers_its_canonical_id(sim, client, adm_access_token):
    old, other = sim.adm_registration_ids(2)
    [(rotated, canonical)] = sim.rotate_adm(old).items()
    assert rotated == old and canonical.startswith("amzn1.adm-registration.v3.") and canonical != old

    answer = adm_send(sim, client, adm_access_token, old, adm_body())
    assert (answer.status, answer.json()) == (200, {"registrationID": canonical})
    assert adm_send(sim, client, adm_access_token, canonical, adm_body("n-2")).json() == {
        "registrationID": canonical
    }
    assert adm_send(sim, client, adm_access_token, other, adm_body()).json() == {"registrationID": other}
    assert [d["token"] for d in sim.deliveries(platform="adm")] == [old, canonical, other]
    sim.reset(keep_tokens=True)  # forgotten with the rest
    assert adm_send(sim, client, adm_access_token, old, adm_body()).json() == {"registrationID": old}
    assert sim.control("POST", "/_sim/adm/registrations/rotate", {"registration_ids": "x"}).status == 400


def test_adm_faults_with_retry_after(sim, client, adm_access_token):
    broken, other = sim.adm_registration_ids(2)
    sim.faults(
        platform="adm",
        token_errors={broken: "InvalidRegistrationId"},
        fail_first={"MaxRateExceeded": 1},
        retry_after=7,
    )
    throttled = adm_send(sim, client, adm_access_token, other, adm_body())
    assert (throttled.status, throttled.json()) == (429, {"reason": "MaxRateExceeded"})
    assert throttled.headers["retry-after"] == "7"
    assert adm_send(sim, client, adm_access_token, other, adm_body()).status == 200
    assert adm_send(sim, client, adm_access_token, broken, adm_body()).status == 400
    sim.faults(platform="adm", error_rates={"ServiceUnavailable": 1.0})
    assert adm_send(sim, client, adm_access_token, other, adm_body("n-2")).status == 503
    assert sim.stats()["adm"] == {**ZERO, "received": 4, "accepted": 1, "rejected": 3}


def test_adm_duplicates_follow_custom_i(sim, client, adm_access_token):
    [registration_id] = sim.adm_registration_ids(1)
    for notification_id in ("n-1", "n-1", "n-2"):
        response = adm_send(sim, client, adm_access_token, registration_id, adm_body(notification_id))
        assert response.status == 200
    assert [d["duplicate"] for d in sim.deliveries(platform="adm")] == [False, True, False]


def test_adm_reset_forgets_tokens_and_unregistrations_unless_kept(sim, client, adm_access_token):
    [registration_id] = sim.adm_registration_ids(1, unregistered=True)
    sim.reset(keep_tokens=True)
    assert adm_send(sim, client, adm_access_token, registration_id, adm_body()).status == 200
    sim.reset()
    assert adm_send(sim, client, adm_access_token, registration_id, adm_body()).status == 401
