"""``/apps/{applicationId}/messages`` (mobilefirst-push-api.md §3.6 and §4): send, bulk, read,
delete; the MobileFirst targets resolved over the shared pipeline; the OneSignal side's view."""

from __future__ import annotations

import json

import pytest

from imfpush.models import PUSH_ALL, MfpApplication, Registration, Subscription, Tag
from notifications.models import DeliveryBatch, Notification
from notifications.pipeline import audience_for
from players.models import DeviceType, Player
from tests.factories import PlayerFactory
from tests.imfpush.support import APP_ID, Endpoint, check_common_failures, mfp_app, register

SEND = "messages.write push.application.myapp"
READ = "messages.read push.application.myapp"
DEVICES = "devices.write push.application.myapp"
MESSAGES = f"apps/{APP_ID}/messages"
BULK = f"apps/{APP_ID}/messages/bulk"
SMS_GATEWAY = {"host": "sms.example", "port": 443, "programName": "/send", "parameters": []}


@pytest.fixture
def app(own):
    return mfp_app(own)


@pytest.fixture
def token(own, app, token_for):
    return token_for(own, f"{SEND} messages.read")


@pytest.fixture
def device_token(own, app, token_for):
    return token_for(own, DEVICES)


def href(*parts: str) -> str:
    return "http://testserver/imfpush/v1/" + "/".join(parts)


def send(mfp, token: str, body: dict, **kw) -> dict:
    response = mfp.post(MESSAGES, body, token=token, **kw)
    assert response.status_code == 202, response.content
    return response.json()


def reached(message_id: str) -> set[str]:
    """Who the fan-out would send the message to now: MFP deviceIds (or player ids), SMS numbers."""
    notification = Notification.objects.get(pk=message_id)
    players = audience_for(notification).select_related("mfp_registration")
    names = set()
    for player in players:
        if player.device_type == DeviceType.SMS:
            names.add(player.identifier)
        else:
            registration = Registration.objects.filter(player=player).first()
            names.add(registration.device_id if registration else str(player.pk))
    return names


ENDPOINTS = [
    Endpoint(
        "POST", "apps/{app}/messages", "messages.write", body={"message": {"alert": "Hi"}}, allow="POST"
    ),
    Endpoint(
        "POST",
        "apps/{app}/messages/bulk",
        "messages.write",
        body=[{"message": {"alert": "Hi"}}],
        allow="POST",
    ),
    Endpoint(
        "GET",
        "apps/{app}/messages/0d6f5c3e-4b1a-4c55-9d0e-111111111111",
        "messages.read",
        allow="GET, DELETE",
    ),
    Endpoint("DELETE", "apps/{app}/messages/0d6f5c3e-4b1a-4c55-9d0e-111111111111", "messages.write"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for)


# --- POST /messages ---------------------------------------------------------------------------------


def test_send_answers_202_with_the_normalized_body_and_stores_a_notification(app, mfp, token):
    response = mfp.post(MESSAGES, {"message": {"alert": "TestMessage"}}, token=token)
    assert response.status_code == 202
    body = response.json()
    message_id = body["messageId"]
    assert body == {"message": {"message": {"alert": "TestMessage"}}, "messageId": message_id}
    assert response["Location"] == href("apps", APP_ID, "messages", message_id)
    assert response["Content-Type"] == "application/json; charset=UTF-8"
    notification = Notification.objects.get(pk=message_id)
    assert notification.app == app.app and notification.kind == Notification.Kind.API
    assert notification.channel == "push" and notification.status == Notification.Status.QUEUED
    assert notification.request["contents"] == {"en": "TestMessage"}
    assert notification.request["herald_mfp_target"] == {"push": True, "sms": False}


def test_the_node_sample_body_and_a_charset_parameter_work(app, mfp, token):
    response = mfp.post(
        MESSAGES,
        data=json.dumps({"message": {"alert": "Hello World!"}}).encode(),
        content_type="application/json; charset=UTF-8",
        token=token,
    )
    assert response.status_code == 202 and response.json()["message"] == {
        "message": {"alert": "Hello World!"}
    }


def test_the_response_echoes_the_normalization(app, mfp, token):
    body = {
        "message": {"alert": "Hi", "url": "https://shop.example"},
        "notificationType": "1",
        "settings": {"target": {"platform": "A,G"}, "gcm": {"priority": "HIGH", "timeToLive": "60"}},
    }
    assert send(mfp, token, body)["message"] == {
        "message": {"alert": "Hi", "url": "https://shop.example"},
        "notificationType": 1,
        "settings": {"gcm": {"priority": "high", "timeToLive": 60}},
        "target": {"platforms": ["A", "G"]},
    }


def test_an_invalid_body_is_400_and_stores_nothing(app, mfp, token):
    response = mfp.post(MESSAGES, {"message": {"alert": ""}}, token=token)
    assert response.status_code == 400
    assert response.json()["code"] == "FPWSE0005E" and "message.alert" in response.json()["message"]
    response = mfp.post(
        MESSAGES, {"message": {"alert": "x"}, "settings": {"apns": {"type": "LOUD"}}}, token=token
    )
    assert response.status_code == 400 and "settings.apns.type" in response.json()["message"]
    response = mfp.post(MESSAGES, [{"message": {"alert": "x"}}], token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert not Notification.objects.exists()


def test_a_disabled_application_refuses_sends_with_403(app, mfp, token):
    MfpApplication.objects.filter(pk=app.pk).update(enabled=False)
    for path, body in ((MESSAGES, {"message": {"alert": "x"}}), (BULK, [{"message": {"alert": "x"}}])):
        response = mfp.post(path, body, token=token)
        assert response.status_code == 403 and response.json()["code"] == "FPWSE1007E"
    assert not Notification.objects.exists()


@pytest.mark.parametrize("notification_type", [2, 3, "2"])
def test_sms_without_sms_conf_is_400_fpwse0003e(app, mfp, token, notification_type):
    response = mfp.post(
        MESSAGES, {"message": {"alert": "x"}, "notificationType": notification_type}, token=token
    )
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0003E"


def test_a_payload_too_large_for_apns_is_400(app, mfp, token):
    body = {"message": {"alert": "x" * 3000}, "settings": {"apns": {"payload": {"k": "y" * 1500}}}}
    response = mfp.post(MESSAGES, body, token=token)
    assert response.status_code == 400 and "APNs" in response.json()["message"]
    assert not Notification.objects.exists()


def test_idempotency_key_replays_the_first_answer(app, mfp, token):
    headers = {"Idempotency-Key": "order-42"}
    first = mfp.post(MESSAGES, {"message": {"alert": "One"}}, token=token, headers=headers)
    again = mfp.post(MESSAGES, {"message": {"alert": "Two"}}, token=token, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Notification.objects.count() == 1
    other = mfp.post(MESSAGES, {"message": {"alert": "Two"}}, token=token, headers={"Idempotency-Key": "k2"})
    assert other.json()["messageId"] != first.json()["messageId"]


# --- targets (§4.2) ---------------------------------------------------------------------------------


@pytest.fixture
def devices(own, app, mfp, device_token):
    """Five devices: a1 (A, alice, Gold), g1 (G, bob, Gold, SMS), w1 (W, alice), g2 (G, carol,
    unsubscribed from Push.all, SMS) and a OneSignal-registered Android player."""
    register(mfp, device_token, "a1", "ab" * 32, "A", userId="alice")
    register(mfp, device_token, "g1", "fcm-g1", "G", userId="bob", phoneNumber="+15550000001")
    register(mfp, device_token, "w1", "https://db5.notify.windows.com/?token=w1", "W", userId="alice")
    register(mfp, device_token, "g2", "fcm-g2", "G", userId="carol", phoneNumber="+15550000002")
    Subscription.objects.filter(tag__name=PUSH_ALL, player__mfp_registration__device_id="g2").delete()
    gold = Tag.objects.create(app=app.app, name="Gold")
    for device_id in ("a1", "g1"):
        Subscription.objects.create(tag=gold, player=Registration.objects.get(device_id=device_id).player)
    onesignal = PlayerFactory(app=app.app, device_type=DeviceType.ANDROID, identifier="fcm-onesignal")
    return {"onesignal": str(onesignal.pk)}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, {"a1", "g1", "w1"}),
        ({}, {"a1", "g1", "w1"}),
        ({"tagNames": [PUSH_ALL]}, {"a1", "g1", "w1"}),
        ({"tagNames": ["Gold"]}, {"a1", "g1"}),
        ({"tagNames": ["Gold", "Missing"], "platforms": ["G"]}, {"g1"}),
        ({"userIds": ["alice"]}, {"a1", "w1"}),
        ({"userIds": ["alice", "carol"], "platform": "W,G"}, {"w1", "g2"}),
        ({"deviceIds": ["g2", "unknown", "ONESIGNAL"]}, {"g2", "ONESIGNAL"}),
        ({"platforms": ["G"]}, {"g1", "g2", "ONESIGNAL"}),
    ],
)
def test_targets(devices, mfp, token, target, expected):
    body = {"message": {"alert": "x"}}
    if target is not None:
        target = json.loads(json.dumps(target).replace("ONESIGNAL", devices["onesignal"]))
        body["target"] = target
    expected = {devices["onesignal"] if name == "ONESIGNAL" else name for name in expected}
    assert reached(send(mfp, token, body)["messageId"]) == expected


def test_a_target_inside_settings_is_used(devices, mfp, token):
    message_id = send(mfp, token, {"message": {"alert": "x"}, "settings": {"target": {"userIds": ["bob"]}}})[
        "messageId"
    ]
    assert reached(message_id) == {"g1"}


def test_unsubscribed_devices_are_never_reached(devices, mfp, token):
    Player.objects.filter(mfp_registration__device_id="a1").update(notification_types=-2)
    assert reached(
        send(mfp, token, {"message": {"alert": "x"}, "target": {"deviceIds": ["a1", "g1"]}})["messageId"]
    ) == {"g1"}


@pytest.mark.parametrize(
    ("notification_type", "target", "expected"),
    [
        (2, {"userIds": ["bob", "carol", "alice"]}, {"+15550000001", "+15550000002"}),
        (3, {"deviceIds": ["g1", "a1"]}, {"g1", "a1", "+15550000001"}),
        (2, None, {"+15550000001"}),  # broadcast: g2 left Push.all
    ],
)
def test_sms_goes_to_the_registered_phones(own, devices, mfp, token, notification_type, target, expected):
    own_app = MfpApplication.objects.get(application_id=APP_ID).app
    own_app.sms_gateway_json = json.dumps(SMS_GATEWAY)
    own_app.save()
    body = {"message": {"alert": "x"}, "notificationType": notification_type}
    if target is not None:
        body["target"] = target
    message_id = send(mfp, token, body)["messageId"]
    assert reached(message_id) == expected
    assert Notification.objects.get(pk=message_id).channel == ("sms" if notification_type == 2 else "push")


def test_the_audience_is_resolved_again_at_fan_out(devices, app, mfp, token):
    silver = Tag.objects.create(app=app.app, name="Silver")
    message_id = send(mfp, token, {"message": {"alert": "x"}, "target": {"tagNames": ["Silver"]}})[
        "messageId"
    ]
    assert Notification.objects.get(pk=message_id).recipients == 0  # stored even so
    Subscription.objects.create(tag=silver, player=Registration.objects.get(device_id="w1").player)
    assert reached(message_id) == {"w1"}


def test_recipients_are_counted_when_sent(devices, mfp, token):
    message_id = send(mfp, token, {"message": {"alert": "x"}, "target": {"tagNames": ["Gold"]}})["messageId"]
    assert Notification.objects.get(pk=message_id).recipients == 2


# --- the OneSignal side -----------------------------------------------------------------------------


def test_messages_appear_in_the_onesignal_history_without_internal_fields(own, app, devices, mfp, token, api):
    from apps.services import app_key_issue

    _, app_key = app_key_issue(app=app.app, label="test")
    message_id = send(mfp, token, {"message": {"alert": "Hi"}, "settings": {"apns": {"badge": 1}}})[
        "messageId"
    ]
    listed = api.get(f"/notifications?app_id={app.app.pk}", key=app_key)
    assert listed.status_code == 200
    [notification] = listed.json()["notifications"]
    assert notification["id"] == message_id and notification["contents"] == {"en": "Hi"}
    assert notification["remaining"] == 3 and notification["canceled"] is False
    assert not [key for key in notification if key.startswith("herald_")]
    one = api.get(f"/notifications/{message_id}?app_id={app.app.pk}", key=app_key).json()
    assert not [key for key in one if key.startswith("herald_")]


@pytest.mark.parametrize(
    "field",
    [
        {"herald_mfp_target": {"userIds": ["alice"]}},
        {"herald_platform_fields": {"apns": {"apns_payload_extra": {"x": 1}}}},
        {"herald_anything": 1},
    ],
)
def test_the_public_api_refuses_herald_internal_fields(own, api, field):
    body = {"app_id": str(own.app.pk), "contents": {"en": "x"}, "included_segments": ["All"], **field}
    response = api.post("/notifications", body, key=own.app_key)
    assert response.status_code == 400
    assert "reserved for Herald" in response.json()["errors"][0]
    assert not Notification.objects.exists()


def test_the_internal_target_alone_is_not_a_targeting_mode_publicly(own, api):
    body = {"app_id": str(own.app.pk), "contents": {"en": "x"}, "herald_mfp_target": {}}
    response = api.post("/notifications", body, key=own.app_key)
    assert response.status_code == 400 and not Notification.objects.exists()


def test_a_device_registered_through_mfp_is_targeted_by_include_player_ids(own, app, devices, api):
    from apps.services import app_key_issue

    _, app_key = app_key_issue(app=app.app, label="test")
    player = Registration.objects.get(device_id="g1").player
    body = {"app_id": str(app.app.pk), "contents": {"en": "x"}, "include_player_ids": [str(player.pk)]}
    response = api.post("/notifications", body, key=app_key)
    assert response.status_code == 200 and response.json()["recipients"] == 1


# --- bulk -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [False, True])
def test_bulk_sends_every_message(app, devices, mfp, token, wrap):
    items = [{"message": {"alert": "One"}}, {"message": {"alert": "Two"}, "target": {"tagNames": ["Gold"]}}]
    response = mfp.post(BULK, {"messages": items} if wrap else items, token=token)
    assert response.status_code == 202
    messages = response.json()["messages"]
    assert [m["alert"] for m in messages] == ["One", "Two"]
    for message in messages:
        assert set(message) == {"alert", "createdTime", "href", "messageId"}
        assert message["href"] == href("apps", APP_ID, "messages", message["messageId"])
        assert message["createdTime"].endswith("Z") and len(message["createdTime"]) == 20
    assert response["Location"] == messages[0]["href"]
    assert reached(messages[1]["messageId"]) == {"a1", "g1"}
    assert Notification.objects.count() == 2


def test_bulk_is_all_or_nothing_and_names_the_index(app, mfp, token):
    items = [{"message": {"alert": "One"}}, {"message": {"alert": "Two"}, "target": {"deviceIds": []}}]
    response = mfp.post(BULK, items, token=token)
    assert response.status_code == 400
    assert response.json()["code"] == "FPWSE0005E" and "[1].target.deviceIds" in response.json()["message"]
    items = [{"message": {"alert": "One"}}, {"message": {"alert": "x" * 3000, "url": "u" * 2000}}]
    response = mfp.post(BULK, items, token=token)
    assert response.status_code == 400 and "[1].message" in response.json()["message"]
    sms = mfp.post(
        BULK, [{"message": {"alert": "One"}}, {"message": {"alert": "x"}, "notificationType": 2}], token=token
    )
    assert sms.status_code == 400 and sms.json()["code"] == "FPWSE0003E" and sms.json()["index"] == 1
    assert not Notification.objects.exists()


@pytest.mark.parametrize("body", [[], {"messages": []}, {"message": {"alert": "x"}}, "x", None])
def test_bulk_needs_a_non_empty_array(app, mfp, token, body):
    response = (
        mfp.post(BULK, body, token=token)
        if body is not None
        else mfp.post(BULK, token=token, data=b"null", content_type="application/json")
    )
    assert response.status_code == 400 and "messages" in response.json()["message"]


def test_bulk_allows_at_most_the_limit(app, mfp, token, settings):
    settings.HERALD_MFP_BULK_LIMIT = 3
    response = mfp.post(BULK, [{"message": {"alert": str(n)}} for n in range(4)], token=token)
    assert response.status_code == 400 and "3" in response.json()["message"]
    assert mfp.post(BULK, [{"message": {"alert": str(n)}} for n in range(3)], token=token).status_code == 202


def test_bulk_idempotency_key_replays_every_element(app, mfp, token):
    headers = {"Idempotency-Key": "batch-7"}
    items = [{"message": {"alert": "One"}}, {"message": {"alert": "Two"}}]
    first = mfp.post(BULK, items, token=token, headers=headers)
    again = mfp.post(BULK, items, token=token, headers=headers)
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 2


# --- GET and DELETE ---------------------------------------------------------------------------------


def test_get_returns_the_message_with_its_status_and_counts(app, devices, mfp, token):
    message_id = send(mfp, token, {"message": {"alert": "TestMessage"}, "notificationType": 1})["messageId"]
    response = mfp.get(f"{MESSAGES}/{message_id}", token=token)
    assert response.status_code == 200
    body = response.json()
    assert body.pop("createdTime").endswith("Z")
    assert body == {
        "alert": "TestMessage",
        "href": href("apps", APP_ID, "messages", message_id),
        "messageId": message_id,
        "notificationType": 1,
        "status": "QUEUED",
        "recipients": 3,
        "successful": 0,
        "failed": 0,
        "errored": 0,
        "remaining": 3,
        "converted": 0,
        "received": 0,
    }


def test_a_onesignal_notification_is_readable_as_a_message(own, app, mfp, token):
    notification = Notification.objects.create(
        app=app.app, request={"contents": {"en": "From OneSignal"}}, send_after="2024-01-01T00:00:00Z"
    )
    body = mfp.get(f"{MESSAGES}/{notification.pk}", token=token).json()
    assert body["alert"] == "From OneSignal" and "notificationType" not in body


def test_unknown_and_foreign_messages_are_404(own, outsider, app, mfp, token, token_for):
    for message_id in ("fnDWK8bG", "0d6f5c3e-4b1a-4c55-9d0e-111111111111"):
        response = mfp.get(f"{MESSAGES}/{message_id}", token=token)
        assert response.status_code == 404
        assert response.json() == {
            "code": "FPWSE0001E",
            "message": "The message with the specified messageId is not found.",
        }
        assert mfp.delete(f"{MESSAGES}/{message_id}", token=token).status_code == 404
    foreign = Notification.objects.create(app=outsider.app, request={}, send_after="2024-01-01T00:00:00Z")
    assert mfp.get(f"{MESSAGES}/{foreign.pk}", token=token).status_code == 404
    other = mfp_app(own, "otherapp")
    in_other_app = Notification.objects.create(app=other.app, request={}, send_after="2024-01-01T00:00:00Z")
    assert mfp.get(f"{MESSAGES}/{in_other_app.pk}", token=token).status_code == 404


def test_message_not_found_in_german_and_spanish(app, mfp, token):
    response = mfp.get(f"{MESSAGES}/nope", token=token, headers={"Accept-Language": "de"})
    assert response.status_code == 404 and response["Content-Language"] == "de"
    assert response.json() == {
        "code": "FPWSE0001E",
        "message": "Die Nachricht mit der angegebenen messageId wurde nicht gefunden.",
    }
    response = mfp.delete(f"{MESSAGES}/nope", token=token, headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert response.json()["message"] == "No se ha encontrado el mensaje con el messageId especificado."


def test_delete_cancels_pending_batches_and_removes_the_message(app, devices, mfp, token):
    message_id = send(mfp, token, {"message": {"alert": "x"}})["messageId"]
    notification = Notification.objects.get(pk=message_id)
    batch = DeliveryBatch.objects.create(
        notification=notification, device_type=1, size=1, available_at=notification.send_after
    )
    response = mfp.delete(f"{MESSAGES}/{message_id}", token=token)
    assert response.status_code == 204 and response.content == b""
    notification.refresh_from_db()
    batch.refresh_from_db()
    assert notification.canceled and notification.status == Notification.Status.CANCELED
    assert batch.status == DeliveryBatch.Status.CANCELED
    assert mfp.get(f"{MESSAGES}/{message_id}", token=token).status_code == 404
    assert mfp.delete(f"{MESSAGES}/{message_id}", token=token).status_code == 404


def test_delete_of_a_completed_message_is_204(app, mfp, token):
    message_id = send(mfp, token, {"message": {"alert": "x"}})["messageId"]
    Notification.objects.filter(pk=message_id).update(status=Notification.Status.COMPLETED)
    assert mfp.delete(f"{MESSAGES}/{message_id}", token=token).status_code == 204
    assert mfp.get(f"{MESSAGES}/{message_id}", token=token).status_code == 404


def test_read_scope_cannot_delete_and_write_scope_cannot_read(own, app, mfp, token_for):
    message_id = send(mfp, token_for(own, SEND), {"message": {"alert": "x"}})["messageId"]
    assert mfp.delete(f"{MESSAGES}/{message_id}", token=token_for(own, READ)).status_code == 403
    assert mfp.get(f"{MESSAGES}/{message_id}", token=token_for(own, SEND)).status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "lock_key"),
    [(MESSAGES, {"message": {"alert": "x"}}, "k"), (BULK, [{"message": {"alert": "x"}}], "bulk:k")],
)
def test_a_replay_while_the_first_request_is_in_flight_is_409(app, mfp, token, path, body, lock_key):
    from django.db import connections

    from imfpush.messages import idempotency_lock_name

    twin = connections.create_connection("default")  # the first request, still in its transaction
    try:
        with twin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [idempotency_lock_name(app.app, lock_key)]
            )
        response = mfp.post(path, body, token=token, headers={"Idempotency-Key": "k"})
        assert response.status_code == 409 and response.json()["code"] == "FPWSE0002E"
        assert not Notification.objects.exists()
    finally:
        twin.close()
    assert mfp.post(path, body, token=token, headers={"Idempotency-Key": "k"}).status_code == 202
