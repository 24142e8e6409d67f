"""Drive Herald with the official onesignal-python-api 5.18.0 client (apps, CSV export).

Run in a subprocess with PYTHONPATH=var/clients/os518. Usage:

    os518_apps.py SCENARIO HOST USER_KEY REST_API_KEY [EXTRA_JSON]

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
from onesignal.model.app import App


def scenario_apps(api, extra: dict) -> dict:
    listed = api.get_apps()
    created = api.create_app(
        App(
            name=extra["name"],
            chrome_web_origin="https://shop.example",
            site_name="Shop",
            apns_env="sandbox",
            gcm_key="secret-gcm-key",
        )
    )
    fetched = api.get_app(created.id)
    updated = api.update_app(
        created.id, App(name=extra["new_name"], site_name="Shop 2", apns_env="production")
    )
    listed_after = api.get_apps()
    return {
        "listed": {"type": type(listed).__name__, "apps": [model(a) for a in listed.value]},
        "created": model(created),
        "fetched": model(fetched),
        "updated": model(updated),
        "listed_after": [a.id for a in listed_after.value],
        "get_unknown": expect_error(api.get_app, "00000000-0000-0000-0000-000000000000"),
    }


def scenario_export(api, extra: dict) -> dict:
    try:
        result = api.export_subscriptions(extra["app_id"])
    except ApiException as exc:
        return api_error(exc)
    return {"type": type(result).__name__, "csv_file_url": result.csv_file_url}


def scenario_bad_key(api, extra: dict) -> dict:
    return {
        "get_apps": expect_error(api.get_apps),
        "get_app": expect_error(api.get_app, extra["app_id"]),
        "export_subscriptions": expect_error(api.export_subscriptions, extra["app_id"]),
    }


SCENARIOS = {"apps": scenario_apps, "export": scenario_export, "bad_key": scenario_bad_key}


def main() -> None:
    scenario, host, user_key, rest_api_key = sys.argv[1:5]
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    configuration = onesignal.Configuration(
        host=host, organization_api_key=user_key, rest_api_key=rest_api_key
    )
    with onesignal.ApiClient(configuration) as client:
        result = SCENARIOS[scenario](default_api.DefaultApi(client), extra)
    result["client_version"] = onesignal.__version__
    result["client_file"] = onesignal.__file__
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
