"""Drive Herald with the official onesignal-python-api 2.2.1 client (classic player endpoints).

Run in a subprocess with PYTHONPATH=var/clients/os221. Usage:

    os221_players.py SCENARIO HOST APP_ID APP_KEY [EXTRA_JSON]

Prints one JSON object on stdout. Expected API errors are reported as
``{"status": ..., "body": ...}``; anything unexpected raises (non-zero exit, traceback on stderr).
"""

from __future__ import annotations

import json
import sys

import onesignal
from client_common import api_error, expect_error, model
from onesignal.api import default_api
from onesignal.exceptions import ApiException
from onesignal.model.export_players_request_body import ExportPlayersRequestBody
from onesignal.model.player import Player
from onesignal.model.update_player_tags_request_body import UpdatePlayerTagsRequestBody


def scenario_players(api, app_id: str, extra: dict) -> dict:
    prefix = extra["prefix"]
    first = api.create_player(
        Player(
            app_id=app_id,
            device_type=1,
            identifier=f"{prefix}-token-1",
            language="en",
            timezone=3600,
            external_user_id=f"{prefix}-ext",
            tags={"plan": "free", "drop": "me"},
        )
    )
    upserted = api.create_player(
        Player(app_id=app_id, device_type=1, identifier=f"{prefix}-token-1", game_version="2.0")
    )
    second = api.create_player(
        Player(app_id=app_id, device_type=1, identifier=f"{prefix}-token-2", external_user_id=f"{prefix}-ext")
    )
    page_one = api.get_players(app_id, limit=1, offset=0)
    page_rest = api.get_players(app_id, limit=300, offset=1)
    fetched = api.get_player(app_id, first.id)
    updated = api.update_player(
        first.id, Player(app_id=app_id, device_type=1, tags={"level": "5", "drop": ""})
    )
    tagged = api.update_player_tags(
        app_id,
        f"{prefix}-ext",
        update_player_tags_request_body=UpdatePlayerTagsRequestBody(tags={"vip": "yes"}),
    )
    after = api.get_player(app_id, first.id)
    deleted = api.delete_player(app_id, second.id)
    return {
        "created": {"type": type(first).__name__, "success": first.success, "id": first.id},
        "upserted": {"success": upserted.success, "id": upserted.id},
        "second": {"id": second.id},
        "page_one": {
            "type": type(page_one).__name__,
            "total_count": page_one.total_count,
            "offset": page_one.offset,
            "limit": page_one.limit,
            "players": [model(p) for p in page_one.players],
        },
        "page_rest": {
            "total_count": page_rest.total_count,
            "offset": page_rest.offset,
            "limit": page_rest.limit,
            "players": [model(p) for p in page_rest.players],
        },
        "fetched": model(fetched),
        "updated": {"type": type(updated).__name__, "success": updated.success},
        "tagged": {"type": type(tagged).__name__, "success": tagged.success},
        "after": model(after),
        "deleted": {"type": type(deleted).__name__, "success": deleted.success},
        "delete_again": expect_error(api.delete_player, app_id, second.id),
        "get_deleted": expect_error(api.get_player, app_id, second.id),
        "tags_unknown_external_id": expect_error(
            api.update_player_tags,
            app_id,
            f"{prefix}-nobody",
            update_player_tags_request_body=UpdatePlayerTagsRequestBody(tags={"a": "b"}),
        ),
    }


def scenario_export(api, app_id: str, extra: dict) -> dict:
    kwargs = {}
    if extra.get("extra_fields") is not None:
        kwargs["export_players_request_body"] = ExportPlayersRequestBody(extra_fields=extra["extra_fields"])
    try:
        result = api.export_players(app_id, **kwargs)
    except ApiException as exc:
        return api_error(exc)
    return {"type": type(result).__name__, "csv_file_url": result.csv_file_url}


def scenario_bad_key(api, app_id: str, extra: dict) -> dict:
    return {
        "get_players": expect_error(api.get_players, app_id, limit=10, offset=0),
        "export_players": expect_error(api.export_players, app_id),
        "delete_player": expect_error(api.delete_player, app_id, extra["player_id"]),
    }


SCENARIOS = {"players": scenario_players, "export": scenario_export, "bad_key": scenario_bad_key}


def main() -> None:
    scenario, host, app_id, app_key = sys.argv[1:5]
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    configuration = onesignal.Configuration(host=host, app_key=app_key, user_key="unused-user-key")
    with onesignal.ApiClient(configuration) as client:
        result = SCENARIOS[scenario](default_api.DefaultApi(client), app_id, extra)
    result["client_version"] = onesignal.__version__
    result["client_file"] = onesignal.__file__
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
