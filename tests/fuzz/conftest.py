"""Fixtures for the fuzz runs: a tenant with rows behind every kind of id the API takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from imfpush.clients import confidential_client_create
from imfpush.schema import SCOPES
from tests.conftest import ApiClient, Tenant, make_tenant
from tests.fuzz.support import without_rate_limits
from tests.imfpush.conftest import MfpClient, request_token
from tests.imfpush.support import mfp_app


@dataclass
class OneSignalWorld:
    tenant: Tenant
    ids: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture
def onesignal_world(db, settings) -> OneSignalWorld:
    """An app with a player per channel, a sent-to notification, a segment and an external user."""
    without_rate_limits(settings)
    tenant = make_tenant()
    app_id = str(tenant.app.id)
    api = ApiClient("")
    players = []
    for body in (
        {"device_type": 1, "identifier": "fcm-token-fuzz", "external_user_id": "user-1", "tags": {"a": "1"}},
        {"device_type": 0, "identifier": "ab" * 32, "external_user_id": "user-2"},
        {"device_type": 11, "identifier": "fuzz@example.com"},
        {"device_type": 14, "identifier": "+15555550100"},
    ):
        response = api.post("/players", {"app_id": app_id, **body})
        assert response.status_code == 200, response.content
        players.append(response.json()["id"])
    response = api.post(
        "/notifications",
        {"app_id": app_id, "contents": {"en": "hi"}, "include_player_ids": players[:2]},
        key=tenant.app_key,
    )
    assert response.status_code == 200, response.content
    notification = response.json()["id"]
    response = api.post(
        f"/apps/{app_id}/segments",
        {"name": "fuzzers", "filters": [{"field": "tag", "key": "a", "relation": "=", "value": "1"}]},
        key=tenant.app_key,
    )
    assert response.status_code == 201, response.content
    segment = response.json()["id"]
    ids = {
        "app_id": [app_id],
        "organization_id": [str(tenant.organization.id)],
        "player_id": players,
        "id": players,
        "notification_id": [notification],
        "segment_id": [segment],
        "external_user_id": ["user-1", "user-2"],
        "segment_name": ["fuzzers", "Subscribed Users"],
    }
    return OneSignalWorld(tenant=tenant, ids=ids)


@dataclass
class MfpWorld:
    token: str
    ids: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture
def mfp_world(db, settings) -> MfpWorld:
    """An MFP application with a device, a tag, a subscription, a message and a webhook, and a
    token of a confidential client allowed every scope (``*``)."""
    without_rate_limits(settings)
    tenant = make_tenant()
    mfp_app(tenant, "com.example.fuzz")
    client_id, secret = (
        "fuzzer",
        confidential_client_create(organization=tenant.organization, client_id="fuzzer", allowed_scope="*")[
            1
        ],
    )
    scope = " ".join([*SCOPES, "push.application.com.example.fuzz"])
    token = request_token(client_id, secret, scope)["access_token"]
    mfp = MfpClient(token)
    base = "apps/com.example.fuzz"
    for path, body in (
        ("devices", {"deviceId": "dev-1", "token": "tok-1", "platform": "G", "userId": "user-1"}),
        ("devices", {"deviceId": "dev-2", "token": "ab" * 32, "platform": "A"}),
        ("tags", {"name": "Gold", "description": "gold members"}),
        (
            "webhooks",
            {"name": "hook", "url": "https://hooks.example.com/in", "eventTypes": "onDeviceRegister"},
        ),
    ):
        response = mfp.post(f"{base}/{path}", body)
        assert response.status_code == 201, response.content
    response = mfp.post(f"{base}/subscriptions", {"deviceId": "dev-1", "tagName": "Gold"})
    assert response.status_code == 201, response.content
    subscription = response.json()["subscriptionId"]
    response = mfp.post(f"{base}/messages", {"message": {"alert": "hi"}, "target": {"deviceIds": ["dev-1"]}})
    assert response.status_code == 202, response.content
    message = response.json()["messageId"]
    return MfpWorld(
        token=token,
        ids={
            "applicationId": ["com.example.fuzz"],
            "deviceId": ["dev-1", "dev-2"],
            "tagName": ["Gold", "Push.all"],
            "subscriptionId": [subscription],
            "messageId": [message],
            "webhookName": ["hook"],
            "userId": ["user-1"],
        },
    )
