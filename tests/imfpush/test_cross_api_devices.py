"""One data model, two APIs: devices registered through either API are visible through the other.

The App of ``own`` was created through the OneSignal side; /imfpush/v1 addresses it by its UUID
(mobilefirst-push-api.md §1.4).
"""

from __future__ import annotations

import pytest

from imfpush.models import Registration
from players.models import Player

IOS_TOKEN = "a1" * 32


@pytest.fixture
def app_id(own) -> str:
    return str(own.app.pk)


@pytest.fixture
def token(own, app_id, token_for) -> str:
    return token_for(own, f"devices.read devices.write push.application.{app_id}")


def test_onesignal_player_appears_in_the_mfp_device_list(own, app_id, api, mfp, token):
    ios = api.post(
        "/players",
        {"app_id": app_id, "device_type": 0, "identifier": IOS_TOKEN, "external_user_id": "alice"},
        key=own.app_key,
    ).json()
    android = api.post(
        "/players", {"app_id": app_id, "device_type": 1, "identifier": "fcm-1"}, key=own.app_key
    ).json()
    api.post(
        "/players", {"app_id": app_id, "device_type": 11, "identifier": "a@example.com"}, key=own.app_key
    )
    assert ios["success"] and android["success"]

    listed = mfp.get(f"apps/{app_id}/devices?expand=true", token=token).json()
    devices = {device["deviceId"]: device for device in listed["devices"]}
    assert set(devices) == {ios["id"], android["id"]}  # the email player has no MFP platform
    assert devices[ios["id"]]["platform"] == "A" and devices[ios["id"]]["token"] == IOS_TOKEN
    assert devices[ios["id"]]["userId"] == "alice"
    assert devices[android["id"]]["platform"] == "G" and devices[android["id"]]["userId"] == ""
    assert devices[ios["id"]]["href"] == f"http://testserver/imfpush/v1/apps/{app_id}/devices/{ios['id']}"
    assert mfp.get(f"apps/{app_id}/devices/{ios['id']}", token=token).json() == devices[ios["id"]]
    assert [
        d["deviceId"] for d in mfp.get(f"apps/{app_id}/devices?userId=alice", token=token).json()["devices"]
    ] == [ios["id"]]


def test_mfp_device_is_a_onesignal_player(own, app_id, api, mfp, token):
    body = {"deviceId": "12345-6789", "platform": "G", "token": "fcm-xyz", "userId": "bob"}
    assert mfp.post(f"apps/{app_id}/devices", body, token=token).status_code == 201
    player_id = str(Registration.objects.get(device_id="12345-6789").player_id)

    seen = api.get(f"/players/{player_id}?app_id={app_id}")  # OneSignal's device call, no key
    assert seen.status_code == 200, seen.content
    player = seen.json()
    assert player["id"] == player_id and player["device_type"] == 1
    assert player["identifier"] == "fcm-xyz" and player["external_user_id"] == "bob"
    with_key = api.get(f"/players/{player_id}?app_id={app_id}", key=own.app_key)
    assert with_key.status_code == 200 and with_key.json()["identifier"] == "fcm-xyz"
    listed = api.get(f"/players?app_id={app_id}", key=own.app_key).json()
    assert player_id in {p["id"] for p in listed["players"]}

    # An edit through MFP shows on the OneSignal side, and the other way round.
    mfp.put(f"apps/{app_id}/devices/12345-6789", {"token": "fcm-new"}, token=token)
    assert api.get(f"/players/{player_id}?app_id={app_id}").json()["identifier"] == "fcm-new"
    api.put(f"/players/{player_id}", {"app_id": app_id, "external_user_id": "carol"})
    assert mfp.get(f"apps/{app_id}/devices/12345-6789", token=token).json()["userId"] == "carol"


def test_onesignal_upsert_of_an_mfp_token_keeps_one_device(own, app_id, api, mfp, token):
    mfp.post(f"apps/{app_id}/devices", {"deviceId": "d1", "platform": "G", "token": "fcm-same"}, token=token)
    again = api.post(
        "/players", {"app_id": app_id, "device_type": 1, "identifier": "fcm-same", "language": "de"}
    ).json()
    registration = Registration.objects.get(device_id="d1")
    assert again["id"] == str(registration.player_id)
    assert Player.objects.filter(app=own.app).count() == 1
    devices = mfp.get(f"apps/{app_id}/devices", token=token).json()["devices"]
    assert [device["deviceId"] for device in devices] == ["d1"]


def test_onesignal_delete_unregisters_the_mfp_device(own, app_id, api, mfp, token):
    mfp.post(f"apps/{app_id}/devices", {"deviceId": "d1", "platform": "A", "token": "xyz"}, token=token)
    player_id = Registration.objects.get(device_id="d1").player_id
    assert api.delete(f"/players/{player_id}?app_id={app_id}", key=own.app_key).status_code == 200
    response = mfp.get(f"apps/{app_id}/devices/d1", token=token)
    assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"
