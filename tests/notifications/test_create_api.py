"""POST /notifications: validation catalog, responses, idempotency (no delivery here: see e2e)."""

from __future__ import annotations

import pytest

from notifications.models import Delivery, Notification
from notifications.validation import (
    BAD_TIME_OF_DAY,
    DATA_TOO_LARGE,
    INCOMPATIBLE_TARGETING,
    MIXED_CHANNELS,
    NO_ENGLISH,
    NO_TARGETING,
    NULL_CONTENT,
    PAST_SCHEDULE,
    PAYLOAD_TOO_LARGE,
)
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def send(api, tenant, **fields):
    return api.post("/notifications", {"app_id": str(tenant.app.id), **fields}, key=tenant.app_key)


def test_player_ids_create_a_notification_and_report_invalid_ids(api, own, outsider):
    mine = PlayerFactory(app=own.app)
    unsubscribed = PlayerFactory(app=own.app, notification_types=-2)
    foreign = PlayerFactory(app=outsider.app)
    ids = [str(mine.id), str(unsubscribed.id), str(foreign.id)]
    response = send(api, own, contents={"en": "Hi"}, include_player_ids=ids)
    assert response.status_code == 200
    body = response.json()
    assert body["recipients"] == 1 and body["external_id"] is None
    assert body["errors"] == {"invalid_player_ids": [str(unsubscribed.id), str(foreign.id)]}
    notification = Notification.objects.get(pk=body["id"])
    assert notification.app == own.app and notification.status == Notification.Status.QUEUED
    assert notification.request["contents"] == {"en": "Hi"}


def test_nobody_reachable_creates_nothing(api, own):
    unsubscribed = PlayerFactory(app=own.app, invalid_identifier=True)
    response = send(api, own, contents={"en": "Hi"}, include_player_ids=[str(unsubscribed.id)])
    assert response.status_code == 200
    assert response.json() == {
        "id": "",
        "recipients": 0,
        "errors": ["All included players are not subscribed"],
    }
    assert not Notification.objects.exists()


def test_external_ids_and_aliases_report_what_missed(api, own):
    PlayerFactory(app=own.app, external_user_id="user-1")
    response = send(api, own, contents={"en": "Hi"}, include_external_user_ids=["user-1", "user-2"])
    assert response.json()["errors"] == {"invalid_external_user_ids": ["user-2"]}
    response = send(
        api,
        own,
        contents={"en": "Hi"},
        include_aliases={"external_id": ["user-1", "user-9"]},
        target_channel="push",
    )
    assert response.json()["recipients"] == 1
    assert response.json()["errors"] == {"invalid_aliases": {"external_id": ["user-9"]}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"contents": {"en": "Hi"}}, NO_TARGETING),
        ({"included_segments": ["Subscribed Users"]}, NULL_CONTENT),
        ({"included_segments": ["Subscribed Users"], "contents": {"es": "Hola"}}, NO_ENGLISH),
        (
            {"contents": {"en": "Hi"}, "include_player_ids": ["abc"]},
            "Incorrect player_id format in include_player_ids (not a valid UUID): abc",
        ),
        (
            {"contents": {"en": "Hi"}, "include_subscription_ids": ["abc"]},
            "Incorrect subscription_id format in include_subscription_ids (not a valid UUID): abc",
        ),
        (
            {"contents": {"en": "Hi"}, "included_segments": ["All"], "include_player_ids": []},
            INCOMPATIBLE_TARGETING,
        ),
        ({"contents": {"en": "Hi"}, "email_to": ["a@example.com"], "isIos": True}, MIXED_CHANNELS),
        (
            {
                "contents": {"en": "Hi"},
                "included_segments": ["All"],
                "send_after": "2001-01-01 00:00:00 GMT+0000",
            },
            PAST_SCHEDULE,
        ),
        (
            {
                "contents": {"en": "Hi"},
                "included_segments": ["All"],
                "delayed_option": "timezone",
                "delivery_time_of_day": "25:00",
            },
            BAD_TIME_OF_DAY,
        ),
        (
            {"contents": {"en": "Hi"}, "included_segments": ["All"], "delayed_option": "timezone"},
            BAD_TIME_OF_DAY,
        ),
        ({"contents": {"en": "Hi"}, "included_segments": ["All"], "data": {"x": "y" * 2100}}, DATA_TOO_LARGE),
        ({"contents": {"en": "Hi" * 1800}, "included_segments": ["All"]}, PAYLOAD_TOO_LARGE),
        (
            {"contents": {"en": "Hi"}, "include_player_ids": ["6d8d6f4c-9a0e-4a43-9d1c-1d1f7b0e6b11"] * 2001},
            "include_player_ids may contain at most 2000 entries",
        ),
        (
            {"contents": {"en": "Hi"}, "included_segments": ["All"], "collapse_id": "x" * 65},
            "collapse_id must be a string of at most 64 bytes",
        ),
        (
            {"contents": {"en": "Hi"}, "included_segments": ["All"], "buttons": [{"text": "no id"}]},
            "each of buttons needs an id",
        ),
        (
            {"contents": {"en": "Hi"}, "included_segments": ["All"], "ttl": "forever"},
            "ttl must be an integer",
        ),
        (
            {
                "contents": {"en": "Hi"},
                "included_segments": ["All"],
                "template_id": "6d8d6f4c-9a0e-4a43-9d1c-1d1f7b0e6b11",
            },
            "template_id 6d8d6f4c-9a0e-4a43-9d1c-1d1f7b0e6b11 not found",
        ),
        (
            {"contents": "Hi", "included_segments": ["All"]},
            "contents must be an object of language codes to strings",
        ),
    ],
)
def test_validation_catalog(api, own, fields, message):
    PlayerFactory(app=own.app)
    response = send(api, own, **fields)
    assert response.status_code == 400, response.json()
    assert response.json() == {"errors": [message]}
    assert not Notification.objects.exists()


def test_idempotency_key_replays_the_original_response(api, own):
    player = PlayerFactory(app=own.app)
    fields = {"contents": {"en": "Hi"}, "include_player_ids": [str(player.id)], "idempotency_key": "k-1"}
    first = send(api, own, **fields)
    again = send(api, own, **{**fields, "contents": {"en": "different"}})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["external_id"] == "k-1"
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Notification.objects.count() == 1


def test_the_idempotency_header_works_too(api, own):
    player = PlayerFactory(app=own.app)
    fields = {"contents": {"en": "Hi"}, "include_player_ids": [str(player.id)]}
    first = api.post(
        "/notifications", {"app_id": str(own.app.id), **fields}, key=own.app_key, idempotency_key="h"
    )
    again = api.post(
        "/notifications", {"app_id": str(own.app.id), **fields}, key=own.app_key, idempotency_key="h"
    )
    assert first.json()["id"] == again.json()["id"]


def test_the_same_key_in_another_app_is_another_notification(api, own, teammate):
    for tenant in (own, teammate):
        player = PlayerFactory(app=tenant.app)
        send(api, tenant, contents={"en": "Hi"}, include_player_ids=[str(player.id)], idempotency_key="same")
    assert Notification.objects.count() == 2


def test_scheduled_notifications_wait(api, own):
    PlayerFactory(app=own.app)
    player = PlayerFactory(app=own.app)
    response = send(
        api,
        own,
        contents={"en": "Hi"},
        include_player_ids=[str(player.id)],
        send_after="2099-09-24T14:00:00-07:00",
    )
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.status == Notification.Status.SCHEDULED
    assert notification.send_after.isoformat() == "2099-09-24T21:00:00+00:00"
    assert not Delivery.objects.exists()


def test_create_needs_the_apps_key(api, api_root, own, outsider):
    player = PlayerFactory(app=own.app)
    body = {"app_id": str(own.app.id), "contents": {"en": "Hi"}, "include_player_ids": [str(player.id)]}
    assert api.post("/notifications", body).status_code == 400
    assert api_root.post("/notifications", body, key=outsider.app_key).status_code == 403
    assert not Notification.objects.exists()
