"""Drive Herald's notifications and segments with the official onesignal-python-api 5.18.0 client.

Run in a subprocess with PYTHONPATH=var/clients/os518. Usage:

    os518_notifications.py SCENARIO HOST REST_API_KEY APP_ID [EXTRA_JSON]

Prints one JSON object on stdout. Every response is deserialised by the client with its type
checks on (the default), so a field of the wrong type makes the script fail with a traceback.
Expected API errors are reported as ``{"status": ..., "body": ...}``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import onesignal
from client_common import api_error, model
from onesignal.api import default_api
from onesignal.exceptions import ApiException
from onesignal.model.filter import Filter
from onesignal.model.language_string_map import LanguageStringMap
from onesignal.model.notification import Notification
from onesignal.model.segment import Segment


def scenario_create(api, app_id: str, extra: dict) -> dict:
    """Segment create + list; an immediate send to that segment; a scheduled send, cancelled."""
    segment = api.create_segment(
        app_id,
        segment=Segment(
            name=extra["segment_name"],
            # A Filter, not a FilterExpression: 5.18's FilterExpression is a oneOf that both of its
            # schemas match, so the client refuses to build one (a client bug, whatever the server).
            filters=[Filter(field="tag", key="level", relation=">", value="5")],
        ),
    )
    segments = api.get_segments(app_id, offset=0, limit=300)
    sent = api.create_notification(
        Notification(
            app_id=app_id,
            contents=LanguageStringMap(en="Hello from 5.18", es="Hola desde 5.18"),
            headings=LanguageStringMap(en="Herald"),
            included_segments=[extra["segment_name"]],
            idempotency_key=extra["idempotency_key"],
            throttle_rate_per_minute="0",
            data={"source": "os518"},
        )
    )
    scheduled = api.create_notification(
        Notification(
            app_id=app_id,
            contents=LanguageStringMap(en="Later"),
            included_segments=["Subscribed Users"],
            send_after=datetime.fromisoformat(extra["send_after"]),
        )
    )
    scheduled_before = api.get_notification(app_id, scheduled.id)
    canceled = api.cancel_notification(app_id, scheduled.id)
    scheduled_after = api.get_notification(app_id, scheduled.id)
    try:
        api.get_notification(app_id, "00000000-0000-0000-0000-000000000000")
    except ApiException as exc:
        unknown = api_error(exc)
    else:
        raise AssertionError("GET of an unknown notification did not fail")
    return {
        "segment": model(segment),
        "segments": model(segments),
        "sent": model(sent),
        "scheduled": model(scheduled),
        "scheduled_before": model(scheduled_before),
        "canceled": model(canceled),
        "scheduled_after": model(scheduled_after),
        "get_unknown": unknown,
    }


def scenario_read(api, app_id: str, extra: dict) -> dict:
    """The delivered notification and the list, then the segment deleted (twice)."""
    notification = api.get_notification(app_id, extra["notification_id"])
    page = api.get_notifications(app_id, limit=10, offset=0, kind=1)
    deleted = api.delete_segment(app_id, extra["segment_id"])
    try:
        api.delete_segment(app_id, extra["segment_id"])
    except ApiException as exc:
        deleted_again = api_error(exc)
    else:
        raise AssertionError("deleting a deleted segment did not fail")
    segments = api.get_segments(app_id)
    return {
        "notification": model(notification),
        "page": model(page),
        "deleted": model(deleted),
        "deleted_again": deleted_again,
        "segments": model(segments),
    }


def scenario_throttled(api, app_id: str, extra: dict) -> dict:
    """A throttled notification read back: the client types its throttle_rate_per_minute both as a
    string (BasicNotification) and as an integer (NotificationWithMeta)."""
    created = api.create_notification(
        Notification(
            app_id=app_id,
            contents=LanguageStringMap(en="Slowly"),
            included_segments=["Subscribed Users"],
            send_after=datetime.fromisoformat(extra["send_after"]),
            throttle_rate_per_minute="120",
        )
    )
    return {"created": model(created), "fetched": model(api.get_notification(app_id, created.id))}


SCENARIOS = {"create": scenario_create, "read": scenario_read, "throttled": scenario_throttled}


def main() -> None:
    scenario, host, rest_api_key, app_id = sys.argv[1:5]
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    configuration = onesignal.Configuration(host=host, rest_api_key=rest_api_key)
    with onesignal.ApiClient(configuration) as client:
        result = SCENARIOS[scenario](default_api.DefaultApi(client), app_id, extra)
    result["client_version"] = onesignal.__version__
    result["client_file"] = onesignal.__file__
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
