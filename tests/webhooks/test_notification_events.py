"""Events from the delivery pipeline and open tracking, run in-process with a scripted provider.

The provider stands in for the gateways (their protocols are tested with the simulators); what
is under test is which events the pipeline emits, once, with which entities.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from imfpush.models import MfpApplication, Registration
from notifications.delivery import deliver_batch
from notifications.models import DeliveryBatch
from notifications.pipeline import complete_if_done, notification_fan_out
from notifications.providers.base import Outcome, SendResult
from players.models import DeviceType, Player
from tests.factories import PlayerFactory, apns_token
from tests.webhooks.support import make_webhook
from webhooks.models import WebhookCall

MFP_EVENTS = ["onNotificationStatusChange", "onNotificationFailure", "onMessageSent"]
ONESIGNAL_EVENTS = ["notification.sent", "notification.failed", "player.unsubscribed", "notification.clicked"]


class ScriptedProvider:
    """Answers each recipient from ``outcomes`` (player id -> (Outcome, reason)); SENT otherwise."""

    platform = "scripted"

    def __init__(self, outcomes):
        self.outcomes = outcomes

    def send(self, items):
        return [
            SendResult(r.player_id, *self.outcomes.get(r.player_id, (Outcome.SENT, ""))) for r, _ in items
        ]


@pytest.fixture
def world(own, monkeypatch, enqueued):
    """own.app as MobileFirst app com.acme.app, with an MFP and a OneSignal-side webhook, an
    MFP-registered Android device, a OneSignal Android player and an iOS player whose token is dead."""
    monkeypatch.setattr("notifications.pipeline._enqueue_batches", lambda batches, now: None)
    MfpApplication.objects.create(app=own.app, organization=own.organization, application_id="com.acme.app")
    registered = PlayerFactory(app=own.app)
    Registration.objects.create(player=registered, app=own.app, device_id="dev-1")
    onesignal = PlayerFactory(app=own.app)
    dead = PlayerFactory(app=own.app, device_type=DeviceType.IOS, identifier=apns_token())
    outcomes = {dead.pk: (Outcome.INVALID_RECIPIENT, "Unregistered")}
    monkeypatch.setattr(
        "notifications.delivery.provider_for", lambda platform, app: ScriptedProvider(outcomes)
    )
    return {
        "mfp": make_webhook(own.app, url="https://mfp.example.com/h", events=MFP_EVENTS),
        "onesignal": make_webhook(
            own.app, url="https://os.example.com/h", events=ONESIGNAL_EVENTS, source="onesignal"
        ),
        "registered": registered,
        "onesignal_player": onesignal,
        "dead": dead,
        "outcomes": outcomes,
    }


def send(api, own, players, run) -> str:
    body = api.post(
        "/notifications",
        {
            "app_id": str(own.app.id),
            "contents": {"en": "Hello"},
            "include_player_ids": [str(p.pk) for p in players],
        },
        key=own.app_key,
    ).json()
    with run(execute=True):
        notification_fan_out(notification_id=body["id"])
    for batch_id in DeliveryBatch.objects.filter(notification_id=body["id"]).values_list("pk", flat=True):
        with run(execute=True):
            deliver_batch(batch_id=batch_id)
    return body["id"]


def payloads(webhook, event_type):
    return [
        call.payload
        for call in WebhookCall.objects.filter(webhook=webhook, event_type=event_type).order_by("id")
    ]


def test_a_send_emits_status_failure_and_message_sent_events(
    api, own, world, django_capture_on_commit_callbacks
):
    nid = send(
        api,
        own,
        [world["registered"], world["onesignal_player"], world["dead"]],
        django_capture_on_commit_callbacks,
    )

    [status] = payloads(world["mfp"], "onNotificationStatusChange")
    assert status["applicationId"] == "com.acme.app" and status["type"] == "onNotificationStatusChange"
    entity = status["entity"]
    assert entity["msgStatus"] == "SENT" and entity["messageId"] == nid and entity["platform"] == "G"
    assert sorted(entity["deviceIds"]) == sorted(["dev-1", str(world["onesignal_player"].pk)])

    [failure] = payloads(world["mfp"], "onNotificationFailure")
    assert failure["entity"] == {
        "applicationId": "com.acme.app",
        "deviceIds": [str(world["dead"].pk)],
        "failureReason": "Unregistered",
        "messageId": nid,
        "msgStatus": "failure",
        "platform": "A",
    }

    [sent] = payloads(world["mfp"], "onMessageSent")
    assert sent["entity"] == {
        "alert": "Hello",
        "deviceCount": 2,
        "messageId": nid,
        "msgStatus": "SENT",
        "platforms": ["G"],
    }
    assert set(sent) == {"applicationId", "entity", "eventTimeStamp", "type"}


def test_the_onesignal_side_gets_sent_failed_and_unsubscribed(
    api, own, world, django_capture_on_commit_callbacks
):
    nid = send(
        api,
        own,
        [world["registered"], world["onesignal_player"], world["dead"]],
        django_capture_on_commit_callbacks,
    )
    hook = world["onesignal"]

    [sent] = payloads(hook, "notification.sent")
    assert set(sent) == {"app_id", "data", "event", "timestamp"}
    assert sent["app_id"] == str(own.app.pk) and sent["event"] == "notification.sent"
    assert sent["data"]["notification_id"] == nid and sent["data"]["device_type"] == DeviceType.ANDROID
    assert sorted(sent["data"]["player_ids"]) == sorted(
        [str(world["registered"].pk), str(world["onesignal_player"].pk)]
    )

    [failed] = payloads(hook, "notification.failed")
    assert failed["data"] == {
        "device_type": DeviceType.IOS,
        "notification_id": nid,
        "player_ids": [str(world["dead"].pk)],
        "reason": "Unregistered",
    }
    [unsubscribed] = payloads(hook, "player.unsubscribed")
    assert unsubscribed["data"] == {
        "device_type": DeviceType.IOS,
        "player_id": str(world["dead"].pk),
        "reason": "Unregistered",
    }
    assert Player.objects.get(pk=world["dead"].pk).notification_types == -2
    # Events are routed by API: the MFP webhook got none of these, and vice versa.
    assert not payloads(world["mfp"], "notification.sent")
    assert not payloads(hook, "onMessageSent")


def test_each_event_is_recorded_once_even_when_work_is_repeated(
    api, own, world, django_capture_on_commit_callbacks
):
    nid = send(api, own, [world["registered"], world["dead"]], django_capture_on_commit_callbacks)
    before = WebhookCall.objects.count()
    for batch_id in DeliveryBatch.objects.filter(notification_id=nid).values_list("pk", flat=True):
        with django_capture_on_commit_callbacks(execute=True):
            deliver_batch(batch_id=batch_id)  # a redelivered task: the batch is already done
    with django_capture_on_commit_callbacks(execute=True):
        assert complete_if_done(nid) is False
    assert WebhookCall.objects.count() == before
    assert len(payloads(world["mfp"], "onMessageSent")) == 1


def test_every_recorded_event_is_enqueued_after_commit(
    api, own, world, enqueued, django_capture_on_commit_callbacks
):
    send(api, own, [world["registered"], world["dead"]], django_capture_on_commit_callbacks)
    assert sorted(enqueued) == sorted(WebhookCall.objects.values_list("pk", flat=True))


def test_transient_failures_emit_nothing_until_retries_run_out(
    api, own, world, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.HERALD_MAX_DELIVERY_ATTEMPTS = 2
    world["outcomes"][world["registered"].pk] = (Outcome.TRANSIENT, "Unavailable")
    requeued = []
    monkeypatch.setattr("notifications.delivery._requeue", lambda batch_id, delay: requeued.append(batch_id))
    send(api, own, [world["registered"]], django_capture_on_commit_callbacks)
    assert not WebhookCall.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        deliver_batch(batch_id=requeued[0])  # the retry: its last attempt
    [failure] = payloads(world["mfp"], "onNotificationFailure")
    assert failure["entity"]["failureReason"] == "retries_exhausted: Unavailable"
    assert failure["entity"]["deviceIds"] == ["dev-1"]
    assert payloads(world["mfp"], "onMessageSent")[0]["entity"]["deviceCount"] == 0


def test_apps_without_listening_webhooks_get_no_calls(
    api, own, outsider, world, django_capture_on_commit_callbacks
):
    make_webhook(outsider.app, url="https://outsider.example.com/", events=MFP_EVENTS)
    world["mfp"].event_types = ["onDeviceRegister"]
    world["mfp"].save()
    send(api, own, [world["registered"]], django_capture_on_commit_callbacks)
    assert not WebhookCall.objects.filter(webhook__app=outsider.app).exists()
    assert not WebhookCall.objects.filter(webhook=world["mfp"]).exists()


def test_opens_and_receipts_emit_clicked_and_status_changes(
    api, own, world, django_capture_on_commit_callbacks
):
    nid = send(api, own, [world["registered"]], django_capture_on_commit_callbacks)
    player = str(world["registered"].pk)
    for _ in range(2):  # the second report of each is not counted, and emits nothing
        with django_capture_on_commit_callbacks(execute=True):
            response = api.put(
                f"/notifications/{nid}", {"app_id": str(own.app.id), "opened": True, "player_id": player}
            )
            assert response.status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = api.put(
                f"/notifications/{nid}/report_received", {"app_id": str(own.app.id), "player_id": player}
            )
            assert response.status_code == 200
    [clicked] = payloads(world["onesignal"], "notification.clicked")
    assert clicked["data"] == {"device_type": DeviceType.ANDROID, "notification_id": nid, "player_id": player}
    statuses = [p["entity"]["msgStatus"] for p in payloads(world["mfp"], "onNotificationStatusChange")]
    assert statuses == ["SENT", "OPEN", "SEEN"]
    opened = payloads(world["mfp"], "onNotificationStatusChange")[1]["entity"]
    assert opened == {"deviceIds": ["dev-1"], "messageId": nid, "msgStatus": "OPEN", "platform": "G"}
    assert UUID(nid)


def test_the_email_one_click_unsubscribe_emits_player_unsubscribed_once(
    client, own, enqueued, django_capture_on_commit_callbacks
):
    from notifications.unsubscribe import PATH, unsubscribe_token

    hook = make_webhook(
        own.app, url="https://os.example.com/h", events=["player.unsubscribed"], source="onesignal"
    )
    player = PlayerFactory(app=own.app, device_type=DeviceType.EMAIL, identifier="reader@example.com")
    for _ in range(2):  # the second click changes nothing and emits nothing
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(PATH + unsubscribe_token(own.app.pk, player.pk)).status_code == 200
    [event] = payloads(hook, "player.unsubscribed")
    assert event["data"] == {
        "device_type": DeviceType.EMAIL,
        "player_id": str(player.pk),
        "reason": "unsubscribed",
    }
    assert enqueued == [WebhookCall.objects.get(webhook=hook).pk]
