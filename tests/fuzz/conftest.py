"""Fixtures for the fuzz runs: a tenant with rows behind every kind of id the API takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.conftest import ApiClient, Tenant, make_tenant
from tests.fuzz.support import without_rate_limits


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
