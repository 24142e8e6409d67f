"""``/apps/{applicationId}/tags`` (mobilefirst-push-api.md §3.5)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imfpush.models import PUSH_ALL, Subscription, Tag
from tests.imfpush.support import APP_ID, Endpoint, check_common_failures, mfp_app, register

TAGS = f"apps/{APP_ID}/tags"
SCOPES = "tags.read tags.write devices.write subscriptions.write push.application.myapp"


@pytest.fixture
def app(own):
    return mfp_app(own)


@pytest.fixture
def token(own, app, token_for):
    return token_for(own, SCOPES)


def href(name: str) -> str:
    return f"http://testserver/imfpush/v1/apps/{APP_ID}/tags/{name}"


def create(mfp, token, name: str, description: str = "") -> dict:
    response = mfp.post(TAGS, {"name": name, "description": description}, token=token)
    assert response.status_code == 201, response.content
    return response.json()


ENDPOINTS = [
    Endpoint("GET", "apps/{app}/tags", "tags.read", allow="GET, POST"),
    Endpoint("POST", "apps/{app}/tags", "tags.write", body={"name": "SampleTag"}),
    Endpoint("GET", "apps/{app}/tags/SampleTag", "tags.read", allow="GET, PUT, DELETE"),
    Endpoint("PUT", "apps/{app}/tags/SampleTag", "tags.write", body={"description": "x"}),
    Endpoint("DELETE", "apps/{app}/tags/SampleTag", "tags.write"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_common_failures(endpoint, own, outsider, mfp, token_for):
    check_common_failures(endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for)


def test_create_tag(app, mfp, token):
    response = mfp.post(
        TAGS, {"description": "Description about SampleTag", "name": "SampleTag"}, token=token
    )
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == body["href"] == href("SampleTag")
    assert body == {
        "createdMode": "API",
        "createdTime": body["createdTime"],
        "description": "Description about SampleTag",
        "href": href("SampleTag"),
        "lastUpdatedTime": body["createdTime"],
        "name": "SampleTag",
    }
    assert body["createdTime"].endswith("Z") and len(body["createdTime"]) == 20
    assert Tag.objects.get(app=app.app, name="SampleTag").description == "Description about SampleTag"


def test_existing_name_and_push_all_are_409(app, mfp, token):
    create(mfp, token, "SampleTag")
    for name in ("SampleTag", PUSH_ALL):
        response = mfp.post(TAGS, {"name": name}, token=token)
        assert response.status_code == 409 and response.json()["code"] == "FPWSE0002E"
    assert create(mfp, token, "sampletag")["name"] == "sampletag"  # names are case-sensitive


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 5}, {"name": "a/b"}, {"name": "x" * 256}])
def test_invalid_name_is_400(app, mfp, token, body):
    response = mfp.post(TAGS, body, token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert "name" in response.json()["message"]


def test_invalid_description_is_400(app, mfp, token):
    response = mfp.post(TAGS, {"name": "t", "description": ["x"]}, token=token)
    assert response.status_code == 400 and "description" in response.json()["message"]


def test_get_update_delete_tag(app, mfp, token):
    created = create(mfp, token, "SampleTag", "old")
    assert mfp.get(f"{TAGS}/SampleTag", token=token).json() == created
    response = mfp.put(f"{TAGS}/SampleTag", {"description": "New text", "name": "SampleTag"}, token=token)
    assert response.status_code == 200
    assert response.json()["description"] == "New text" and response.json()["name"] == "SampleTag"
    assert response.json()["createdTime"] == created["createdTime"]
    assert mfp.put(f"{TAGS}/SampleTag", {}, token=token).json()["description"] == "New text"
    assert mfp.delete(f"{TAGS}/SampleTag", token=token).status_code == 204
    assert not Tag.objects.filter(name="SampleTag").exists()
    assert mfp.get(f"{TAGS}/SampleTag", token=token).status_code == 404


def test_tag_name_is_immutable(app, mfp, token):
    create(mfp, token, "SampleTag")
    response = mfp.put(f"{TAGS}/SampleTag", {"name": "Other"}, token=token)
    assert response.status_code == 400 and "name" in response.json()["message"]
    assert Tag.objects.filter(name="SampleTag").exists() and not Tag.objects.filter(name="Other").exists()


def test_push_all_cannot_be_deleted(app, mfp, token):
    response = mfp.delete(f"{TAGS}/{PUSH_ALL}", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert Tag.objects.filter(app=app.app, name=PUSH_ALL).exists()
    # Its description may change.
    assert mfp.put(f"{TAGS}/{PUSH_ALL}", {"description": "all"}, token=token).json()["description"] == "all"


def test_unknown_tag_is_404(app, mfp, token):
    expected = {"code": "FPWSE0001E", "message": "The tag with the specified tagName is not found."}
    for response in (
        mfp.get(f"{TAGS}/nope", token=token),
        mfp.put(f"{TAGS}/nope", {"description": "x"}, token=token),
        mfp.delete(f"{TAGS}/nope", token=token),
    ):
        assert response.status_code == 404 and response.json() == expected
    german = mfp.get(f"{TAGS}/nope", token=token, headers={"Accept-Language": "de"})
    assert german["Content-Language"] == "de" and german.json()["message"] != expected["message"]


def test_delete_removes_the_tags_subscriptions(app, mfp, token):
    create(mfp, token, "Gold")
    register(mfp, token, "dev-1")
    assert mfp.post(f"apps/{APP_ID}/subscriptions", {"deviceId": "dev-1", "tagName": "Gold"}, token=token)
    assert Subscription.objects.filter(tag__name="Gold").count() == 1
    mfp.delete(f"{TAGS}/Gold", token=token)
    assert not Subscription.objects.filter(tag__name="Gold").exists()
    assert Subscription.objects.filter(tag__name=PUSH_ALL).count() == 1


def test_list_includes_push_all_abbreviated_and_expanded(app, mfp, token):
    create(mfp, token, "SampleTag", "About")
    listed = mfp.get(TAGS, token=token).json()
    assert listed == {
        "pageInfo": {"count": 2, "next": "", "previous": "", "totalCount": 2},
        "tags": [
            {"href": href(PUSH_ALL), "name": PUSH_ALL},
            {"href": href("SampleTag"), "name": "SampleTag"},
        ],
    }
    expanded = mfp.get(f"{TAGS}?expend=true", token=token).json()["tags"]
    assert expanded[1] == mfp.get(f"{TAGS}/SampleTag", token=token).json()
    assert set(expanded[0]) == {
        "createdMode",
        "createdTime",
        "description",
        "href",
        "lastUpdatedTime",
        "name",
    }


def test_subscription_count_flag(app, mfp, token):
    create(mfp, token, "SampleTag")
    register(mfp, token, "dev-1")
    for flag in ("true", "10", "True"):
        tags = mfp.get(f"{TAGS}?subscriptionCount={flag}", token=token).json()["tags"]
        assert tags == [
            {"href": href(PUSH_ALL), "name": PUSH_ALL, "subscriptionCount": 1},
            {"href": href("SampleTag"), "name": "SampleTag", "subscriptionCount": 0},
        ]
    for flag in ("false", "0", ""):
        tags = mfp.get(f"{TAGS}?subscriptionCount={flag}", token=token).json()["tags"]
        assert all("subscriptionCount" not in tag for tag in tags)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("filter=platform==A", [PUSH_ALL, "Apple"]),
        ("filter=platform==G", [PUSH_ALL]),
        ("filter=platform==W", []),
        ("filter=platform==A,W", [PUSH_ALL, "Apple"]),
        ("filter=name==Apple", ["Apple"]),
        ("filter=name=@PL", ["Apple"]),
        ("filter=description=@fruit", ["Apple", "Pear"]),
        ("filter=description==red fruit", ["Apple"]),
        ("filter=platform==A&filter=name=@pp", ["Apple"]),
    ],
)
def test_list_filters(app, mfp, token, query, expected):
    create(mfp, token, "Apple", "red fruit")
    create(mfp, token, "Pear", "green fruit")
    register(mfp, token, "ios", platform="A")
    register(mfp, token, "android", platform="G")
    mfp.post(f"apps/{APP_ID}/subscriptions", {"deviceId": "ios", "tagName": "Apple"}, token=token)
    response = mfp.get(f"{TAGS}?{query}", token=token)
    assert response.status_code == 200, response.content
    assert [tag["name"] for tag in response.json()["tags"]] == expected


@pytest.mark.parametrize("query", ["filter=platform=@A", "filter=userId==x", "filter=name"])
def test_invalid_filter_is_400(app, mfp, token, query):
    response = mfp.get(f"{TAGS}?{query}", token=token)
    assert response.status_code == 400 and response.json()["code"] == "FPWSE0007E"


def test_list_paging(app, mfp, token):
    for n in range(3):
        create(mfp, token, f"tag{n}")
    page = mfp.get(f"{TAGS}?offset=1&size=2", token=token).json()
    assert [tag["name"] for tag in page["tags"]] == ["tag0", "tag1"]
    assert page["pageInfo"]["totalCount"] == 4 and page["pageInfo"]["count"] == 2
    assert page["pageInfo"]["next"].endswith("offset=3") and page["pageInfo"]["previous"].endswith("offset=0")


def test_list_with_device_side_and_yaml_scopes(own, app, mfp, token_for):
    for scope in ("push.mobileclient", "devices.write"):
        token = token_for(own, f"{scope} push.application.myapp")
        assert mfp.get(TAGS, token=token).status_code == 200
        assert mfp.get(f"{TAGS}/{PUSH_ALL}", token=token).status_code == 403


def test_other_apps_tags_are_not_visible(own, app, mfp, token, token_for):
    other = mfp_app(own, "otherapp")
    Tag.objects.create(app=other.app, name="Secret")
    assert [tag["name"] for tag in mfp.get(TAGS, token=token).json()["tags"]] == [PUSH_ALL]
    assert mfp.get(f"{TAGS}/Secret", token=token).status_code == 404


def test_nul_is_400_in_queries_and_bodies_and_404_in_paths(app, mfp, token):
    assert mfp.get(f"{TAGS}?filter=name==%00", token=token).json()["code"] == "FPWSE0007E"
    for body in ({"name": "a\x00"}, {"name": "ok", "description": "\x00"}):
        response = mfp.post(TAGS, body, token=token)
        assert response.status_code == 400 and response.json()["code"] == "FPWSE0005E"
    assert mfp.put(f"{TAGS}/{PUSH_ALL}", {"description": "\x00"}, token=token).status_code == 400
    for response in (mfp.get(f"{TAGS}/a%00", token=token), mfp.delete(f"{TAGS}/a%00", token=token)):
        assert response.status_code == 404 and response.json()["code"] == "FPWSE0001E"


def test_list_query_count_does_not_grow_with_tags(app, mfp, token):
    register(mfp, token, "dev-1")
    query = f"{TAGS}?expand=true&subscriptionCount=true&filter=platform==A"
    with CaptureQueriesContext(connection) as few:
        assert len(mfp.get(query, token=token).json()["tags"]) == 1
    for n in range(5):
        create(mfp, token, f"tag{n}")
        mfp.post(f"apps/{APP_ID}/subscriptions", {"deviceId": "dev-1", "tagName": f"tag{n}"}, token=token)
    with CaptureQueriesContext(connection) as many:
        assert len(mfp.get(query, token=token).json()["tags"]) == 6
    assert len(many) == len(few)
