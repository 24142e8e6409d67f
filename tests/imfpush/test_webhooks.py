"""Webhooks (mobilefirst-push-api.md §3.7): list, create, read, update (both PUT forms), delete."""

from __future__ import annotations

import pytest
from django.db import connection

from imfpush.models import MfpApplication
from tests.imfpush.support import APP_ID, Endpoint, check_common_failures, mfp_app
from webhooks.models import Webhook

WEBHOOKS = f"apps/{APP_ID}/webhooks"
SAMPLE = {
    "eventTypes": "onDeviceRegister,onDeviceUpdate,onDeviceUnregister,onSubscribe,onUnsubscribe",
    "name": "SampleWebhook",
    "url": "http://samplewebhook.com",
}
NOT_FOUND = {"code": "FPWSE0001E", "message": "The webhook does not exist."}


@pytest.fixture
def app(own):
    return mfp_app(own).app


@pytest.fixture
def writer(own, token_for, app):
    return token_for(own, f"webhooks.write webhooks.read push.application.{APP_ID}")


def create(mfp, token, body=None):
    response = mfp.post(WEBHOOKS, body or SAMPLE, token=token)
    assert response.status_code == 201, response.content
    return response.json()


def sample_setup(own):
    def setup():
        Webhook.objects.create(
            app=MfpApplication.objects.get(organization=own.organization, application_id=APP_ID).app,
            name="SampleWebhook",
            url="https://hooks.example.com/x",
            event_types=["onDeviceRegister"],
        )

    return setup


ENDPOINTS = [
    Endpoint("GET", "apps/{app}/webhooks", "webhooks.read"),
    Endpoint("POST", "apps/{app}/webhooks", "webhooks.write", body=SAMPLE),
    Endpoint("PUT", "apps/{app}/webhooks", "webhooks.write", body={"name": "SampleWebhook"}),
    Endpoint("GET", "apps/{app}/webhooks/SampleWebhook", "webhooks.read", wrong_method="POST"),
    Endpoint("PUT", "apps/{app}/webhooks/SampleWebhook", "webhooks.write", body={}, wrong_method="POST"),
    Endpoint("DELETE", "apps/{app}/webhooks/SampleWebhook", "webhooks.write", wrong_method="POST"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(
        endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for, setup=sample_setup(own)
    )


# --- POST -----------------------------------------------------------------------------------------


def test_post_creates_the_documented_webhook(mfp, writer, app):
    response = mfp.post(WEBHOOKS, SAMPLE, token=writer)
    assert response.status_code == 201
    href = f"http://testserver/imfpush/v1/apps/{APP_ID}/webhooks/SampleWebhook"
    assert response.json() == {**SAMPLE, "href": href}
    assert list(response.json()) == ["eventTypes", "href", "name", "url"]  # sorted keys
    assert response["Location"] == href
    webhook = Webhook.objects.get(app=app)
    assert webhook.source == "mfp" and webhook.name == "SampleWebhook"
    assert webhook.event_types == SAMPLE["eventTypes"].split(",")
    assert webhook.secret.startswith("whsec_") and len(webhook.secret) > 40


def test_the_signing_secret_is_encrypted_at_rest_and_never_echoed(mfp, writer, app):
    body = create(mfp, writer, {**SAMPLE, "secret": "my-own-secret-0123456789"})
    assert "secret" not in body
    assert Webhook.objects.get(app=app).secret == "my-own-secret-0123456789"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhook")
        [(raw,)] = cursor.fetchall()
    assert "my-own-secret" not in raw and raw.startswith("gAAAA")  # a Fernet token
    listed = (
        mfp.get(WEBHOOKS, token=writer).content + mfp.get(f"{WEBHOOKS}/SampleWebhook", token=writer).content
    )
    assert b"my-own-secret" not in listed and b"secret" not in listed


def test_event_types_as_an_array_are_echoed_as_a_string(mfp, writer, app):
    body = create(
        mfp, writer, {**SAMPLE, "eventTypes": ["onMessageSent", "onNotificationFailure", "onMessageSent"]}
    )
    assert body["eventTypes"] == "onMessageSent,onNotificationFailure"
    body = create(mfp, writer, {**SAMPLE, "name": "spaced", "eventTypes": " onSubscribe , onUnsubscribe "})
    assert body["eventTypes"] == "onSubscribe,onUnsubscribe"


def test_every_known_event_is_accepted(mfp, writer, app):
    known = [
        "onDeviceRegister",
        "onDeviceUpdate",
        "onDeviceUnregister",
        "onSubscribe",
        "onUnsubscribe",
        "onNotificationStatusChange",
        "onNotificationFailure",
        "onMessageSent",
    ]
    assert create(mfp, writer, {**SAMPLE, "eventTypes": ",".join(known)})["eventTypes"] == ",".join(known)


def test_post_with_an_existing_name_is_409(mfp, writer, app):
    create(mfp, writer)
    response = mfp.post(WEBHOOKS, {**SAMPLE, "url": "https://other.example.com"}, token=writer)
    assert response.status_code == 409 and response.json()["code"] == "FPWSE0002E"
    assert "SampleWebhook" in response.json()["message"]
    assert Webhook.objects.get(app=app).url == SAMPLE["url"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"eventTypes": "onDeviceRegister,onSomethingElse"}, "onSomethingElse"),
        ({"eventTypes": "notification.sent"}, "notification.sent"),  # the OneSignal side's vocabulary
        ({"eventTypes": ""}, "eventTypes"),
        ({"eventTypes": []}, "eventTypes"),
        ({"eventTypes": [1]}, "eventTypes"),
        ({"eventTypes": {"a": 1}}, "eventTypes"),
        ({"eventTypes": None}, "eventTypes"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 7}, "name"),
        ({"url": None}, "url"),
        ({"url": 12}, "url"),
        ({"url": "ftp://files.example.com/x"}, "url"),
        ({"url": "http://user:pw@example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_post_refuses_invalid_fields(mfp, writer, app, change, field):
    response = mfp.post(WEBHOOKS, {**SAMPLE, **change}, token=writer)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "FPWSE0005E"
    assert field in response.json()["message"]
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
    ],
)
def test_post_refuses_non_public_urls(mfp, writer, app, settings, url):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    response = mfp.post(WEBHOOKS, {**SAMPLE, "url": url}, token=writer)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "FPWSE0005E"
    assert "non-public" in response.json()["message"]


def test_a_deployment_may_allow_loopback_receivers(mfp, writer, app, settings):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    body = create(mfp, writer, {**SAMPLE, "url": "http://127.0.0.1:9999/hook"})
    assert body["url"] == "http://127.0.0.1:9999/hook"


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"{bad"])
def test_post_with_a_body_that_is_not_an_object_is_400(mfp, writer, app, raw):
    response = mfp.request("POST", WEBHOOKS, token=writer, data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0004E"


# --- GET ------------------------------------------------------------------------------------------


def test_list_returns_full_items_with_paging(mfp, writer, app, token_for, own):
    for index in range(3):
        create(mfp, writer, {**SAMPLE, "name": f"hook{index}", "url": f"https://h{index}.example.com/"})
    Webhook.objects.create(app=app, name="dashboard", url="https://d.example.com", source="onesignal")
    reader = token_for(own, f"webhooks.read push.application.{APP_ID}")
    response = mfp.get(f"{WEBHOOKS}?offset=1&size=1", token=reader)
    assert response.status_code == 200
    body = response.json()
    assert body["webhooks"] == [
        {
            "eventTypes": SAMPLE["eventTypes"],
            "href": f"http://testserver/imfpush/v1/apps/{APP_ID}/webhooks/hook1",
            "name": "hook1",
            "url": "https://h1.example.com/",
        }
    ]
    info = body["pageInfo"]
    assert (info["count"], info["totalCount"]) == (1, 3)  # the OneSignal-side webhook is not listed
    assert "offset=2" in info["next"] and "offset=0" in info["previous"]
    # expand changes nothing: webhooks are always full.
    assert mfp.get(f"{WEBHOOKS}?expand=true", token=reader).json()["webhooks"][0]["eventTypes"]


def test_list_filters_by_name_and_url(mfp, writer, app):
    create(mfp, writer, {**SAMPLE, "name": "alpha", "url": "https://one.example.com/"})
    create(mfp, writer, {**SAMPLE, "name": "beta", "url": "https://two.example.com/"})
    names = lambda query: [w["name"] for w in mfp.get(f"{WEBHOOKS}?{query}", token=writer).json()["webhooks"]]  # noqa: E731
    assert names("filter=name==beta") == ["beta"]
    assert names("filter=url=@ONE") == ["alpha"]
    assert names("filter=name==alpha,beta&filter=url=@two") == ["beta"]
    response = mfp.get(f"{WEBHOOKS}?filter=eventTypes==x", token=writer)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0007E"


def test_list_of_an_app_without_webhooks_is_empty(mfp, writer, app):
    body = mfp.get(WEBHOOKS, token=writer).json()
    assert body == {"webhooks": [], "pageInfo": {"count": 0, "next": "", "previous": "", "totalCount": 0}}


def test_get_one(mfp, writer, app):
    created = create(mfp, writer)
    response = mfp.get(f"{WEBHOOKS}/SampleWebhook", token=writer)
    assert response.status_code == 200 and response.json() == created


def test_get_unknown_webhook_is_404(mfp, writer, app):
    response = mfp.get(f"{WEBHOOKS}/nope", token=writer)
    assert response.status_code == 404 and response.json() == NOT_FOUND


def test_names_are_case_sensitive_and_percent_decoded(mfp, writer, app):
    create(mfp, writer, {**SAMPLE, "name": "My Hook+1"})
    assert mfp.get(f"{WEBHOOKS}/My%20Hook%2B1", token=writer).status_code == 200
    assert mfp.get(f"{WEBHOOKS}/my%20hook%2B1", token=writer).status_code == 404


# --- PUT ------------------------------------------------------------------------------------------


def test_put_by_name_changes_url_and_events(mfp, writer, app):
    create(mfp, writer)
    secret = Webhook.objects.get().secret
    response = mfp.put(
        f"{WEBHOOKS}/SampleWebhook",
        {"eventTypes": ["onMessageSent"], "name": "SampleWebhook", "url": "https://new.example.com/h"},
        token=writer,
    )
    assert response.status_code == 200
    assert response.json() == {
        "eventTypes": "onMessageSent",
        "href": f"http://testserver/imfpush/v1/apps/{APP_ID}/webhooks/SampleWebhook",
        "name": "SampleWebhook",
        "url": "https://new.example.com/h",
    }
    webhook = Webhook.objects.get()
    assert webhook.event_types == ["onMessageSent"] and webhook.secret == secret


def test_put_keeps_absent_fields(mfp, writer, app):
    create(mfp, writer)
    response = mfp.put(f"{WEBHOOKS}/SampleWebhook", {"url": "https://new.example.com/"}, token=writer)
    assert response.json()["eventTypes"] == SAMPLE["eventTypes"]
    assert response.json()["url"] == "https://new.example.com/"


def test_put_can_set_a_new_secret_without_echoing_it(mfp, writer, app):
    create(mfp, writer)
    response = mfp.put(f"{WEBHOOKS}/SampleWebhook", {"secret": "rotated-secret-abcdefgh"}, token=writer)
    assert response.status_code == 200 and b"rotated" not in response.content
    assert Webhook.objects.get().secret == "rotated-secret-abcdefgh"


def test_put_without_a_name_in_the_path_uses_the_body_name(mfp, writer, app):
    create(mfp, writer)
    response = mfp.put(WEBHOOKS, {"name": "SampleWebhook", "eventTypes": "onSubscribe"}, token=writer)
    assert response.status_code == 200 and response.json()["eventTypes"] == "onSubscribe"
    response = mfp.put(WEBHOOKS, {"eventTypes": "onSubscribe"}, token=writer)
    assert response.status_code == 400 and "name" in response.json()["message"]
    response = mfp.put(WEBHOOKS, {"name": "missing", "eventTypes": "onSubscribe"}, token=writer)
    assert response.status_code == 404 and response.json() == NOT_FOUND


def test_the_name_is_immutable(mfp, writer, app):
    create(mfp, writer)
    response = mfp.put(f"{WEBHOOKS}/SampleWebhook", {"name": "Renamed"}, token=writer)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert "name" in response.json()["message"]
    assert Webhook.objects.get().name == "SampleWebhook"


def test_put_unknown_webhook_is_404_with_the_documented_text(mfp, writer, app):
    response = mfp.put(f"{WEBHOOKS}/nope", {"url": "https://x.example.com"}, token=writer)
    assert response.status_code == 404 and response.json() == NOT_FOUND


@pytest.mark.parametrize(
    "change",
    [{"eventTypes": "onBogus"}, {"url": "http://10.0.0.1/"}, {"url": "gopher://x"}, {"secret": 5}],
)
def test_put_validates_like_post_and_changes_nothing(mfp, writer, app, settings, change):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    create(mfp, writer)
    response = mfp.put(f"{WEBHOOKS}/SampleWebhook", change, token=writer)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    webhook = Webhook.objects.get()
    assert (webhook.url, ",".join(webhook.event_types)) == (SAMPLE["url"], SAMPLE["eventTypes"])


# --- DELETE ---------------------------------------------------------------------------------------


def test_delete_then_404(mfp, writer, app):
    create(mfp, writer)
    response = mfp.delete(f"{WEBHOOKS}/SampleWebhook", token=writer)
    assert response.status_code == 204 and response.content == b""
    assert not Webhook.objects.exists()
    response = mfp.delete(f"{WEBHOOKS}/SampleWebhook", token=writer)
    assert response.status_code == 404 and response.json() == NOT_FOUND


def test_deleting_the_application_deletes_its_webhooks(mfp, writer, app, own, token_for):
    create(mfp, writer)
    token = token_for(own, f"apps.write push.application.{APP_ID}")
    assert mfp.delete(f"apps/{APP_ID}", token=token).status_code == 204
    assert not Webhook.objects.exists()


# --- tenancy --------------------------------------------------------------------------------------


def test_an_outsider_never_sees_or_touches_another_tenants_webhooks(mfp, writer, app, outsider, token_for):
    create(mfp, writer)
    mfp_app(outsider)  # the same applicationId in the other organization
    theirs = token_for(outsider, f"webhooks.write webhooks.read push.application.{APP_ID}")
    assert mfp.get(WEBHOOKS, token=theirs).json()["webhooks"] == []
    assert mfp.get(f"{WEBHOOKS}/SampleWebhook", token=theirs).status_code == 404
    assert mfp.delete(f"{WEBHOOKS}/SampleWebhook", token=theirs).status_code == 404
    # Their own webhook of the same name is a different one.
    assert mfp.post(WEBHOOKS, SAMPLE, token=theirs).status_code == 201
    assert Webhook.objects.count() == 2
    assert mfp.get(f"{WEBHOOKS}/SampleWebhook", token=writer).json()["url"] == SAMPLE["url"]


def test_the_list_costs_the_same_number_of_queries_for_one_or_many_webhooks(mfp, writer, app):
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert mfp.get(WEBHOOKS, token=writer).status_code == 200
        return len(queries)

    create(mfp, writer)
    one = count()
    for index in range(5):
        create(mfp, writer, {**SAMPLE, "name": f"more{index}"})
    assert count() == one
