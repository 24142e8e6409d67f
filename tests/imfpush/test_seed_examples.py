"""The seed document's exchanges, sent verbatim (mobilefirst-push-api.md Appendix A).

Requests A.3-A.9 are the 2016 YAML page's examples byte for byte: its absolute URLs (host
``example.com:443`` over https), headers, bodies (with their odd spacing) and scope
(``devices.write`` for every call, §2.6). Responses are checked for every property the page
documents, with the values the contract gives, and the native JSON types Herald sends.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from django.test import Client

from imfpush.clients import confidential_client_create
from imfpush.models import PUSH_ALL, Registration, Subscription
from players.models import DeviceType, Player
from tests.imfpush.support import expire_latest_token

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_5c4b2175924477a0.txt"
BASE = "https://example.com:443/imfpush/v1"

# A.1, A.2
TOKEN_URL = "https://example.com:443/mfp/api/az/v1/token"
TOKEN_BODY = (
    b"grant_type=client_credentials"
    b"&scope=apps.write%20devices.write%20messages.write%20push.application.myapp"
)
BASIC_ADMIN = "Basic YWRtaW46czNjcmV0"  # admin:s3cret

# A.3 Push Device Registration (POST): the page's payloadJsonExample.
REGISTRATION_URL = "https://example.com:443/imfpush/v1/apps/myapp/devices"
REGISTRATION_BODY = (
    b'{\n    "deviceId" : "12345-6789",\n    "phoneNumber" : "123456789",\n'
    b'    "platform" : "A",\n    "token" : "xyz"\n}\n'
)
# A.4 / A.5 / A.9: the device's URL; A.5's payloadJsonExample (note the space after "}").
DEVICE_URL = "https://example.com:443/imfpush/v1/apps/myapp/devices/12345-6789"
UPDATE_BODY = (
    b'{\n    "deviceId" : "12345-6789",\n    "phoneNumber" : "123456789",\n'
    b'    "token" : "xyz",\n    "userId" : "admin"\n} \n'
)
# A.6, A.7, A.8
LIST_URL = "https://example.com:443/imfpush/v1/apps/myapp/devices?expand=true&filter=platform==A&offset=0&size=10&userId=admin"
TAGS_URL = (
    "https://example.com:443/imfpush/v1/apps/myapp/tags?expand=true&filter=platform==A&offset=0&size=10"
    "&subscriptionCount=10"
)
SUBSCRIPTION_URL = "https://example.com:443/imfpush/v1/apps/myapp/subscriptions/mysubscription"

# The responseProperties each page documents.
GET_PROPERTIES = {
    "createdMode",
    "createdTime",
    "deviceId",
    "lastUpdatedTime",
    "phoneNumber",
    "platform",
    "token",
    "userId",
}
POST_PROPERTIES = GET_PROPERTIES | {"userAgent"}
LIST_ITEM_PROPERTIES = {"deviceId", "phoneNumber", "platform", "token", "userId"}
PAGE_PROPERTIES = {"count", "next", "previous", "totalCount"}
TAG_PROPERTIES = {"createdMode", "createdTime", "description", "href", "lastUpdatedTime", "name"}
SUBSCRIPTION_PROPERTIES = {"deviceId", "platform", "token", "userId"}

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
USER_ID_TOO_LONG = {
    "code": "FPWSE0005E",
    "message": "A device registration has userId longer than 254 characters.",
}
DEVICE_NOT_FOUND = {
    "code": "FPWSE0001E",
    "message": "A device registration with the specified deviceId is not found.",
}


def send(
    method: str, url: str, body: bytes = b"", headers: dict | None = None, content_type: str | None = None
):
    """One request to an absolute https URL, as the page writes it (scheme, host and port kept)."""
    parts = urlsplit(url)
    headers = {"Host": parts.netloc, **(headers or {})}
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    kwargs = {"content_type": content_type} if content_type else {}
    return Client().generic(
        method, path, data=body, secure=parts.scheme == "https", headers=headers, **kwargs
    )


def bearer(token: str, **extra: str) -> dict:
    return {"Accept-Language": "en-US", "Authorization": f"Bearer {token}", **extra}


@pytest.fixture
def admin_client(own):
    """The setup of Appendix A: confidential client ``admin``, secret ``s3cret``, scope ``*``."""
    return confidential_client_create(
        organization=own.organization, client_id="admin", allowed_scope="*", secret="s3cret"
    )[0]


@pytest.fixture
def token(admin_client) -> str:
    """A.1 and A.2: a token, then the application ``myapp``."""
    response = send(
        "POST",
        TOKEN_URL,
        TOKEN_BODY,
        {"Authorization": BASIC_ADMIN},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["scope"] == "apps.write devices.write messages.write push.application.myapp"
    access = body["access_token"]

    created = send(
        "POST", f"{BASE}/apps/", orjson.dumps({"applicationId": "myapp"}), bearer(access), "application/json"
    )
    assert created.status_code == 201
    assert created.json() == {"applicationId": "myapp", "enabled": True, "href": f"{BASE}/apps/myapp"}
    return access


def register(token: str):
    return send(
        "POST",
        REGISTRATION_URL,
        REGISTRATION_BODY,
        bearer(token, **{"User-Agent": "TestUserAgent"}),
        "application/json",
    )


def test_the_literals_are_the_seed_pages_own(request):
    """The bodies and URLs above are the seed's, byte for byte (checked when the seed is at hand)."""
    if not SEED.exists():
        pytest.skip("the seed document is not next to this checkout")
    import yaml

    page = yaml.safe_load(SEED.read_text().split("---\n")[1])
    apis = {api["name"]: api for api in page["apis"]}
    assert apis["Push Device Registration (POST)"]["payloadJsonExample"].encode() == REGISTRATION_BODY
    assert apis["Push Device Registration (POST)"]["example"] == REGISTRATION_URL
    assert apis["Push Device Registration (PUT)"]["payloadJsonExample"].encode() == UPDATE_BODY
    for name in ("GET", "PUT", "DELETE"):
        assert apis[f"Push Device Registration ({name})"]["example"] == DEVICE_URL
    assert apis["Push Device registrations (GET)"]["example"] == LIST_URL
    assert apis["Push Tag (GET)"]["example"] == TAGS_URL
    assert apis["Push Device Subscription (GET)"]["example"] == SUBSCRIPTION_URL
    assert apis["Push Device Subscription (DELETE)"]["example"] == SUBSCRIPTION_URL

    def documented(api: str) -> set[str]:
        return {p["name"] for p in apis[api]["responseProperties"]}

    assert documented("Push Device Registration (GET)") == GET_PROPERTIES
    assert documented("Push Device Registration (POST)") == POST_PROPERTIES
    assert (
        documented("Push Device registrations (GET)")
        == {"devices", "pageInfo"} | LIST_ITEM_PROPERTIES | PAGE_PROPERTIES
    )
    assert documented("Push Tag (GET)") == {"pageInfo", "tags"} | PAGE_PROPERTIES | TAG_PROPERTIES


def test_appendix_a_flow(own, token):
    # A.3 Push Device Registration (POST)
    response = register(token)
    assert response.status_code == 201, response.content
    assert response["Location"] == DEVICE_URL
    assert response["Content-Type"] == "application/json; charset=UTF-8"
    device = response.json()
    assert POST_PROPERTIES | {"href"} == set(device)
    assert device == {
        "createdMode": "API",
        "createdTime": device["createdTime"],
        "deviceId": "12345-6789",
        "href": DEVICE_URL,
        "lastUpdatedTime": device["lastUpdatedTime"],
        "phoneNumber": "123456789",
        "platform": "A",
        "token": "xyz",
        "userAgent": "TestUserAgent",
        "userId": "admin",  # the token's client (§1.4)
    }
    assert TIME.match(device["createdTime"]) and TIME.match(device["lastUpdatedTime"])
    player = Player.objects.get(mfp_registration__device_id="12345-6789")
    assert (
        player.device_type == DeviceType.IOS
        and player.identifier == "xyz"
        and player.external_user_id == "admin"
    )
    assert Subscription.objects.filter(player=player, tag__name=PUSH_ALL).exists()
    assert Registration.objects.get(player=player).sms_player is None  # "123456789" is not E.164

    # A.4 Push Device Registration (GET), with devices.write as the page has it.
    response = send("GET", DEVICE_URL, headers=bearer(token))
    assert response.status_code == 200
    assert set(response.json()) >= GET_PROPERTIES
    assert response.json() == device

    # A.5 Push Device Registration (PUT)
    response = send("PUT", DEVICE_URL, UPDATE_BODY, bearer(token), "application/json")
    assert response.status_code == 200, response.content
    updated = response.json()
    assert set(updated) >= GET_PROPERTIES
    assert {k: v for k, v in updated.items() if k != "lastUpdatedTime"} == {
        k: v for k, v in device.items() if k != "lastUpdatedTime"
    }
    assert TIME.match(updated["lastUpdatedTime"]) and updated["lastUpdatedTime"] >= device["lastUpdatedTime"]

    # A.6 Push Device registrations (GET): expand=true and expend=true give the same.
    response = send("GET", LIST_URL, headers=bearer(token))
    assert response.status_code == 200
    listed = response.json()
    assert listed == {
        "devices": [updated],
        "pageInfo": {"count": 1, "next": "", "previous": "", "totalCount": 1},
    }
    assert set(listed["devices"][0]) >= LIST_ITEM_PROPERTIES and set(listed["pageInfo"]) == PAGE_PROPERTIES
    assert send("GET", LIST_URL.replace("expand=", "expend="), headers=bearer(token)).json() == listed

    # A.7 Push Tag (GET): Push.all matches platform==A through the device of A.3.
    response = send("GET", TAGS_URL, headers=bearer(token))
    assert response.status_code == 200
    tags = response.json()
    assert tags["pageInfo"] == {"count": 1, "next": "", "previous": "", "totalCount": 1}
    [tag] = tags["tags"]
    assert set(tag) >= TAG_PROPERTIES
    assert tag["name"] == PUSH_ALL and tag["href"] == f"{BASE}/apps/myapp/tags/Push.all"
    assert tag["subscriptionCount"] == 1 and tag["createdMode"] == "API"
    assert TIME.match(tag["createdTime"]) and TIME.match(tag["lastUpdatedTime"])
    assert isinstance(tag["description"], str)

    # A.8 Push Device Subscription (GET / DELETE)
    response = send("GET", SUBSCRIPTION_URL, headers=bearer(token))
    assert response.status_code == 404 and response.json()["code"] == "FPWSE0012E"
    response = send("DELETE", SUBSCRIPTION_URL, headers=bearer(token))
    assert response.status_code == 404 and response.json()["code"] == "FPWSE0012E"
    subscription_id = str(Subscription.objects.get(player=player).pk)
    by_id = f"{BASE}/apps/myapp/subscriptions/{subscription_id}"
    response = send("GET", by_id, headers=bearer(token))
    assert response.status_code == 200
    assert set(response.json()) >= SUBSCRIPTION_PROPERTIES
    assert response.json() == {
        "createdMode": "API",
        "createdTime": response.json()["createdTime"],
        "deviceId": "12345-6789",
        "href": by_id,
        "platform": "A",
        "subscriptionId": subscription_id,
        "tagName": PUSH_ALL,
        "token": "xyz",
        "userId": "admin",
    }
    response = send("DELETE", by_id, headers=bearer(token))
    assert response.status_code == 204 and response.content == b""
    assert Player.objects.filter(pk=player.pk).exists()  # device and tag remain; broadcast is off
    assert send("GET", TAGS_URL, headers=bearer(token)).json()["tags"] == []

    # A.9 Push Device Registration (DELETE), twice.
    response = send("DELETE", DEVICE_URL, headers=bearer(token))
    assert response.status_code == 204 and response.content == b""
    assert not Player.objects.filter(pk=player.pk).exists()
    response = send("DELETE", DEVICE_URL, headers=bearer(token))
    assert response.status_code == 404 and response.json() == DEVICE_NOT_FOUND


# --- A.11 Failures --------------------------------------------------------------------------------


def test_a11_no_authorization(token):
    response = send("GET", REGISTRATION_URL)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "FPWSE9001E"


def test_a11_expired_token(admin_client, token):
    expire_latest_token()
    response = send("GET", REGISTRATION_URL, headers=bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a11_missing_scope(admin_client, token):
    narrow = send(
        "POST",
        TOKEN_URL,
        b"grant_type=client_credentials&scope=messages.write%20push.application.myapp",
        {"Authorization": BASIC_ADMIN},
        content_type="application/x-www-form-urlencoded",
    ).json()["access_token"]
    response = send("GET", f"{BASE}/apps/myapp/tags", headers=bearer(narrow))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="tags.read push.application.myapp"'
    )


def test_a11_text_plain_body(token):
    response = send("POST", REGISTRATION_URL, REGISTRATION_BODY, bearer(token), "text/plain")
    assert response.status_code == 405
    assert response.json() == {
        "code": "FPWSE9003E",
        "message": "Unsupported Content type - The content type specified in Content-Type header is not "
        "application/json.",
    }


def test_a11_xml_accept(token):
    register(token)
    response = send("GET", DEVICE_URL, headers=bearer(token, Accept="application/xml"))
    assert response.status_code == 406
    assert response.json() == {
        "code": "FPWSE9004E",
        "message": "Unsupported Accept type - The content type specified in Accept header is not "
        "application/json.",
    }


@pytest.mark.parametrize("registered", [True, False])
def test_a11_user_id_longer_than_254(token, registered):
    if registered:
        register(token)
    body = orjson.dumps({"deviceId": "12345-6789", "userId": "u" * 255})
    response = send("PUT", DEVICE_URL, body, bearer(token), "application/json")
    assert response.status_code == 400 and response.json() == USER_ID_TOO_LONG
