"""Request limits (issue 8 §6, README "Limits"): every limit answers its documented 4xx, never a
500, and the request changes nothing.

Body size, JSON nesting depth, array lengths and string lengths, on the OneSignal surface (both
roots), on ``/imfpush/v1`` and on the dashboard's JSON fields. Each case also has its
just-inside twin where that is cheap to state, so the limit is where the README says it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.models import Membership
from core.api.limits import MAX_JSON_DEPTH
from imfpush.clients import confidential_client_create
from imfpush.services import mfp_application_create
from tests.conftest import make_tenant
from tests.factories import PlayerFactory
from tests.security.support import changed_tables, module_data, rolled_back, snapshot
from tests.security.test_isolation_imfpush import _ALL_SCOPES, token

pytestmark = pytest.mark.django_db

CLIENT = Client()
LONG = "x" * 1025


def nested(levels: int) -> Any:
    """A value of ``levels`` nested objects."""
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_text(levels: int) -> str:
    """``levels`` nested objects as JSON text (json.dumps itself cannot write a very deep one)."""
    return '{"a":' * levels + '"x"' + "}" * levels


@dataclass
class World:
    app_id: str
    app_key: str
    user_key: str
    player_id: str
    bearer: str
    staff: Client


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    with module_data(django_db_blocker):
        tenant = make_tenant()
        player = PlayerFactory(app=tenant.app, external_user_id="u1")
        mfp_application_create(organization=tenant.organization, body={"applicationId": "limits"})
        confidential_client_create(organization=tenant.organization, client_id="limits-client")
        bearer = token(("limits-client", None), f"{_ALL_SCOPES} push.application.limits")
        user = get_user_model().objects.create_superuser("limits-operator", password="pw")
        Membership.objects.create(organization=tenant.organization, user=user, role=Membership.Role.OWNER)
        staff = Client()
        staff.force_login(user)
        yield World(str(tenant.app.id), tenant.app_key, tenant.user_key, str(player.id), bearer, staff)


@pytest.fixture
def world(module_world, db):
    return module_world


def onesignal(world: World, method: str, path: str, body: Any, *, root: str = "/api/v1", user_key=False):
    key = world.user_key if user_key else world.app_key
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return CLIENT.generic(
        method, root + path, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Key {key}"
    )


def mfp(world: World, method: str, path: str, body: Any):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return CLIENT.generic(
        method,
        f"/imfpush/v1/apps/limits/{path}",
        data=data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.bearer}",
    )


def unchanged(call):
    """Run ``call`` in a rolled-back savepoint; return its response and whether the database
    changed."""
    with rolled_back():
        before = snapshot()
        response = call()
        after = snapshot()
    return response, changed_tables(before, after)


def notification(world: World, **fields) -> dict:
    return {"app_id": world.app_id, "included_segments": ["All"], "contents": {"en": "Hi"}, **fields}


def player(world: World, **fields) -> dict:
    return {"app_id": world.app_id, "device_type": 1, "identifier": "limits-token", **fields}


# (id, surface, method, path, body builder, status, text in the error)
ONESIGNAL_CASES = [
    # Arrays.
    (
        "2001 player ids",
        "POST",
        "/notifications",
        lambda w: notification(w, included_segments=None, include_player_ids=[w.player_id] * 2001),
        400,
        "at most 2000",
    ),
    (
        "2001 external ids",
        "POST",
        "/notifications",
        lambda w: notification(w, included_segments=None, include_external_user_ids=["u"] * 2001),
        400,
        "at most 2000",
    ),
    (
        "2001 segments",
        "POST",
        "/notifications",
        lambda w: notification(w, included_segments=["All"] * 2001),
        400,
        "at most 2000",
    ),
    (
        "201 filters",
        "POST",
        "/notifications",
        lambda w: notification(
            w,
            included_segments=None,
            filters=[{"field": "session_count", "relation": ">", "value": "1"}] * 201,
        ),
        400,
        "at most 200",
    ),
    (
        "4 buttons",
        "POST",
        "/notifications",
        lambda w: notification(w, buttons=[{"id": f"b{i}", "text": "x"} for i in range(4)]),
        400,
        "at most 3",
    ),
    (
        "3 web buttons",
        "POST",
        "/notifications",
        lambda w: notification(w, web_buttons=[{"id": f"b{i}", "text": "x"} for i in range(3)]),
        400,
        "at most 2",
    ),
    (
        "101 tags",
        "POST",
        "/players",
        lambda w: player(w, tags={f"k{i}": "v" for i in range(101)}),
        400,
        "at most 100",
    ),
    (
        "101 purchases",
        "POST",
        "/players/{player}/on_purchase",
        lambda w: {"app_id": w.app_id, "purchases": [{"sku": "a", "amount": 1}] * 101},
        400,
        "100",
    ),
    (
        "201 segment filters",
        "POST",
        "/apps/{app}/segments",
        lambda w: {"name": "s", "filters": [{"field": "session_count", "relation": ">", "value": "1"}] * 201},
        400,
        "at most 200",
    ),
    # Strings.
    (
        "1025-character external id in a list",
        "POST",
        "/notifications",
        lambda w: notification(w, included_segments=None, include_external_user_ids=[LONG]),
        400,
        "at most 1024",
    ),
    (
        "1025-character segment name in a list",
        "POST",
        "/notifications",
        lambda w: notification(w, included_segments=[LONG]),
        400,
        "at most 1024",
    ),
    (
        "129-character filter key",
        "POST",
        "/notifications",
        lambda w: notification(
            w,
            included_segments=None,
            filters=[{"field": "tag", "key": "k" * 129, "relation": "=", "value": "v"}],
        ),
        400,
        "at most 128",
    ),
    (
        "1025-character filter value",
        "POST",
        "/notifications",
        lambda w: notification(
            w, included_segments=None, filters=[{"field": "tag", "key": "k", "relation": "=", "value": LONG}]
        ),
        400,
        "at most 1024",
    ),
    (
        "129-character notification name",
        "POST",
        "/notifications",
        lambda w: notification(w, name="n" * 129),
        400,
        "at most 128",
    ),
    (
        "65-character collapse_id",
        "POST",
        "/notifications",
        lambda w: notification(w, collapse_id="c" * 65),
        400,
        "at most 64",
    ),
    (
        "data over 2048 bytes",
        "POST",
        "/notifications",
        lambda w: notification(w, data={"k": "v" * 2100}),
        400,
        "2048 bytes",
    ),
    (
        "1025-character identifier",
        "POST",
        "/players",
        lambda w: player(w, identifier=LONG),
        400,
        "at most 1024",
    ),
    (
        "256-character external_user_id",
        "POST",
        "/players",
        lambda w: player(w, external_user_id="u" * 256),
        400,
        "255",
    ),
    (
        "129-character tag key",
        "POST",
        "/players",
        lambda w: player(w, tags={"k" * 129: "v"}),
        400,
        "1 to 128",
    ),
    ("1025-character tag value", "POST", "/players", lambda w: player(w, tags={"k": LONG}), 400, "1024"),
    (
        "129-character segment name",
        "POST",
        "/apps/{app}/segments",
        lambda w: {"name": "s" * 129, "filters": [{"field": "session_count", "relation": ">", "value": "1"}]},
        400,
        "at most 128",
    ),
    (
        "129-character outcome name",
        "POST",
        "/outcomes/measure",
        lambda w: {"app_id": w.app_id, "id": "o" * 129, "device_type": 1},
        400,
        "at most 128",
    ),
    ("201-character app name", "POST", "/apps", lambda w: {"name": "a" * 201}, 400, "200"),
    # Depth.
    (
        "body nested 33 levels",
        "POST",
        "/notifications",
        lambda w: notification(w, data=nested(MAX_JSON_DEPTH)),
        400,
        "nested more than 32",
    ),
    (
        "body nested 500 levels",
        "POST",
        "/notifications",
        lambda w: json.dumps(notification(w, data="DEEP")).replace('"DEEP"', deep_text(500)),
        400,
        "nested more than 32",
    ),
    (
        "body nested 1000 levels",
        "POST",
        "/players",
        lambda w: json.dumps(player(w, tags="DEEP")).replace('"DEEP"', deep_text(1000)),
        400,
        "nested more than 32",
    ),
    (
        "body nested 2000 levels (beyond orjson's own limit)",
        "POST",
        "/players",
        lambda w: deep_text(2000),
        400,
        "Invalid JSON",
    ),
    (
        "a service account string nested 900 levels",
        "PUT",
        "/apps/{app}",
        lambda w: {"fcm_v1_service_account_json": "[" * 900 + "]" * 900},
        400,
        "service-account JSON",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "text"),
    ONESIGNAL_CASES,
    ids=lambda v: v if isinstance(v, str) and not v.startswith("/") else None,
)
@pytest.mark.parametrize("root", ["/api/v1", ""])
def test_onesignal_limits(case, method, path, body, status, text, root, world):
    path = path.format(app=world.app_id, player=world.player_id)
    user_key = path.startswith("/apps") and not path.endswith("/segments")
    response, changed = unchanged(
        lambda: onesignal(world, method, path, body(world), root=root, user_key=user_key)
    )
    assert response.status_code == status, (case, response.content[:300])
    assert any(text in error for error in response.json()["errors"]), (case, response.json())
    assert not changed, (case, changed)


def test_nesting_up_to_the_limit_is_accepted(world):
    """32 levels parse (this body is then refused for its data size, not its depth); 33 do not."""
    response = onesignal(world, "POST", "/players", player(world, extra=nested(31)))
    assert response.status_code == 200, response.content
    deeper = onesignal(world, "POST", "/players", player(world, extra=nested(32)))
    assert deeper.status_code == 400 and "nested more than 32" in deeper.json()["errors"][0]


def test_oversized_bodies_are_413_on_both_apis(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    big = notification(world, data={"k": "v" * 5000})
    for root in ("/api/v1", ""):
        response, changed = unchanged(
            lambda root=root: onesignal(world, "POST", "/notifications", big, root=root)
        )
        assert response.status_code == 413 and response.json() == {"errors": ["Request body is too large"]}
        assert not changed
    # /imfpush/v1 has its own 1 MiB limit (imfpush/api/base.py MAX_BODY_BYTES).
    response, changed = unchanged(
        lambda: mfp(world, "POST", "tags", {"name": "t", "description": "d" * (1 << 20)})
    )
    assert response.status_code == 413 and response.json()["code"] == "FPWSE9006E" and not changed


MFP_CASES = [
    (
        "10001 target device ids",
        "messages",
        {"message": {"alert": "Hi"}, "target": {"deviceIds": ["d"] * 10001}},
        400,
        "10000",
    ),
    (
        "256-character target device id",
        "messages",
        {"message": {"alert": "Hi"}, "target": {"deviceIds": ["d" * 256]}},
        400,
        "255",
    ),
    (
        "256-character target user id",
        "messages",
        {"message": {"alert": "Hi"}, "target": {"userIds": ["u" * 256]}},
        400,
        "255",
    ),
    ("101 bulk messages", "messages/bulk", [{"message": {"alert": "Hi"}}] * 101, 400, "100"),
    (
        "payload over 2048 bytes",
        "messages",
        {"message": {"alert": "Hi"}, "settings": {"gcm": {"payload": {"k": "v" * 2100}}}},
        400,
        "2048",
    ),
    (
        "payload string nested 900 levels",
        "messages",
        {"message": {"alert": "Hi"}, "settings": {"gcm": {"payload": "[" * 900 + "]" * 900}}},
        400,
        "payload",
    ),
    (
        "10001 tag names to subscribe",
        "subscriptions",
        {"deviceId": "d", "tagNames": ["t"] * 10001},
        400,
        "10000",
    ),
    ("256-character deviceId", "devices", {"deviceId": "d" * 256, "platform": "G", "token": "t"}, 400, "255"),
    ("1025-character token", "devices", {"deviceId": "d", "platform": "G", "token": "t" * 1025}, 400, "1024"),
    (
        "variables over 4096 bytes",
        "devices",
        {"deviceId": "d", "platform": "G", "token": "t", "variables": {"k": "v" * 4100}},
        400,
        "4096",
    ),
    ("256-character tag name", "tags", {"name": "t" * 256}, 400, "255"),
    ("1025-character tag description", "tags", {"name": "t", "description": LONG}, 400, "1024"),
    (
        "256-character webhook name",
        "webhooks",
        {"name": "w" * 256, "url": "https://93.184.216.34/x", "eventTypes": "onDeviceRegister"},
        400,
        "255",
    ),
    (
        "body nested 33 levels",
        "devices",
        {"deviceId": "d", "platform": "G", "token": "t", "variables": nested(MAX_JSON_DEPTH)},
        400,
        "invalid JSON",
    ),
    (
        "body nested 1000 levels",
        "messages",
        '{"message": {"alert": "Hi"}, "settings": {"gcm": {"payload": ' + deep_text(1000) + "}}}",
        400,
        "invalid JSON",
    ),
]


@pytest.mark.parametrize(("case", "path", "body", "status", "text"), MFP_CASES, ids=[c[0] for c in MFP_CASES])
def test_imfpush_limits(case, path, body, status, text, world):
    response, changed = unchanged(lambda: mfp(world, "POST", path, body))
    assert response.status_code == status, (case, response.content[:300])
    assert response.json()["code"] in ("FPWSE0004E", "FPWSE0005E"), (case, response.json())
    assert text in response.json()["message"], (case, response.json())
    assert not changed, (case, changed)


def test_translated_limit_messages(world):
    response = CLIENT.post(
        "/imfpush/v1/apps/limits/tags",
        data=json.dumps({"name": "t", "description": LONG}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.bearer}", "Accept-Language": "de"},
    )
    assert response.status_code == 400 and "höchstens 1024 Zeichen" in response.json()["message"]


@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("admin:segments_segment_count", {"filters": "[" * 5000 + "]" * 5000}),
        ("admin:segments_segment_add", {"name": "s", "filters": "[" * 5000 + "]" * 5000}),
        ("admin:notifications_template_add", {"name": "t", "fields": json.dumps(nested(100))}),
    ],
)
def test_dashboard_json_fields_refuse_deep_nesting(url_name, data, world):
    data = {"app": world.app_id, **data}
    response, changed = unchanged(lambda: world.staff.post(reverse(url_name), data))
    assert response.status_code == 200, response.status_code  # the form again, with its error
    assert b"nested more than 32 levels" in response.content
    assert not changed
