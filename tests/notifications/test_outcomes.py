"""Outcomes: POST /outcomes/measure(_sources) (keyless) and GET /apps/{app_id}/outcomes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.urls import resolve
from django.utils import timezone

from core.api.errors import CURRENT_KEY_ERROR, LEGACY_APP_KEY_ERROR
from notifications.api.outcome_views import AppOutcomesView
from notifications.models import Delivery, DeliveryBatch, Notification, OutcomeEvent
from players.models import Player
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"
N1 = "6f0c4c52-2b6d-4a36-9a0b-8f3a1c1c0d01"
N2 = "6F0C4C52-2B6D-4A36-9A0B-8F3A1C1C0D02"  # any case on input, lowercase when stored
DIRECT, INFLUENCED, UNATTRIBUTED = "direct", "influenced", "unattributed"


def measure(api, tenant, path="/outcomes/measure", **fields):
    body = {"app_id": str(tenant.app.id), "device_type": 1, "id": "Purchase", **fields}
    return api.post(path, body)


def event(tenant, name, weight=1, *, device_type=1, attribution=UNATTRIBUTED, ago=timedelta(minutes=5)):
    return OutcomeEvent.objects.create(
        app=tenant.app,
        name=name,
        weight=Decimal(str(weight)),
        device_type=device_type,
        attribution=attribution,
        created_at=timezone.now() - ago,
    )


def outcomes(api, tenant, key=None, **params):
    response = api.get(f"/apps/{tenant.app.id}/outcomes?{urlencode(params)}", key=key or tenant.app_key)
    assert response.status_code == 200, response.json()
    return response.json()["outcomes"]


def values(api, tenant, names, **params):
    return [item["value"] for item in outcomes(api, tenant, outcome_names=names, **params)]


# --- POST /outcomes/measure ------------------------------------------------------------------


def test_measure_records_an_event_without_a_key(api, own):
    response = measure(api, own, weight=9.99)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    stored = OutcomeEvent.objects.get()
    assert stored.app == own.app and stored.name == "Purchase" and stored.device_type == 1
    assert stored.weight == Decimal("9.99") and stored.attribution == UNATTRIBUTED
    assert stored.notification_ids == [] and stored.player is None
    assert abs((timezone.now() - stored.created_at).total_seconds()) < 60


def test_measure_without_a_weight_counts_with_weight_zero(api_root, own):
    assert measure(api_root, own).json() == {"success": True}
    assert OutcomeEvent.objects.get().weight == 0


@pytest.mark.parametrize(
    ("fields", "attribution"),
    [
        ({}, UNATTRIBUTED),
        ({"direct": True}, DIRECT),
        ({"direct": False}, INFLUENCED),
        ({"direct": None}, UNATTRIBUTED),
    ],
)
def test_measure_maps_direct_to_the_attribution(api, own, fields, attribution):
    assert measure(api, own, notification_ids=[N1, N2], **fields).status_code == 200
    stored = OutcomeEvent.objects.get()
    assert stored.attribution == attribution
    assert stored.notification_ids == [N1, N2.lower()]


def test_measure_takes_the_event_time_from_timestamp_but_never_in_the_future(api, own):
    two_hours_ago = int((timezone.now() - timedelta(hours=2)).timestamp())
    measure(api, own, id="Past", timestamp=two_hours_ago)
    measure(api, own, id="Future", timestamp=int(timezone.now().timestamp()) + 86400)
    assert int(OutcomeEvent.objects.get(name="Past").created_at.timestamp()) == two_hours_ago
    assert OutcomeEvent.objects.get(name="Future").created_at <= timezone.now()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": None}, "id is required"),
        ({"id": ""}, "id must be a non-empty string"),
        ({"id": "   "}, "id must be a non-empty string"),
        ({"id": 5}, "id must be a non-empty string"),
        ({"id": "x" * 129}, "id must be at most 128 characters"),
        ({"device_type": None}, "device_type is required"),
        ({"device_type": 15}, "15 is not a valid device_type (0 to 14)"),
        ({"device_type": "web"}, "web is not a valid device_type (0 to 14)"),
        ({"weight": "9.99"}, "weight must be a number"),
        ({"weight": True}, "weight must be a number"),
        ({"weight": 1e20}, "weight is too large"),
        ({"weight": 5.7e60}, "weight is too large"),  # found by tests/fuzz: was a 500 (quantize)
        ({"weight": -(10**40)}, "weight is too large"),
        ({"timestamp": "now"}, "timestamp must be a number of seconds since the Unix epoch"),
        ({"timestamp": -1}, "timestamp must be a number of seconds since the Unix epoch"),
        ({"direct": "yes"}, "direct must be true, false or absent"),
        ({"notification_ids": N1}, "notification_ids must be a list of notification ids"),
        (
            {"notification_ids": [N1, "nope"]},
            "notification_ids must contain notification ids (UUIDs), got 'nope'",
        ),
        ({"notification_ids": [N1] * 101}, "notification_ids may contain at most 100 ids"),
    ],
)
def test_measure_rejects_bad_input_and_writes_nothing(api, own, fields, message):
    response = measure(api, own, **fields)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error.startswith(message)
    assert not OutcomeEvent.objects.exists()


def test_measure_without_json_content_type_is_app_id_not_found(api, own):
    response = api.post(
        "/outcomes/measure", {"app_id": str(own.app.id), "id": "x"}, content_type="text/plain"
    )
    assert response.status_code == 400
    assert "app_id not found" in response.json()["errors"][0]
    assert not OutcomeEvent.objects.exists()


def test_measure_accepts_the_apps_own_key(api, own):
    body = {"app_id": str(own.app.id), "device_type": 0, "id": "Signup"}
    assert api.post("/outcomes/measure", body, key=own.app_key).status_code == 200
    assert OutcomeEvent.objects.filter(app=own.app, name="Signup").count() == 1


@pytest.mark.parametrize("path", ["/outcomes/measure", "/outcomes/measure_sources"])
def test_measure_refuses_a_wrong_key_or_another_apps_key(api, api_root, own, teammate, outsider, path):
    body = {"app_id": str(own.app.id), "device_type": 1, "id": "Purchase"}
    for key in ("not-a-key", teammate.app_key, outsider.app_key, own.user_key):
        response = api.post(path, body, key=key)
        assert response.status_code == 400 and response.json() == LEGACY_APP_KEY_ERROR
        response = api_root.post(path, body, key=key)
        assert response.status_code == 403 and response.json() == CURRENT_KEY_ERROR
    assert not OutcomeEvent.objects.exists()


def test_measure_for_an_unknown_app_is_a_400(api, db):
    response = api.post("/outcomes/measure", {"app_id": UNKNOWN, "device_type": 1, "id": "Purchase"})
    assert response.status_code == 400
    assert response.json() == {"errors": [f"Couldn't find app with id = {UNKNOWN}"]}


def test_measure_needs_the_key_when_the_app_requires_keys_on_device_calls(api, own):
    own.app.allow_unauthenticated_device_calls = False
    own.app.save()
    assert measure(api, own).status_code == 400
    assert not OutcomeEvent.objects.exists()
    body = {"app_id": str(own.app.id), "device_type": 1, "id": "Purchase"}
    assert api.post("/outcomes/measure", body, key=own.app_key).status_code == 200


# --- POST /outcomes/measure_sources ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "attribution", "ids"),
    [
        ({"direct": {"notification_ids": [N1], "in_app_message_ids": []}}, DIRECT, [N1]),
        ({"indirect": {"notification_ids": [N1, N2]}}, INFLUENCED, [N1, N2.lower()]),
        (
            {"direct": {"notification_ids": []}, "indirect": {"notification_ids": [N2]}},
            INFLUENCED,
            [N2.lower()],
        ),
        ({"direct": {"notification_ids": [N1]}, "indirect": {"notification_ids": [N2]}}, DIRECT, [N1]),
        ({"direct": {"notification_ids": [], "in_app_message_ids": ["iam-1"]}}, UNATTRIBUTED, []),
        ({}, UNATTRIBUTED, []),
        (None, UNATTRIBUTED, []),
    ],
)
def test_measure_sources_maps_sources_to_one_attributed_event(api, own, sources, attribution, ids):
    response = measure(api, own, path="/outcomes/measure_sources", weight=2, sources=sources)
    assert response.status_code == 200 and response.json() == {"success": True}
    stored = OutcomeEvent.objects.get()
    assert (stored.name, stored.weight, stored.attribution, stored.notification_ids) == (
        "Purchase",
        2,
        attribution,
        ids,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sources": []}, "sources must be an object with optional direct and indirect"),
        ({"sources": {"direct": [N1]}}, "sources.direct must be an object"),
        (
            {"sources": {"indirect": {"notification_ids": ["x"]}}},
            "sources.indirect.notification_ids must contain notification ids (UUIDs), got 'x'",
        ),
        (
            {"sources": {"direct": {"in_app_message_ids": [1]}}},
            "sources.direct.in_app_message_ids must be a list of in-app message ids (strings)",
        ),
        ({"id": ""}, "id must be a non-empty string"),
        ({"weight": "1"}, "weight must be a number"),
    ],
)
def test_measure_sources_rejects_bad_input_and_writes_nothing(api, own, fields, message):
    response = measure(api, own, path="/outcomes/measure_sources", **fields)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)
    assert not OutcomeEvent.objects.exists()


# --- on_focus records os__session_duration ---------------------------------------------------


def test_on_focus_records_the_session_duration_outcome(api, own):
    player = PlayerFactory(app=own.app, device_type=0, playtime=0)
    base = {"app_id": str(own.app.id), "type": 1, "state": "ping", "device_type": 0}
    assert api.post(f"/players/{player.id}/on_focus", {**base, "active_time": 60}).json() == {"success": True}
    attributed = {**base, "active_time": 30, "direct": True, "notification_ids": [N2]}
    assert api.post(f"/players/{player.id}/on_focus", attributed).json() == {"success": True}
    rows = list(OutcomeEvent.objects.order_by("id").values_list("name", "weight", "attribution", "player"))
    assert rows == [
        ("os__session_duration", 60, UNATTRIBUTED, player.id),
        ("os__session_duration", 30, DIRECT, player.id),
    ]
    assert OutcomeEvent.objects.filter(notification_ids=[N2.lower()], device_type=0).count() == 1
    player.refresh_from_db()
    assert player.playtime == 90


def test_on_focus_with_bad_notification_ids_changes_nothing(api, own):
    player = PlayerFactory(app=own.app, playtime=10)
    body = {"app_id": str(own.app.id), "active_time": 60, "notification_ids": ["nope"]}
    response = api.post(f"/players/{player.id}/on_focus", body)
    assert response.status_code == 400
    player.refresh_from_db()
    assert player.playtime == 10 and not OutcomeEvent.objects.exists()


def test_on_focus_of_another_apps_player_records_nothing(api, own, outsider):
    foreign = PlayerFactory(app=outsider.app)
    response = api.post(f"/players/{foreign.id}/on_focus", {"app_id": str(own.app.id), "active_time": 5})
    assert response.status_code == 400 and response.json() == {"errors": ["No user with this id found"]}
    assert not OutcomeEvent.objects.exists()


def test_deleting_a_player_keeps_its_outcomes(api, own):
    player = PlayerFactory(app=own.app)
    api.post(f"/players/{player.id}/on_focus", {"app_id": str(own.app.id), "active_time": 5})
    assert api.delete(f"/players/{player.id}?app_id={own.app.id}", key=own.app_key).status_code == 200
    assert not Player.objects.exists()
    assert OutcomeEvent.objects.get().player is None


# --- GET /apps/{app_id}/outcomes -------------------------------------------------------------


def test_the_outcomes_route_resolves_to_the_outcomes_view(own):
    for path in (f"/api/v1/apps/{own.app.id}/outcomes", f"/apps/{own.app.id}/outcomes/"):
        assert resolve(path).func.view_class is AppOutcomesView


def test_counts_and_sums_per_name_in_the_requested_order(api, own):
    event(own, "Purchase", "9.99")
    event(own, "Purchase", "0.01")
    event(own, "Purchase", "1.5")
    event(own, "Signup", 0)
    result = outcomes(
        api, own, outcome_names="Signup.count,Purchase.sum,Purchase.count,Missing.sum,Signup.sum"
    )
    assert result == [
        {"id": "Signup", "value": 1, "aggregation": "count"},
        {"id": "Purchase", "value": 12, "aggregation": "sum"},
        {"id": "Purchase", "value": 3, "aggregation": "count"},
        {"id": "Missing", "value": 0, "aggregation": "sum"},
        {"id": "Signup", "value": 0, "aggregation": "sum"},
    ]


def test_whole_sums_are_integers(api, own):
    event(own, "Purchase", "1.5")
    event(own, "Purchase", "2.5")
    [value] = values(api, own, "Purchase.sum")
    assert value == 4 and isinstance(value, int)


def test_the_time_range_defaults_to_one_hour(api, own):
    event(own, "Open", ago=timedelta(minutes=30))
    event(own, "Open", ago=timedelta(hours=2))
    event(own, "Open", ago=timedelta(days=2))
    event(own, "Open", ago=timedelta(days=40))
    assert values(api, own, "Open.count") == [1]
    assert values(api, own, "Open.count", outcome_time_range="1h") == [1]
    assert values(api, own, "Open.count", outcome_time_range="1d") == [2]
    assert values(api, own, "Open.count", outcome_time_range="1mo") == [3]


def test_platforms_filter_by_device_type(api, own):
    for device_type in (0, 1, 1, 5):
        event(own, "Open", device_type=device_type)
    assert values(api, own, "Open.count") == [4]
    assert values(api, own, "Open.count", outcome_platforms="0,5") == [2]
    assert values(api, own, "Open.count", outcome_platforms="1") == [2]
    assert values(api, own, "Open.count", outcome_platforms="14") == [0]


def test_attribution_filters_and_total_is_the_sum_of_all_three(api, own):
    event(own, "Purchase", 1, attribution=DIRECT)
    event(own, "Purchase", 2, attribution=DIRECT)
    event(own, "Purchase", 4, attribution=INFLUENCED)
    event(own, "Purchase", 8, attribution=UNATTRIBUTED)
    names = "Purchase.count,Purchase.sum"
    assert values(api, own, names, outcome_attribution="direct") == [2, 3]
    assert values(api, own, names, outcome_attribution="influenced") == [1, 4]
    assert values(api, own, names, outcome_attribution="unattributed") == [1, 8]
    assert values(api, own, names, outcome_attribution="total") == [4, 15]
    assert values(api, own, names) == [4, 15]


def test_names_with_commas_use_the_repeatable_form(api, own):
    event(own, "Sales, Purchase", 3)
    event(own, "Signup")
    query = urlencode(
        [("outcome_names[]", "Sales, Purchase.count"), ("outcome_names[]", "Sales, Purchase.sum")]
    )
    response = api.get(f"/apps/{own.app.id}/outcomes?outcome_names=Signup.count&{query}", key=own.app_key)
    assert response.json() == {
        "outcomes": [
            {"id": "Signup", "value": 1, "aggregation": "count"},
            {"id": "Sales, Purchase", "value": 1, "aggregation": "count"},
            {"id": "Sales, Purchase", "value": 3, "aggregation": "sum"},
        ]
    }


def test_measured_events_are_reported(api, own):
    measure(api, own, id="Purchase", weight=2.5, direct=True, notification_ids=[N1])
    measure(api, own, path="/outcomes/measure_sources", id="Purchase", weight=1, sources={})
    # Sums are whole numbers (half up) because OneSignal's clients type the value as an integer.
    assert values(api, own, "Purchase.count,Purchase.sum") == [2, 4]
    assert values(api, own, "Purchase.sum", outcome_attribution="direct") == [3]


def _notification_with_deliveries(tenant, opened):
    """One notification of ``tenant`` sent to one new player per (device_type, opened_ago) pair."""
    now = timezone.now()
    notification = Notification.objects.create(app=tenant.app, request={}, send_after=now)
    batch = DeliveryBatch.objects.create(
        notification=notification, device_type=1, size=len(opened), available_at=now
    )
    for device_type, ago in opened:
        player = PlayerFactory(app=tenant.app, device_type=device_type)
        Delivery.objects.create(
            notification=notification,
            batch=batch,
            player=player,
            status=Delivery.Status.SENT,
            sent_at=now - timedelta(days=3),
            opened_at=None if ago is None else now - ago,
        )


def test_clicks_count_the_apps_opened_deliveries(api, own, outsider):
    minute, hours = timedelta(minutes=1), timedelta(hours=3)
    _notification_with_deliveries(own, [(1, minute), (1, minute), (0, minute), (0, hours), (1, None)])
    _notification_with_deliveries(own, [(1, minute)])
    _notification_with_deliveries(outsider, [(1, minute), (1, minute)])
    event(own, "os__click", 1)  # a reported "os__click" event is not a click: deliveries are
    assert outcomes(api, own, outcome_names="os__click.count") == [
        {"id": "os__click", "value": 4, "aggregation": "count"}
    ]
    assert values(api, own, "os__click.count", outcome_time_range="1d") == [5]
    assert values(api, own, "os__click.count", outcome_platforms="1") == [3]
    assert values(api, own, "os__click.count", outcome_platforms="0,5", outcome_time_range="1d") == [2]
    assert values(api, own, "os__click.count", outcome_attribution="direct") == [4]
    assert values(api, own, "os__click.count", outcome_attribution="influenced") == [0]
    assert values(api, own, "os__click.count", outcome_attribution="unattributed") == [0]


def test_session_duration_sums_the_on_focus_active_time(api, own):
    player = PlayerFactory(app=own.app, device_type=1)
    for active_time, extra in ((60, {}), (45, {"direct": False, "notification_ids": [N1]}), (15, {})):
        body = {"app_id": str(own.app.id), "type": 1, "state": "ping", "active_time": active_time, **extra}
        assert api.post(f"/players/{player.id}/on_focus", body).status_code == 200
    names = "os__session_duration.count,os__session_duration.sum"
    assert values(api, own, names) == [3, 120]
    assert values(api, own, names, outcome_attribution="influenced") == [1, 45]
    assert values(api, own, names, outcome_platforms="0") == [0, 0]


def test_another_apps_events_are_never_counted(api, own, teammate, outsider):
    event(own, "Purchase", 1)
    event(teammate, "Purchase", 10)
    event(outsider, "Purchase", 100)
    assert values(api, own, "Purchase.count,Purchase.sum") == [1, 1]
    assert values(api, outsider, "Purchase.count,Purchase.sum") == [1, 100]


def test_outcomes_refuse_an_outsiders_key(api, api_root, own, teammate, outsider):
    event(own, "Purchase")
    path = f"/apps/{own.app.id}/outcomes?outcome_names=Purchase.count"
    for key in (outsider.app_key, teammate.app_key, "not-a-key", own.user_key, None):
        response = api.get(path, key=key)
        assert response.status_code == 400 and response.json() == LEGACY_APP_KEY_ERROR
        response = api_root.get(path, key=key)
        assert response.status_code == 403 and response.json() == CURRENT_KEY_ERROR


def test_outcomes_of_an_unknown_app_are_an_auth_error(api, own):
    for app_id in (UNKNOWN, str(uuid.uuid4()), "garbage"):
        response = api.get(f"/apps/{app_id}/outcomes?outcome_names=Purchase.count", key=own.app_key)
        assert response.status_code == 400 and response.json() == LEGACY_APP_KEY_ERROR


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "outcome_names is required"),
        ({"outcome_names": ""}, "outcome_names is required"),
        ({"outcome_names": " , "}, "outcome_names is required"),
        ({"outcome_names": "Purchase"}, "outcome_names: 'Purchase' must be <name>.count or <name>.sum"),
        (
            {"outcome_names": "Purchase.avg"},
            "outcome_names: 'Purchase.avg' must be <name>.count or <name>.sum",
        ),
        ({"outcome_names": ".count"}, "outcome_names: '.count' must be <name>.count or <name>.sum"),
        (
            {"outcome_names": "os__click.sum"},
            "outcome_names: os__click supports only count (os__click.count)",
        ),
        ({"outcome_names": "x" * 129 + ".count"}, "outcome_names: a name must be at most 128 characters"),
        ({"outcome_names": ",".join(["a.count"] * 101)}, "outcome_names may list at most 100 outcomes"),
        (
            {"outcome_names": "a.count", "outcome_time_range": "2h"},
            "outcome_time_range must be 1h, 1d or 1mo",
        ),
        (
            {"outcome_names": "a.count", "outcome_platforms": "1,web"},
            "outcome_platforms must be a comma-separated list of device types (0 to 14), got 'web'",
        ),
        (
            {"outcome_names": "a.count", "outcome_platforms": "15"},
            "outcome_platforms must be a comma-separated list of device types (0 to 14), got '15'",
        ),
        (
            {"outcome_names": "a.count", "outcome_attribution": "all"},
            "outcome_attribution must be direct, influenced, unattributed or total",
        ),
    ],
)
def test_outcomes_reject_bad_queries(api, own, params, message):
    response = api.get(f"/apps/{own.app.id}/outcomes?{urlencode(params)}", key=own.app_key)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)


def test_outcomes_pin_their_query_count(api, own, django_assert_num_queries):
    event(own, "Purchase")
    _notification_with_deliveries(own, [(1, timedelta(minutes=1))])
    path = f"/apps/{own.app.id}/outcomes?outcome_names=Purchase.count,Signup.sum,os__click.count"
    # key lookup, last_used touch, one grouped events query, one clicks count
    with django_assert_num_queries(4):
        assert api.get(path, key=own.app_key).status_code == 200
