"""The official OneSignal python clients (2.2.1 and 5.18.0) against a live Herald server.

Each call runs in a subprocess (tests/e2e/client_scripts) with one client version on its path;
the clients type-check every response, so a field of the wrong type fails the script. The
assertions here check the values the client decoded and the rows in the database.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest

from apps.models import App
from core.api.errors import CURRENT_KEY_ERROR, LEGACY_APP_KEY_ERROR, LEGACY_USER_KEY_ERROR, NO_USER_WITH_ID
from players.export_services import CONCURRENT_EXPORT
from players.models import CsvExport, Player

pytestmark = pytest.mark.e2e

ROOTS = pytest.mark.parametrize("root", ["/api/v1", ""], ids=["api-v1-host", "root-host"])
NOT_READY = {"errors": ["This export is not ready yet; try again shortly"]}


def bad_key_error(root: str, *, user_key: bool) -> tuple[int, dict]:
    if root == "/api/v1":
        return 400, LEGACY_USER_KEY_ERROR if user_key else LEGACY_APP_KEY_ERROR
    return 403, CURRENT_KEY_ERROR


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the live server
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def assert_export_url(url: str, base: str, app_id: str) -> CsvExport:
    match = re.fullmatch(
        rf"{re.escape(base)}/csv_exports/{app_id}/users_(?P<token>[0-9a-f]{{32}})_\d{{4}}-\d{{2}}-\d{{2}}\.csv\.gz",
        url,
    )
    assert match, url
    export = CsvExport.objects.get(token=match["token"])
    assert str(export.app_id) == app_id
    assert url == f"{base}/{export.relative_path}"
    return export


@ROOTS
def test_os221_player_endpoints_round_trip(live_server, tenant, run_client, root):
    app_id = str(tenant.app.id)
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_client(
        "os221",
        "os221_players.py",
        "players",
        live_server.url + root,
        app_id,
        tenant.app_key,
        extra={"prefix": prefix},
    )
    assert result["client_version"] == "2.2.1"

    created_id = result["created"]["id"]
    assert result["created"] == {"type": "CreatePlayerSuccessResponse", "success": True, "id": created_id}
    assert str(uuid.UUID(created_id)) == created_id
    # POST /players upserts on the identifier and answers the existing id.
    assert result["upserted"] == {"success": True, "id": created_id}
    second_id = result["second"]["id"]
    assert second_id != created_id

    page_one, page_rest = result["page_one"], result["page_rest"]
    assert page_one["type"] == "PlayerSlice"
    assert (page_one["total_count"], page_one["offset"], page_one["limit"]) == (2, 0, 1)
    assert (page_rest["total_count"], page_rest["offset"], page_rest["limit"]) == (2, 1, 300)
    assert len(page_one["players"]) == 1 and len(page_rest["players"]) == 1
    listed = [page_one["players"][0]["id"], page_rest["players"][0]["id"]]
    assert listed == sorted([created_id, second_id])  # sorted by id, paged without overlap
    assert all(p["_type"] == "Player" and p["app_id"] == app_id for p in page_one["players"])

    fetched = result["fetched"]
    assert fetched["_type"] == "Player"
    assert fetched["id"] == created_id and fetched["app_id"] == app_id
    assert fetched["identifier"] == f"{prefix}-token-1"
    assert fetched["device_type"] == 1
    assert fetched["language"] == "en" and fetched["timezone"] == 3600
    assert fetched["game_version"] == "2.0"  # applied by the upsert
    assert fetched["external_user_id"] == f"{prefix}-ext"
    assert fetched["tags"] == {"plan": "free", "drop": "me"}
    assert fetched["invalid_identifier"] is False
    assert fetched["notification_types"] == 1
    assert isinstance(fetched["created_at"], int) and isinstance(fetched["last_active"], int)
    assert isinstance(fetched["amount_spent"], float)

    assert result["updated"] == {"type": "UpdatePlayerSuccessResponse", "success": True}
    assert result["tagged"] == {"type": "UpdatePlayerTagsSuccessResponse", "success": True}
    # PUT merges tags and "" deletes a key; edit-by-external-id merged "vip" on top.
    assert result["after"]["tags"] == {"plan": "free", "level": "5", "vip": "yes"}

    assert result["deleted"] == {"type": "DeletePlayerSuccessResponse", "success": True}
    assert result["delete_again"]["status"] == 404
    assert result["delete_again"]["body"] == {"success": False}
    assert result["get_deleted"]["status"] == 400
    assert result["get_deleted"]["body"] == {"errors": [NO_USER_WITH_ID]}
    assert result["tags_unknown_external_id"]["status"] == 400
    assert result["tags_unknown_external_id"]["body"] == {"errors": [NO_USER_WITH_ID]}

    players = list(Player.objects.filter(app=tenant.app))
    assert [str(p.id) for p in players] == [created_id]
    player = players[0]
    assert player.identifier == f"{prefix}-token-1"
    assert player.device_type == 1
    assert player.game_version == "2.0"
    assert player.external_user_id == f"{prefix}-ext"
    assert player.tags == {"plan": "free", "level": "5", "vip": "yes"}
    assert not Player.objects.filter(pk=second_id).exists()


@ROOTS
def test_os221_export_players_pending_concurrent_and_extra_fields(
    live_server, tenant, run_client, enqueued_exports, root
):
    app_id = str(tenant.app.id)
    host = live_server.url + root

    def export(extra_fields=None) -> dict:
        return run_client(
            "os221",
            "os221_players.py",
            "export",
            host,
            app_id,
            tenant.app_key,
            extra={"extra_fields": extra_fields},
        )

    first = export()
    assert first["type"] == "ExportPlayersSuccessResponse"
    pending = assert_export_url(first["csv_file_url"], live_server.url, app_id)
    assert pending.status == CsvExport.Status.PENDING
    assert pending.extra_fields == []
    assert enqueued_exports == [str(pending.id)]
    # The link answers 403 until the file is ready.
    status, body = http_get(first["csv_file_url"])
    assert (status, json.loads(body)) == (403, NOT_READY)

    concurrent = export(["country"])
    assert concurrent["status"] == 400
    assert concurrent["body"] == {"errors": [CONCURRENT_EXPORT]}
    assert CsvExport.objects.filter(app=tenant.app).count() == 1

    CsvExport.objects.filter(pk=pending.pk).update(status=CsvExport.Status.READY)
    fields = ["web_p256", "external_user_id", "country", "location"]
    second = export(fields)
    assert second["type"] == "ExportPlayersSuccessResponse"
    with_fields = assert_export_url(second["csv_file_url"], live_server.url, app_id)
    assert with_fields.pk != pending.pk
    assert with_fields.status == CsvExport.Status.PENDING
    assert with_fields.extra_fields == fields  # request order kept
    assert enqueued_exports == [str(pending.id), str(with_fields.id)]


@ROOTS
def test_os221_bad_or_foreign_key_raises_api_exception(live_server, tenant, other_tenant, run_client, root):
    expected_status, expected_body = bad_key_error(root, user_key=False)
    for key in ("hak_not-a-real-key", other_tenant.app_key):
        result = run_client(
            "os221",
            "os221_players.py",
            "bad_key",
            live_server.url + root,
            str(tenant.app.id),
            key,
            extra={"player_id": str(uuid.uuid4())},
        )
        for call in ("get_players", "export_players", "delete_player"):
            assert result[call]["status"] == expected_status, (key, call, result[call])
            assert result[call]["body"] == expected_body, (key, call)
    assert not CsvExport.objects.exists()


@ROOTS
def test_os518_app_endpoints_and_export_subscriptions(
    live_server, tenant, other_tenant, run_client, enqueued_exports, root
):
    host = live_server.url + root
    org_id = str(tenant.organization.id)
    name = f"E2E {uuid.uuid4().hex[:8]}"
    result = run_client(
        "os518",
        "os518_apps.py",
        "apps",
        host,
        tenant.user_key,
        "unused-rest-key",
        extra={"name": name, "new_name": name + " renamed"},
    )
    assert result["client_version"] == "5.18.0"

    assert result["listed"]["type"] == "Apps"
    listed = result["listed"]["apps"]
    assert [a["id"] for a in listed] == [str(tenant.app.id)]  # not other_tenant's app
    assert listed[0]["_type"] == "App"
    assert listed[0]["name"] == tenant.app.name
    assert listed[0]["organization_id"] == org_id
    assert listed[0]["players"] == 0 and listed[0]["messageable_players"] == 0

    created = result["created"]
    created_id = created["id"]
    assert created["_type"] == "App"
    assert created["name"] == name
    assert created["chrome_web_origin"] == "https://shop.example"
    assert created["site_name"] == "Shop"
    assert created["apns_env"] == "sandbox"
    assert created["gcm_key"] is None  # secrets are never echoed
    assert created["organization_id"] == org_id
    assert created["players"] == 0
    assert created["basic_auth_key"].startswith("hak_")  # shown once, at creation

    fetched = result["fetched"]
    assert fetched["id"] == created_id and fetched["name"] == name
    assert fetched["basic_auth_key"] is None

    updated = result["updated"]
    assert updated["id"] == created_id
    assert updated["name"] == name + " renamed"
    assert updated["site_name"] == "Shop 2"
    assert updated["apns_env"] == "production"
    assert updated["chrome_web_origin"] == "https://shop.example"  # a PUT is partial
    assert set(result["listed_after"]) == {str(tenant.app.id), created_id}

    assert result["get_unknown"]["status"] == 404
    assert result["get_unknown"]["body"] == {
        "errors": ["Couldn't find app with id = 00000000-0000-0000-0000-000000000000"]
    }

    app = App.objects.get(pk=created_id)
    assert app.organization_id == tenant.organization.id
    assert app.name == name + " renamed"
    assert app.site_name == "Shop 2"
    assert app.apns_env == "production"
    assert app.gcm_key == "secret-gcm-key"
    assert App.objects.filter(organization=other_tenant.organization).count() == 1

    # The App key handed out at creation works with 5.18's export (an empty POST body).
    exported = run_client(
        "os518",
        "os518_apps.py",
        "export",
        host,
        "unused-user-key",
        created["basic_auth_key"],
        extra={"app_id": created_id},
    )
    assert exported["type"] == "ExportSubscriptionsSuccessResponse"
    export = assert_export_url(exported["csv_file_url"], live_server.url, created_id)
    assert export.extra_fields == [] and export.segment_name is None and export.last_active_since is None
    assert enqueued_exports == [str(export.id)]


@ROOTS
def test_os518_bad_key_raises_api_exception(live_server, tenant, run_client, root):
    result = run_client(
        "os518",
        "os518_apps.py",
        "bad_key",
        live_server.url + root,
        "hak_wrong-user-key",
        tenant.user_key,  # a User key is not an App key
        extra={"app_id": str(tenant.app.id)},
    )
    user_status, user_body = bad_key_error(root, user_key=True)
    app_status, app_body = bad_key_error(root, user_key=False)
    for call in ("get_apps", "get_app"):
        assert (result[call]["status"], result[call]["body"]) == (user_status, user_body), call
    assert (result["export_subscriptions"]["status"], result["export_subscriptions"]["body"]) == (
        app_status,
        app_body,
    )
    assert not CsvExport.objects.exists()
