"""``/apps/{applicationId}/devices`` (mobilefirst-push-api.md §3.3)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imfpush.models import PUSH_ALL, Registration, Subscription
from players.models import DeviceType, Player
from tests.factories import PlayerFactory
from tests.imfpush.support import (
    APP_ID,
    Endpoint,
    check_common_failures,
    device_body,
    mfp_app,
    register,
)
from tests.webhooks.support import make_webhook
from webhooks.models import WebhookCall

WRITE = "devices.write push.application.myapp"
READ = "devices.read push.application.myapp"
DEVICE = f"apps/{APP_ID}/devices/dev-1"


@pytest.fixture
def app(own):
    return mfp_app(own)


@pytest.fixture
def token(own, app, token_for):
    return token_for(own, f"{WRITE} devices.read")


def href(*parts: str) -> str:
    return "http://testserver/imfpush/v1/" + "/".join(parts)


ENDPOINTS = [
    Endpoint("GET", "apps/{app}/devices", "devices.read", allow="GET, POST"),
    Endpoint("POST", "apps/{app}/devices", "devices.write", body=device_body("d", "t"), allow="GET, POST"),
    Endpoint("GET", "apps/{app}/devices/dev-1", "devices.read", allow="GET, PUT, DELETE"),
    Endpoint("PUT", "apps/{app}/devices/dev-1", "devices.write", body={"userId": "u"}),
    Endpoint("DELETE", "apps/{app}/devices/dev-1", "devices.write"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for)


# --- POST ---------------------------------------------------------------------------------------


def test_register_creates_player_registration_and_push_all_subscription(own, app, mfp, token, token_for):
    response = mfp.post(
        f"apps/{APP_ID}/devices",
        device_body("dev-1", "fcm-token-1", "G", phoneNumber="+15551234567", variables={"a": "b"}),
        token=token,
        headers={"User-Agent": "Agent/1.0"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["href"] == href("apps", APP_ID, "devices", "dev-1")
    client_id = own.organization.confidential_clients.get().client_id
    assert body["userId"] == client_id  # the credential's subject (§1.4)
    assert set(body) == {
        "createdMode",
        "createdTime",
        "deviceId",
        "href",
        "lastUpdatedTime",
        "phoneNumber",
        "platform",
        "token",
        "userAgent",
        "userId",
    }
    assert body["platform"] == "G" and body["token"] == "fcm-token-1" and body["createdMode"] == "API"
    assert body["userAgent"] == "Agent/1.0" and body["phoneNumber"] == "+15551234567"
    assert body["createdTime"].endswith("Z") and len(body["createdTime"]) == 20

    registration = Registration.objects.select_related("player", "sms_player").get(device_id="dev-1")
    player = registration.player
    assert player.app == app.app and player.device_type == DeviceType.ANDROID
    assert player.identifier == "fcm-token-1" and player.external_user_id == client_id
    assert registration.user_agent == "Agent/1.0" and registration.variables == {"a": "b"}
    assert Subscription.objects.filter(player=player, tag__name=PUSH_ALL).exists()
    sms = registration.sms_player
    assert sms.device_type == DeviceType.SMS and sms.identifier == "+15551234567" and sms.app == app.app


@pytest.mark.parametrize(("platform", "device_type"), [("A", 0), ("G", 1), ("W", 6)])
def test_platform_maps_to_device_type(app, mfp, token, platform, device_type):
    register(mfp, token, "dev-1", platform=platform)
    assert Player.objects.get(mfp_registration__device_id="dev-1").device_type == device_type


def test_unparsable_phone_number_is_stored_without_sms_player(app, mfp, token):
    body = register(mfp, token, "dev-1", phoneNumber="123456789")
    assert body["phoneNumber"] == "123456789"
    assert Registration.objects.get(device_id="dev-1").sms_player is None
    assert not Player.objects.filter(device_type=DeviceType.SMS).exists()


def test_given_user_id_is_kept(app, mfp, token):
    assert register(mfp, token, "dev-1", userId="alice")["userId"] == "alice"


def test_post_of_an_existing_device_id_updates_it_with_200(app, mfp, token):
    register(mfp, token, "dev-1", device_token="old")
    response = mfp.post(f"apps/{APP_ID}/devices", device_body("dev-1", "new", "G"), token=token)
    assert response.status_code == 200 and "Location" not in response
    assert response.json()["token"] == "new" and response.json()["platform"] == "G"
    assert Player.objects.filter(app=app.app).count() == 1
    assert Subscription.objects.count() == 1


def test_token_of_another_registration_moves_to_the_new_device(app, mfp, token):
    register(mfp, token, "dev-1", device_token="shared")
    register(mfp, token, "dev-2", device_token="shared")
    assert mfp.get(DEVICE, token=token).json()["token"] == ""
    assert mfp.get(f"apps/{APP_ID}/devices/dev-2", token=token).json()["token"] == "shared"
    # Updating a device to a token another one holds moves it too, without a 500.
    response = mfp.put(DEVICE, {"token": "shared"}, token=token)
    assert response.status_code == 200 and response.json()["token"] == "shared"
    assert mfp.get(f"apps/{APP_ID}/devices/dev-2", token=token).json()["token"] == ""


def test_token_of_a_onesignal_player_adopts_that_player(own, app, mfp, token):
    player = PlayerFactory(app=app.app, device_type=DeviceType.ANDROID, identifier="os-token")
    body = register(mfp, token, "dev-1", device_token="os-token", platform="G")
    assert body["deviceId"] == "dev-1"
    assert Registration.objects.get(device_id="dev-1").player_id == player.pk
    assert Player.objects.filter(app=app.app).count() == 1


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"token": "t", "platform": "A"}, "deviceId"),
        ({"deviceId": "d", "platform": "A"}, "token"),
        ({"deviceId": "d", "token": "t"}, "platform"),
        ({"deviceId": "d", "token": "t", "platform": "X"}, "platform"),
        ({"deviceId": "a/b", "token": "t", "platform": "A"}, "deviceId"),
        ({"deviceId": "d" * 256, "token": "t", "platform": "A"}, "deviceId"),
        ({"deviceId": 5, "token": "t", "platform": "A"}, "deviceId"),
        ({"deviceId": "d", "token": "has space", "platform": "A"}, "token"),
        ({"deviceId": "d", "token": "t", "platform": "A", "variables": []}, "variables"),
        ({"deviceId": "d", "token": "t", "platform": "A", "phoneNumber": 5}, "phoneNumber"),
    ],
)
def test_invalid_body_is_400_naming_the_property(app, mfp, token, body, name):
    response = mfp.post(f"apps/{APP_ID}/devices", body, token=token)
    assert response.status_code == 400
    assert response.json()["code"] == "FPWSE0005E" and name in response.json()["message"]
    assert not Player.objects.exists()


def test_user_id_longer_than_254_is_400(app, mfp, token):
    response = mfp.post(f"apps/{APP_ID}/devices", device_body("d", "t", userId="u" * 255), token=token)
    assert response.status_code == 400
    assert response.json() == {
        "code": "FPWSE0005E",
        "message": "A device registration has userId longer than 254 characters.",
    }


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"{nope"])
def test_body_that_is_not_an_object_is_400(app, mfp, token, raw):
    response = mfp.post(f"apps/{APP_ID}/devices", data=raw, content_type="application/json", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0004E"


def test_mobile_client_token_may_register(own, app, mfp, token_for):
    mobile = token_for(own, "push.mobileclient push.application.myapp")
    register(mfp, mobile, "dev-1")
    assert mfp.get(DEVICE, token=mobile).status_code == 200
    listed = mfp.get(f"apps/{APP_ID}/devices", token=mobile)
    assert listed.status_code == 403  # listing every device is not a device-side operation


# --- GET one, PUT, DELETE -------------------------------------------------------------------------


def test_get_one_device(app, mfp, token):
    created = register(mfp, token, "dev-1", phoneNumber="123")
    response = mfp.get(DEVICE, token=token)
    assert response.status_code == 200 and response.json() == created
    assert response["Content-Type"] == "application/json; charset=UTF-8"


def test_devices_write_alone_may_read(own, app, mfp, token_for):
    token = token_for(own, WRITE)
    register(mfp, token, "dev-1")
    assert mfp.get(DEVICE, token=token).status_code == 200
    assert mfp.get(f"apps/{APP_ID}/devices", token=token).status_code == 200


def test_unknown_device_is_404_in_every_method(app, mfp, token):
    for response in (
        mfp.get(DEVICE, token=token),
        mfp.put(DEVICE, {"userId": "x"}, token=token),
        mfp.delete(DEVICE, token=token),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "code": "FPWSE0001E",
            "message": "A device registration with the specified deviceId is not found.",
        }


def test_device_not_found_in_german_and_spanish(app, mfp, token):
    english = mfp.get(DEVICE, token=token).json()["message"]
    for language in ("de", "es"):
        response = mfp.get(DEVICE, token=token, headers={"Accept-Language": language})
        assert response.status_code == 404 and response["Content-Language"] == language
        assert response.json()["code"] == "FPWSE0001E" and response.json()["message"] != english


def test_put_updates_given_fields_only(app, mfp, token):
    created = register(mfp, token, "dev-1", device_token="t1", phoneNumber="+15551234567", userId="alice")
    response = mfp.put(
        DEVICE, {"deviceId": "dev-1", "token": "t2"}, token=token, headers={"User-Agent": "UA2"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == "t2" and body["userId"] == "alice" and body["phoneNumber"] == "+15551234567"
    assert body["userAgent"] == "UA2" and body["createdTime"] == created["createdTime"]
    assert body["platform"] == "A"
    changed = mfp.put(DEVICE, {"platform": "W", "userId": "bob"}, token=token).json()
    assert changed["platform"] == "W" and changed["userId"] == "bob"
    assert Player.objects.get(mfp_registration__device_id="dev-1").device_type == DeviceType.WINDOWS


def test_put_empty_user_id_resets_to_the_default(own, app, mfp, token):
    register(mfp, token, "dev-1", userId="alice")
    client_id = own.organization.confidential_clients.get().client_id
    assert mfp.put(DEVICE, {"userId": ""}, token=token).json()["userId"] == client_id


def test_put_user_id_too_long_is_400_before_the_lookup(app, mfp, token):
    response = mfp.put(DEVICE, {"deviceId": "dev-1", "userId": "u" * 255}, token=token)
    assert response.status_code == 400
    assert response.json()["message"] == "A device registration has userId longer than 254 characters."


def test_put_with_another_device_id_is_400(app, mfp, token):
    register(mfp, token, "dev-1")
    response = mfp.put(DEVICE, {"deviceId": "dev-2"}, token=token)
    assert response.status_code == 400 and "deviceId" in response.json()["message"]


def test_put_phone_number_moves_the_sms_player(app, mfp, token):
    register(mfp, token, "dev-1", phoneNumber="+15551234567")
    mfp.put(DEVICE, {"phoneNumber": "+15557654321"}, token=token)
    registration = Registration.objects.select_related("sms_player").get(device_id="dev-1")
    assert registration.sms_player.identifier == "+15557654321"
    assert list(Player.objects.filter(device_type=DeviceType.SMS).values_list("identifier", flat=True)) == [
        "+15557654321"
    ]
    mfp.put(DEVICE, {"phoneNumber": ""}, token=token)
    assert Registration.objects.get(device_id="dev-1").sms_player is None
    assert not Player.objects.filter(device_type=DeviceType.SMS).exists()
    assert "phoneNumber" not in mfp.get(DEVICE, token=token).json()


def test_delete_removes_player_registration_subscriptions_and_unshared_sms_player(app, mfp, token):
    register(mfp, token, "dev-1", phoneNumber="+15551234567")
    register(mfp, token, "dev-2", phoneNumber="+15551234567")
    register(mfp, token, "dev-3", phoneNumber="+15559999999")
    assert Registration.objects.filter(sms_player__identifier="+15551234567").count() == 2

    response = mfp.delete(DEVICE, token=token)
    assert response.status_code == 204 and response.content == b""
    assert not Registration.objects.filter(device_id="dev-1").exists()
    assert Player.objects.filter(identifier="+15551234567").exists()  # dev-2 still uses it
    mfp.delete(f"apps/{APP_ID}/devices/dev-2", token=token)
    assert not Player.objects.filter(identifier="+15551234567").exists()
    assert Subscription.objects.count() == 1  # dev-3's Push.all
    assert mfp.delete(DEVICE, token=token).status_code == 404


def test_delete_keeps_an_sms_player_registered_through_onesignal(app, mfp, token):
    onesignal_sms = PlayerFactory(app=app.app, device_type=DeviceType.SMS, identifier="+15551234567")
    register(mfp, token, "dev-1", phoneNumber="+15551234567")
    assert Registration.objects.get(device_id="dev-1").sms_player_id == onesignal_sms.pk
    mfp.delete(DEVICE, token=token)
    assert Player.objects.filter(pk=onesignal_sms.pk).exists()


# --- GET list -------------------------------------------------------------------------------------


def test_list_abbreviated_and_expanded(app, mfp, token):
    first = register(mfp, token, "dev-1", userId="alice")
    register(mfp, token, "dev-2", platform="G", userId="bob")
    listed = mfp.get(f"apps/{APP_ID}/devices", token=token).json()
    assert listed["devices"] == [
        {"deviceId": "dev-1", "href": href("apps", APP_ID, "devices", "dev-1"), "userId": "alice"},
        {"deviceId": "dev-2", "href": href("apps", APP_ID, "devices", "dev-2"), "userId": "bob"},
    ]
    assert listed["pageInfo"] == {"count": 2, "next": "", "previous": "", "totalCount": 2}
    for flag in ("expand=true", "expend=true", "expand=True"):
        expanded = mfp.get(f"apps/{APP_ID}/devices?{flag}", token=token).json()
        assert expanded["devices"][0] == first
    assert mfp.get(f"apps/{APP_ID}/devices?expand=false", token=token).json() == listed


def test_list_paging_has_real_links(app, mfp, token):
    for n in range(5):
        register(mfp, token, f"dev-{n}")
    page = mfp.get(f"apps/{APP_ID}/devices?size=2&offset=2", token=token).json()
    assert [d["deviceId"] for d in page["devices"]] == ["dev-2", "dev-3"]
    assert page["pageInfo"] == {
        "count": 2,
        "next": f"{href('apps', APP_ID, 'devices')}?size=2&offset=4",
        "previous": f"{href('apps', APP_ID, 'devices')}?size=2&offset=0",
        "totalCount": 5,
    }
    assert mfp.get(f"apps/{APP_ID}/devices?size=x", token=token).json()["code"] == "FPWSE1080E"
    assert mfp.get(f"apps/{APP_ID}/devices?offset=-2", token=token).json()["code"] == "FPWSE1079E"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("filter=platform==A", ["ios-1", "ios-2"]),
        ("filter=platform==G,W", ["and-1", "win-1"]),
        ("filter=platform==A&userId=admin", ["ios-1"]),
        ("userId=admin", ["ios-1", "and-1"]),
        ("filter=userId=@ADM", ["ios-1", "and-1"]),
        ("filter=userId==admin&filter=platform==G", ["and-1"]),
        ("filter=deviceId==win-1", ["win-1"]),
        ("filter=deviceId=@IOS", ["ios-1", "ios-2"]),
        ("filter=token==tok-and-1", ["and-1"]),
        ("filter=token=@win", ["win-1"]),
        ("filter=phoneNumber==%2B15551234567", ["ios-2"]),
        ("filter=phoneNumber=@555", ["ios-2"]),
        ("filter=platform==X", []),
        ("deviceId=&userId=", ["ios-1", "ios-2", "and-1", "win-1"]),
    ],
)
def test_list_filters(app, mfp, token, query, expected):
    register(mfp, token, "ios-1", "tok-ios-1", "A", userId="admin")
    register(mfp, token, "ios-2", "tok-ios-2", "A", userId="carol", phoneNumber="+15551234567")
    register(mfp, token, "and-1", "tok-and-1", "G", userId="admin")
    register(mfp, token, "win-1", "tok-win-1", "W", userId="dave")
    response = mfp.get(f"apps/{APP_ID}/devices?{query}", token=token)
    assert response.status_code == 200, response.content
    assert [d["deviceId"] for d in response.json()["devices"]] == expected


@pytest.mark.parametrize(
    "query",
    ["filter=platform=@A", "filter=name==x", "filter=userId", "filter=userId==a\\b", "filter=userId=="],
)
def test_invalid_filter_is_400(app, mfp, token, query):
    response = mfp.get(f"apps/{APP_ID}/devices?{query}", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0007E"


def test_filter_escapes(app, mfp, token):
    register(mfp, token, "a,b", userId="x\\y")
    register(mfp, token, "c")
    assert [
        d["deviceId"]
        for d in mfp.get(f"apps/{APP_ID}/devices?filter=deviceId==a%5C,b", token=token).json()["devices"]
    ] == ["a,b"]
    assert [
        d["deviceId"]
        for d in mfp.get(f"apps/{APP_ID}/devices?filter=userId==x%5C%5Cy", token=token).json()["devices"]
    ] == ["a,b"]


def test_onesignal_players_of_a_g_w_are_listed_by_player_id(app, mfp, token):
    ios = PlayerFactory(app=app.app, device_type=DeviceType.IOS, identifier="a" * 64, external_user_id="eve")
    PlayerFactory(app=app.app, device_type=DeviceType.EMAIL, identifier="x@example.com")
    PlayerFactory(app=app.app, device_type=DeviceType.CHROME_WEB, identifier="https://push.example.com/x")
    register(mfp, token, "dev-1", phoneNumber="+15551234567")  # its SMS player is not a device
    listed = mfp.get(f"apps/{APP_ID}/devices?expand=true", token=token).json()["devices"]
    assert [d["deviceId"] for d in listed] == [str(ios.pk), "dev-1"]
    assert listed[0] == {
        "createdMode": "API",
        "createdTime": listed[0]["createdTime"],
        "deviceId": str(ios.pk),
        "href": href("apps", APP_ID, "devices", str(ios.pk)),
        "lastUpdatedTime": listed[0]["lastUpdatedTime"],
        "platform": "A",
        "token": "a" * 64,
        "userId": "eve",
    }
    by_id = mfp.get(f"apps/{APP_ID}/devices?filter=deviceId=={ios.pk}", token=token).json()["devices"]
    assert [d["deviceId"] for d in by_id] == [str(ios.pk)]
    part = str(ios.pk)[:8].upper()
    contains = mfp.get(f"apps/{APP_ID}/devices?filter=deviceId=@{part}", token=token).json()["devices"]
    assert [d["deviceId"] for d in contains] == [str(ios.pk)]
    assert mfp.get(f"apps/{APP_ID}/devices/{ios.pk}", token=token).json()["userId"] == "eve"


def test_onesignal_player_can_be_updated_and_deleted_through_mfp(app, mfp, token):
    player = PlayerFactory(app=app.app, device_type=DeviceType.ANDROID, identifier="os-1")
    path = f"apps/{APP_ID}/devices/{player.pk}"
    response = mfp.put(path, {"userId": "zed", "phoneNumber": "1"}, token=token)
    assert response.status_code == 200 and response.json()["deviceId"] == str(player.pk)
    assert response.json()["userId"] == "zed" and response.json()["phoneNumber"] == "1"
    assert mfp.delete(path, token=token).status_code == 204
    assert not Player.objects.filter(pk=player.pk).exists()


def test_other_apps_devices_are_not_listed(own, app, mfp, token, token_for):
    other = mfp_app(own, "otherapp")
    PlayerFactory(app=other.app, device_type=DeviceType.IOS, identifier="b" * 64)
    PlayerFactory(app=own.app, device_type=DeviceType.IOS, identifier="c" * 64)
    assert mfp.get(f"apps/{APP_ID}/devices", token=token).json()["devices"] == []


def test_list_query_count_does_not_grow_with_devices(app, mfp, token):
    for n in range(3):
        register(mfp, token, f"dev-{n}", phoneNumber="+1555123456{n}")
    with CaptureQueriesContext(connection) as few:
        assert len(mfp.get(f"apps/{APP_ID}/devices?expand=true", token=token).json()["devices"]) == 3
    for n in range(3, 8):
        register(mfp, token, f"dev-{n}")
    with CaptureQueriesContext(connection) as many:
        assert len(mfp.get(f"apps/{APP_ID}/devices?expand=true", token=token).json()["devices"]) == 8
    assert len(many) == len(few)


# --- webhook events -------------------------------------------------------------------------------


def test_writes_record_webhook_events(app, mfp, token, own):
    client_id = own.organization.confidential_clients.get().client_id
    make_webhook(
        app.app,
        url="https://hooks.example.com/mfp",
        events=("onDeviceRegister", "onDeviceUpdate", "onDeviceUnregister"),
    )
    register(mfp, token, "dev-1", device_token="t1", platform="G")
    mfp.put(DEVICE, {"userId": "u2"}, token=token)
    mfp.post(f"apps/{APP_ID}/devices", device_body("dev-1", "t3", "G"), token=token)  # upsert
    mfp.delete(DEVICE, token=token)
    mfp.delete(DEVICE, token=token)  # 404: no event
    mfp.put(DEVICE, {"userId": "u2"}, token=token)  # 404: no event
    calls = [call.payload for call in WebhookCall.objects.order_by("id")]
    assert [(c["type"], c["applicationId"]) for c in calls] == [
        ("onDeviceRegister", APP_ID),
        ("onDeviceUpdate", APP_ID),
        ("onDeviceUpdate", APP_ID),
        ("onDeviceUnregister", APP_ID),
    ]
    device = {"deviceId": "dev-1", "platform": "G"}
    assert calls[0]["entity"] == {**device, "applicationId": APP_ID, "token": "t1", "userId": client_id}
    assert calls[1]["entity"] == {**device, "token": "t1", "userId": "u2"}
    assert calls[2]["entity"] == {**device, "token": "t3", "userId": "u2"}
    assert calls[3]["entity"] == {**device, "applicationId": APP_ID, "token": "t3", "userId": "u2"}
    assert all(isinstance(c["eventTimeStamp"], int) for c in calls)


def test_failed_write_records_no_event(app, mfp, token):
    make_webhook(app.app, url="https://hooks.example.com/mfp", events=("onDeviceRegister",))
    mfp.post(f"apps/{APP_ID}/devices", {"deviceId": "d"}, token=token)
    assert not WebhookCall.objects.exists()


# --- input PostgreSQL cannot store ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("filter=deviceId==%00", "FPWSE0007E"),
        ("filter=deviceId=@a%00", "FPWSE0007E"),
        ("filter=token==a%00", "FPWSE0007E"),
        ("userId=%00", "FPWSE0005E"),
    ],
)
def test_nul_in_a_query_value_is_400(app, mfp, token, query, code):
    response = mfp.get(f"apps/{APP_ID}/devices?{query}", token=token)
    assert response.status_code == 400 and response.json()["code"] == code


@pytest.mark.parametrize(
    "extra",
    [{"deviceId": "a\x00b"}, {"userId": "\x00"}, {"phoneNumber": "1\x00"}, {"variables": {"k": ["\x00"]}}],
)
def test_nul_in_the_body_is_400(app, mfp, token, extra):
    name = next(iter(extra))
    response = mfp.post(f"apps/{APP_ID}/devices", {**device_body("d", "t"), **extra}, token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert name in response.json()["message"]
    register(mfp, token, "dev-1")
    response = mfp.put(DEVICE, extra, token=token)
    assert response.status_code == 400 and name in response.json()["message"]


def test_nul_in_the_device_id_of_the_path_is_404(app, mfp, token):
    for response in (
        mfp.get(f"apps/{APP_ID}/devices/a%00", token=token),
        mfp.put(f"apps/{APP_ID}/devices/a%00", {"userId": "x"}, token=token),
        mfp.delete(f"apps/{APP_ID}/devices/a%00", token=token),
    ):
        assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"


def test_onesignal_player_keeps_its_canonical_device_id_when_addressed_in_upper_case(app, mfp, token):
    player = PlayerFactory(app=app.app, device_type=DeviceType.ANDROID, identifier="os-1")
    upper = str(player.pk).upper()
    response = mfp.put(f"apps/{APP_ID}/devices/{upper}", {"userId": "zed"}, token=token)
    assert response.status_code == 200 and response.json()["deviceId"] == str(player.pk)
    assert Registration.objects.get(player=player).device_id == str(player.pk)
    assert mfp.get(f"apps/{APP_ID}/devices/{player.pk}", token=token).json()["userId"] == "zed"
    posted = mfp.post(f"apps/{APP_ID}/devices", device_body(upper, "os-1", "G"), token=token)
    assert posted.status_code == 200 and posted.json()["deviceId"] == str(player.pk)
