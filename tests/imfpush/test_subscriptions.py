"""``/apps/{applicationId}/subscriptions`` (mobilefirst-push-api.md §3.4)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imfpush.devices import device_register
from imfpush.models import PUSH_ALL, MfpApplication, Subscription, Tag
from players.models import DeviceType
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

SUBS = f"apps/{APP_ID}/subscriptions"
SCOPES = "subscriptions.read subscriptions.write devices.write push.application.myapp"
NOT_FOUND = {"code": "FPWSE0012E", "message": "The subscription does not exist."}


@pytest.fixture
def app(own):
    record = mfp_app(own)
    Tag.objects.create(app=record.app, name="testTag")
    return record


@pytest.fixture
def token(own, app, token_for):
    return token_for(own, SCOPES)


def href(*parts: str) -> str:
    return "http://testserver/imfpush/v1/" + "/".join(parts)


def subscribe(mfp, token, device_id: str = "dev-1", tag_name: str = "testTag") -> dict:
    response = mfp.post(SUBS, {"deviceId": device_id, "tagName": tag_name}, token=token)
    assert response.status_code == 201, response.content
    return response.json()


def _setup_subscription(own):
    """Device ``dev-1`` and tag ``Gold`` in ``myapp``, made once the common checker created it."""

    def setup():
        record = MfpApplication.objects.get(organization=own.organization, application_id=APP_ID)
        Tag.objects.create(app=record.app, name="Gold")
        device_register(mfp_application=record, body=device_body("dev-1", "t-1"), default_user_id="admin")

    return setup


ENDPOINTS = [
    Endpoint(
        "GET", "apps/{app}/subscriptions", "subscriptions.read", wrong_method="PUT", allow="GET, POST, DELETE"
    ),
    Endpoint(
        "POST",
        "apps/{app}/subscriptions",
        "subscriptions.write",
        body={"deviceId": "dev-1", "tagName": "Gold"},
    ),
    Endpoint("DELETE", "apps/{app}/subscriptions?deviceId=dev-1&tagName=Gold", "subscriptions.write"),
    Endpoint("GET", "apps/{app}/subscriptions/1", "subscriptions.read", allow="GET, DELETE"),
    Endpoint("DELETE", "apps/{app}/subscriptions/1", "subscriptions.write"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(
        endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for, setup=_setup_subscription(own)
    )


# --- POST {deviceId, tagName} ---------------------------------------------------------------------


def test_subscribe(own, app, mfp, token):
    register(mfp, token, "dev-1", device_token="xyz", userId="admin")
    response = mfp.post(SUBS, {"deviceId": "dev-1", "tagName": "testTag"}, token=token)
    assert response.status_code == 201
    body = response.json()
    subscription = Subscription.objects.get(tag__name="testTag")
    assert response["Location"] == body["href"] == href("apps", APP_ID, "subscriptions", str(subscription.pk))
    assert body == {
        "createdMode": "API",
        "createdTime": body["createdTime"],
        "deviceId": "dev-1",
        "href": body["href"],
        "platform": "A",
        "subscriptionId": str(subscription.pk),
        "tagName": "testTag",
        "token": "xyz",
        "userId": "admin",
    }
    again = mfp.post(SUBS, {"deviceId": "dev-1", "tagName": "testTag"}, token=token)
    assert again.status_code == 200 and again.json() == body and "Location" not in again
    assert Subscription.objects.filter(tag__name="testTag").count() == 1


def test_subscribe_to_unknown_tag_or_from_unknown_device_is_404(app, mfp, token):
    register(mfp, token, "dev-1")
    response = mfp.post(SUBS, {"deviceId": "dev-1", "tagName": "missing"}, token=token)
    assert response.status_code == 404
    assert response.json() == {
        "code": "FPWSE0001E",
        "message": "The tag with the specified tagName is not found.",
    }
    assert not Tag.objects.filter(name="missing").exists()  # subscribing does not create tags
    response = mfp.post(SUBS, {"deviceId": "nope", "tagName": "testTag"}, token=token)
    assert response.status_code == 404
    assert response.json()["message"] == "A device registration with the specified deviceId is not found."


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"tagName": "testTag"}, "deviceId"),
        ({"deviceId": "dev-1"}, "tagName"),
        ({"deviceId": 1, "tagName": "t"}, "deviceId"),
    ],
)
def test_invalid_subscription_body_is_400(app, mfp, token, body, name):
    response = mfp.post(SUBS, body, token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert name in response.json()["message"]


def test_onesignal_player_subscribes_by_its_player_id(app, mfp, token):
    player = PlayerFactory(
        app=app.app, device_type=DeviceType.ANDROID, identifier="os-1", external_user_id="u"
    )
    body = subscribe(mfp, token, str(player.pk))
    assert body["deviceId"] == str(player.pk) and body["platform"] == "G" and body["userId"] == "u"


# --- batch ----------------------------------------------------------------------------------------


def test_batch_subscribe_is_207(app, mfp, token):
    Tag.objects.create(app=app.app, name="Gold")
    register(mfp, token, "dev-1")
    existing = subscribe(mfp, token)
    response = mfp.post(
        SUBS, {"deviceId": "dev-1", "tagNames": ["testTag", "Gold", "missing", "Gold"]}, token=token
    )
    assert response.status_code == 207
    body = response.json()
    gold = Subscription.objects.get(tag__name="Gold")
    assert [item["subscriptionId"] for item in body["subscribed"]] == [str(gold.pk)]
    assert body["subscribed"][0]["tagName"] == "Gold" and body["subscribed"][0]["platform"] == "A"
    assert body["subscriptionExists"] == [existing]
    assert body["tagsNotFound"] == {
        "code": "FPWSE0001E",
        "message": "Not Found - Targeted resource 'tagNames' does not exist. Check the 'tags' parameter",
        "tags": ["missing"],
    }


def test_batch_unsubscribe_is_207(app, mfp, token):
    Tag.objects.create(app=app.app, name="Gold")
    register(mfp, token, "dev-1")
    testtag = subscribe(mfp, token)
    response = mfp.post(
        f"{SUBS}?action=delete",
        {"deviceId": "dev-1", "tagNames": ["testTag", "Gold", "missing"]},
        token=token,
    )
    assert response.status_code == 207
    assert response.json() == {
        "subscriptionNotExists": [{"deviceId": "dev-1", "tagName": "Gold"}],
        "tagsNotFound": {
            "code": "FPWSE0001E",
            "message": "Not Found - Targeted resource 'tagNames' does not exist. Check the 'tags' parameter",
            "tags": ["missing"],
        },
        "unsubscribed": [testtag],
    }
    assert not Subscription.objects.filter(tag__name="testTag").exists()
    single = mfp.post(f"{SUBS}?action=DELETE", {"deviceId": "dev-1", "tagName": PUSH_ALL}, token=token)
    assert single.status_code == 207 and single.json()["unsubscribed"][0]["tagName"] == PUSH_ALL


@pytest.mark.parametrize("query", ["", "?action=delete"])
def test_batch_errors(app, mfp, token, query):
    register(mfp, token, "dev-1")
    response = mfp.post(f"{SUBS}{query}", {"deviceId": "nope", "tagNames": ["testTag"]}, token=token)
    assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"
    for names in ("testTag", [1], None):
        response = mfp.post(f"{SUBS}{query}", {"deviceId": "dev-1", "tagNames": names}, token=token)
        assert response.status_code == 400 and "tagNames" in response.json()["message"]


def test_unknown_action_is_400(app, mfp, token):
    response = mfp.post(f"{SUBS}?action=purge", {"deviceId": "dev-1", "tagNames": []}, token=token)
    assert response.status_code == 400 and "action" in response.json()["message"]


# --- DELETE ?deviceId=&tagName= -------------------------------------------------------------------


def test_delete_by_device_and_tag(app, mfp, token):
    register(mfp, token, "dev-1")
    subscribe(mfp, token)
    response = mfp.delete(f"{SUBS}?deviceId=dev-1&tagName=testTag", token=token)
    assert response.status_code == 204 and response.content == b""
    assert not Subscription.objects.filter(tag__name="testTag").exists()
    assert Tag.objects.filter(name="testTag").exists()
    response = mfp.delete(f"{SUBS}?deviceId=dev-1&tagName=testTag", token=token)
    assert response.status_code == 404 and response.json() == NOT_FOUND
    for query in ("deviceId=nope&tagName=testTag", "deviceId=dev-1&tagName=nope"):
        assert mfp.delete(f"{SUBS}?{query}", token=token).json() == NOT_FOUND


@pytest.mark.parametrize(
    ("query", "missing"),
    [("tagName=t", "deviceId"), ("deviceId=d", "tagName"), ("deviceId=&tagName=t", "deviceId")],
)
def test_delete_by_tag_needs_both_parameters(app, mfp, token, query, missing):
    response = mfp.delete(f"{SUBS}?{query}", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0008E"
    assert missing in response.json()["message"]


def test_push_all_unsubscribe_and_resubscribe(app, mfp, token):
    register(mfp, token, "dev-1")
    mfp.delete(f"{SUBS}?deviceId=dev-1&tagName={PUSH_ALL}", token=token)
    assert not Subscription.objects.filter(tag__name=PUSH_ALL).exists()  # broadcast off
    subscribe(mfp, token, tag_name=PUSH_ALL)
    assert Subscription.objects.filter(tag__name=PUSH_ALL).count() == 1  # broadcast back on


# --- by id ----------------------------------------------------------------------------------------


def test_get_and_delete_by_id(app, mfp, token):
    register(mfp, token, "dev-1")
    created = subscribe(mfp, token)
    path = f"{SUBS}/{created['subscriptionId']}"
    assert mfp.get(path, token=token).json() == created
    assert mfp.delete(path, token=token).status_code == 204
    assert mfp.get(path, token=token).json() == NOT_FOUND
    assert mfp.delete(path, token=token).json() == NOT_FOUND
    assert mfp.get(f"apps/{APP_ID}/devices/dev-1", token=token).status_code == 200  # the device remains


@pytest.mark.parametrize("subscription_id", ["mysubscription", "-1", "99999999999999999999999", "\uff11"])
def test_unknown_subscription_id_is_404(app, mfp, token, subscription_id):
    response = mfp.get(f"{SUBS}/{subscription_id}", token=token)
    assert response.status_code == 404 and response.json() == NOT_FOUND


def test_subscription_not_found_in_spanish(app, mfp, token):
    response = mfp.get(f"{SUBS}/mysubscription", token=token, headers={"Accept-Language": "es"})
    assert response.status_code == 404 and response["Content-Language"] == "es"
    assert response.json()["code"] == "FPWSE0012E"


def test_another_apps_subscription_is_404(own, app, mfp, token, token_for):
    other = mfp_app(own, "otherapp")
    admin = token_for(own, "devices.write subscriptions.write push.application.otherapp")
    register(mfp, admin, "dev-9", app="otherapp")
    subscription = Subscription.objects.get(tag__app=other.app)
    assert mfp.get(f"{SUBS}/{subscription.pk}", token=token).status_code == 404
    assert mfp.delete(f"{SUBS}/{subscription.pk}", token=token).status_code == 404
    assert Subscription.objects.filter(pk=subscription.pk).exists()


# --- GET list -------------------------------------------------------------------------------------


def test_list_by_device(app, mfp, token):
    register(mfp, token, "12345-6789", userId="admin")
    created = subscribe(mfp, token, "12345-6789")
    push_all = Subscription.objects.get(tag__name=PUSH_ALL)
    response = mfp.get(f"{SUBS}?deviceId=12345-6789", token=token)
    assert response.json() == {
        "pageInfo": {"count": 2, "next": "", "previous": "", "totalCount": 2},
        "subscriptions": [
            {
                "deviceId": "12345-6789",
                "href": href("apps", APP_ID, "subscriptions", str(push_all.pk)),
                "subscriptionId": str(push_all.pk),
                "tagName": PUSH_ALL,
                "userId": "admin",
            },
            {
                "deviceId": "12345-6789",
                "href": created["href"],
                "subscriptionId": created["subscriptionId"],
                "tagName": "testTag",
                "userId": "admin",
            },
        ],
    }
    expanded = mfp.get(f"{SUBS}?deviceId=12345-6789&expand=true", token=token).json()["subscriptions"]
    assert expanded[1] == created


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [("a", PUSH_ALL), ("b", PUSH_ALL), ("a", "testTag"), ("b", "testTag")]),
        ("tagName=testTag", [("a", "testTag"), ("b", "testTag")]),
        ("userId=bob", [("b", PUSH_ALL), ("b", "testTag")]),
        ("deviceId=a&tagName=testTag", [("a", "testTag")]),
        ("filter=tagName==testTag&filter=deviceId==b", [("b", "testTag")]),
        ("filter=tagName=@push", [("a", PUSH_ALL), ("b", PUSH_ALL)]),
        ("filter=deviceId==a,b&tagName=Push.all", [("a", PUSH_ALL), ("b", PUSH_ALL)]),
        ("filter=deviceId=@A", [("a", PUSH_ALL), ("a", "testTag")]),
        ("filter=userId==alice", [("a", PUSH_ALL), ("a", "testTag")]),
        ("filter=userId=@O", [("b", PUSH_ALL), ("b", "testTag")]),
        ("tagName=nothing", []),
    ],
)
def test_list_filters(app, mfp, token, query, expected):
    register(mfp, token, "a", userId="alice")
    register(mfp, token, "b", userId="bob")
    subscribe(mfp, token, "a")
    subscribe(mfp, token, "b")
    response = mfp.get(f"{SUBS}?{query}", token=token)
    assert response.status_code == 200, response.content
    assert [(s["deviceId"], s["tagName"]) for s in response.json()["subscriptions"]] == expected


@pytest.mark.parametrize("query", ["filter=platform==A", "filter=tagName", "filter=token==x"])
def test_invalid_filter_is_400(app, mfp, token, query):
    response = mfp.get(f"{SUBS}?{query}", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0007E"


def test_list_paging(app, mfp, token):
    for n in range(3):
        register(mfp, token, f"dev-{n}")
    page = mfp.get(f"{SUBS}?size=2&offset=1", token=token).json()
    assert [s["deviceId"] for s in page["subscriptions"]] == ["dev-1", "dev-2"]
    assert page["pageInfo"]["totalCount"] == 3 and page["pageInfo"]["next"] == ""
    assert page["pageInfo"]["previous"] == f"{href('apps', APP_ID, 'subscriptions')}?size=2&offset=0"


# --- scopes for device-side tokens and the [YAML] variants ---------------------------------------


def test_mobile_client_reads_only_one_devices_subscriptions(own, app, mfp, token, token_for):
    register(mfp, token, "dev-1")
    mobile = token_for(own, "push.mobileclient push.application.myapp")
    assert mfp.get(f"{SUBS}?deviceId=dev-1", token=mobile).status_code == 200
    refused = mfp.get(SUBS, token=mobile)
    assert refused.status_code == 403
    assert refused["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="subscriptions.read push.application.myapp"'
    )
    assert mfp.get(f"{SUBS}?deviceId=", token=mobile).status_code == 403
    created = subscribe(mfp, mobile)
    batch = mfp.post(SUBS, {"deviceId": "dev-1", "tagNames": ["testTag"]}, token=mobile)
    assert batch.status_code == 207
    assert mfp.delete(f"{SUBS}?deviceId=dev-1&tagName=testTag", token=mobile).status_code == 204
    assert mfp.get(f"{SUBS}/{created['subscriptionId']}", token=mobile).status_code == 403


def test_devices_write_reads_and_deletes_by_id(own, app, mfp, token, token_for):
    register(mfp, token, "dev-1")
    created = subscribe(mfp, token)
    yaml = token_for(own, "devices.write push.application.myapp")
    assert mfp.get(f"{SUBS}/{created['subscriptionId']}", token=yaml).status_code == 200
    assert mfp.get(SUBS, token=yaml).status_code == 403
    assert mfp.delete(f"{SUBS}/{created['subscriptionId']}", token=yaml).status_code == 204


# --- webhook events -------------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_record_events(app, mfp, token):
    register(mfp, token, "dev-1", device_token="t1", userId="u1", platform="G")
    make_webhook(app.app, url="https://hooks.example.com/mfp", events=("onSubscribe", "onUnsubscribe"))
    created = subscribe(mfp, token)
    subscribe_again = mfp.post(SUBS, {"deviceId": "dev-1", "tagName": "testTag"}, token=token)
    assert subscribe_again.status_code == 200  # nothing changed: no event
    mfp.delete(f"{SUBS}/{created['subscriptionId']}", token=token)
    batch = mfp.post(SUBS, {"deviceId": "dev-1", "tagNames": ["testTag"]}, token=token).json()
    mfp.post(f"{SUBS}?action=delete", {"deviceId": "dev-1", "tagNames": ["testTag"]}, token=token)
    payloads = [call.payload for call in WebhookCall.objects.order_by("id")]
    assert [p["type"] for p in payloads] == ["onSubscribe", "onUnsubscribe", "onSubscribe", "onUnsubscribe"]
    device = {"applicationId": APP_ID, "deviceId": "dev-1", "platform": "G", "token": "t1", "userId": "u1"}
    assert payloads[0]["entity"] == {
        "device": device,
        "subscriptionId": created["subscriptionId"],
        "tagName": "testTag",
    }
    assert payloads[1]["entity"] == {
        "device": device,
        "deviceId": "dev-1",
        "subscriptionId": created["subscriptionId"],
        "tagName": "testTag",
    }
    assert payloads[3]["entity"]["subscriptionId"] == batch["subscribed"][0]["subscriptionId"]


def test_nul_is_400_in_queries_and_bodies(app, mfp, token):
    for query in ("deviceId=%00", "tagName=a%00", "filter=tagName==%00"):
        assert mfp.get(f"{SUBS}?{query}", token=token).status_code == 400
    assert mfp.delete(f"{SUBS}?deviceId=%00&tagName=t", token=token).status_code == 400
    for body in ({"deviceId": "d\x00", "tagName": "t"}, {"deviceId": "d", "tagNames": ["\x00"]}):
        response = mfp.post(SUBS, body, token=token)
        assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"


def test_list_query_count_does_not_grow_with_subscriptions(app, mfp, token):
    register(mfp, token, "dev-0")
    with CaptureQueriesContext(connection) as few:
        assert len(mfp.get(f"{SUBS}?expand=true", token=token).json()["subscriptions"]) == 1
    for n in range(1, 6):
        register(mfp, token, f"dev-{n}")
        subscribe(mfp, token, f"dev-{n}")
    with CaptureQueriesContext(connection) as many:
        assert len(mfp.get(f"{SUBS}?expand=true", token=token).json()["subscriptions"]) == 11
    assert len(many) == len(few)
