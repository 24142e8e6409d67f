from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from segments.models import BUILTIN_SEGMENTS, Segment
from tests.factories import PlayerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"
LEVEL_10 = [{"field": "tag", "key": "level", "relation": "=", "value": "10"}]
BUILTIN_NAMES = ["Subscribed Users", "All", "Active Users", "Engaged Users", "Inactive Users"]
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def builtin_id(app, name: str) -> str:
    return str(uuid.uuid5(app.id, name))


def patch(api, path, body, **kw):
    return api.request("PATCH", path, body, **kw)


# --- POST /apps/{app_id}/segments ----------------------------------------------------------------


def test_create_returns_201_with_the_new_id_and_stores_normalised_filters(api, own):
    body = {
        "name": "Level 10",
        "description": "players at level ten",
        "filters": [
            {"field": "tag", "key": "level", "relation": "=", "value": 10},
            {"operator": "or"},
            {"field": "last_session", "relation": "<", "hours_ago": 24},
        ],
    }
    response = api.post(f"/apps/{own.app.id}/segments", body, key=own.app_key)
    assert response.status_code == 201
    data = response.json()
    assert data == {"success": True, "id": data["id"]}
    segment = Segment.objects.get(pk=data["id"])
    assert segment.app_id == own.app.id and segment.name == "Level 10"
    assert segment.description == "players at level ten"
    assert segment.source == "custom" and segment.read_only is False and segment.is_active is True
    assert segment.filters == [
        {"field": "tag", "key": "level", "relation": "=", "value": "10"},
        {"operator": "OR"},
        {"field": "last_session", "relation": "<", "hours_ago": "24"},
    ]


def test_create_takes_a_client_supplied_id_of_any_uuid_version(api_root, own):
    segment_id = "1dd608f2-c6a1-11e3-851d-000c2940e62c"
    body = {"id": segment_id.upper(), "name": "v1 id", "filters": LEVEL_10}
    response = api_root.post(f"/apps/{own.app.id}/segments", body, key=own.app_key)
    assert response.status_code == 201
    assert response.json() == {"success": True, "id": segment_id}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filters": LEVEL_10}, "name is required"),
        ({"name": "", "filters": LEVEL_10}, "name is required"),
        ({"name": "   ", "filters": LEVEL_10}, "name is required"),
        ({"name": None, "filters": LEVEL_10}, "name is required"),
        ({"name": "x" * 129, "filters": LEVEL_10}, "name must be at most 128 characters"),
        ({"name": ["x"], "filters": LEVEL_10}, "name must be a string"),
        ({"name": "s", "id": "nope", "filters": LEVEL_10}, "id must be a valid UUID"),
        (
            {"name": "s", "description": "d" * 256, "filters": LEVEL_10},
            "description must be at most 255 characters",
        ),
        ({"name": "s"}, "Invalid filter: filters must contain at least one filter"),
        ({"name": "s", "filters": []}, "Invalid filter: filters must contain at least one filter"),
        ({"name": "s", "filters": LEVEL_10 * 201}, "Filters may contain at most 200 entries"),
        (
            {"name": "s", "filters": [{"operator": "OR"}, *LEVEL_10]},
            "Filters must not start or end with an operator",
        ),
        ({"name": "s", "filters": [{"field": "level"}]}, 'Invalid filter: filters[0]: unknown field "level"'),
        (
            {"name": "s", "filters": [{"field": "custom_event", "relation": "="}]},
            "Invalid filter: filters[0]: user-based filters (message_event, custom_event) are not "
            "supported via the API",
        ),
    ],
)
def test_create_rejects_bad_input_with_success_false_and_writes_nothing(api, own, body, message):
    response = api.post(f"/apps/{own.app.id}/segments", body, key=own.app_key)
    assert response.status_code == 400
    assert response.json() == {"success": False, "errors": [message]}
    assert not Segment.objects.exists()


def test_create_with_a_taken_id_is_409_and_never_updates(api, own, outsider):
    existing = SegmentFactory(app=own.app, name="first")
    foreign = SegmentFactory(app=outsider.app, name="theirs")
    for segment_id in (existing.id, foreign.id, builtin_id(own.app, "Active Users")):
        body = {"id": str(segment_id), "name": "second", "filters": LEVEL_10}
        response = api.post(f"/apps/{own.app.id}/segments", body, key=own.app_key)
        assert response.status_code == 409
        assert response.json() == {"success": False, "errors": ["Segment with the given id already exists."]}
    existing.refresh_from_db()
    foreign.refresh_from_db()
    assert existing.name == "first" and foreign.name == "theirs" and Segment.objects.count() == 2


@pytest.mark.parametrize(
    "name", ["taken", "Subscribed Users", "Active Users", "Engaged Users", "Inactive Users"]
)
def test_create_with_a_taken_name_is_409(api, own, name):
    SegmentFactory(app=own.app, name="taken")
    response = api.post(f"/apps/{own.app.id}/segments", {"name": name, "filters": LEVEL_10}, key=own.app_key)
    assert response.status_code == 409
    assert response.json() == {"success": False, "errors": ["Segment with the given name already exists."]}
    assert Segment.objects.count() == 1


def test_names_are_unique_per_app_only(api, own, outsider):
    SegmentFactory(app=outsider.app, name="VIP")
    response = api.post(f"/apps/{own.app.id}/segments", {"name": "VIP", "filters": LEVEL_10}, key=own.app_key)
    assert response.status_code == 201


def test_create_refuses_other_apps_keys_and_no_key(api, api_root, own, teammate, outsider):
    body = {"name": "s", "filters": LEVEL_10}
    path = f"/apps/{own.app.id}/segments"
    assert api_root.post(path, body, key=outsider.app_key).status_code == 403
    assert api_root.post(path, body, key=teammate.app_key).status_code == 403
    assert api_root.post(path, body).status_code == 403
    assert api_root.post(path, body, key=own.user_key).status_code == 403
    legacy = api.post(path, body, key=outsider.app_key)
    assert legacy.status_code == 400 and "valid REST API key" in legacy.json()["errors"][0]
    assert not Segment.objects.exists()


def test_create_rejects_malformed_json(api, own):
    response = api.post(f"/apps/{own.app.id}/segments", raw=b"{nope", key=own.app_key)
    assert response.status_code == 400
    assert response.json() == {"errors": ["Invalid JSON body"]}


def test_a_trailing_slash_works(api, own):
    response = api.post(f"/apps/{own.app.id}/segments/", {"name": "s", "filters": LEVEL_10}, key=own.app_key)
    assert response.status_code == 201


# --- GET /apps/{app_id}/segments ----------------------------------------------------------------


def test_list_has_the_builtins_then_custom_segments_by_created_at(api, own, outsider):
    now = timezone.now()
    late = SegmentFactory(app=own.app, name="late", created_at=now + timedelta(seconds=5))
    early = SegmentFactory(app=own.app, name="early", created_at=now)
    SegmentFactory(app=outsider.app, name="theirs")
    response = api.get(f"/apps/{own.app.id}/segments", key=own.app_key)
    assert response.status_code == 200
    body = response.json()
    assert body["total_count"] == 7 and body["offset"] == 0 and body["limit"] == 300
    assert [s["name"] for s in body["segments"]] == [*BUILTIN_NAMES, "early", "late"]
    first, custom = body["segments"][0], body["segments"][5]
    assert first == {
        "id": builtin_id(own.app, "Subscribed Users"),
        "name": "Subscribed Users",
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
        "app_id": str(own.app.id),
        "read_only": True,
        "is_active": True,
    }
    assert custom["id"] == str(early.id) and custom["read_only"] is False and custom["is_active"] is True
    for segment in body["segments"]:
        assert ISO_MILLIS.match(segment["created_at"]) and ISO_MILLIS.match(segment["updated_at"])
    assert body["segments"][6]["id"] == str(late.id)


def test_list_pages_across_builtins_and_custom_segments(api, own):
    names = [SegmentFactory(app=own.app, name=f"s{i}").name for i in range(4)]
    everything = [*BUILTIN_NAMES, *names]
    for offset, limit in [(0, 2), (3, 4), (5, 2), (8, 5), (20, 5)]:
        body = api.get(f"/apps/{own.app.id}/segments?offset={offset}&limit={limit}", key=own.app_key).json()
        assert body["total_count"] == 9 and body["offset"] == offset and body["limit"] == limit
        assert [s["name"] for s in body["segments"]] == everything[offset : offset + limit]


def test_list_clamps_the_limit_and_rejects_garbage(api, own):
    assert api.get(f"/apps/{own.app.id}/segments?limit=1000", key=own.app_key).json()["limit"] == 300
    response = api.get(f"/apps/{own.app.id}/segments?offset=-1", key=own.app_key)
    assert response.status_code == 400
    assert response.json() == {"errors": ["offset must be a non-negative integer"]}


def test_a_custom_segment_named_all_replaces_the_builtin(api, own):
    SegmentFactory(app=own.app, name="All")
    body = api.get(f"/apps/{own.app.id}/segments", key=own.app_key).json()
    names = [s["name"] for s in body["segments"]]
    assert names.count("All") == 1 and body["total_count"] == 5
    assert next(s for s in body["segments"] if s["name"] == "All")["read_only"] is False


def test_list_pins_its_query_count(api, own, django_assert_num_queries):
    for i in range(5):
        SegmentFactory(app=own.app, name=f"s{i}")
    # key lookup, last_used touch, counts, page
    with django_assert_num_queries(4):
        assert api.get(f"/apps/{own.app.id}/segments", key=own.app_key).status_code == 200


def test_list_needs_the_apps_own_key(api_root, own, teammate):
    assert api_root.get(f"/apps/{own.app.id}/segments").status_code == 403
    assert api_root.get(f"/apps/{own.app.id}/segments", key=teammate.app_key).status_code == 403


# --- GET /apps/{app_id}/segments/{segment_id} ---------------------------------------------------


def test_view_counts_subscribed_members_only(api, own, outsider):
    segment = SegmentFactory(app=own.app, filters=LEVEL_10)
    PlayerFactory.create_batch(3, app=own.app, tags={"level": "10"})
    PlayerFactory(app=own.app, tags={"level": "10"}, notification_types=-2)  # unsubscribed
    PlayerFactory(app=own.app, tags={"level": "10"}, identifier=None)  # no token
    PlayerFactory(app=own.app, tags={"level": "9"})
    PlayerFactory(app=outsider.app, tags={"level": "10"})
    response = api.get(f"/apps/{own.app.id}/segments/{segment.id}", key=own.app_key)
    assert response.status_code == 200
    assert response.json() == {"subscriber_count": 3}


def test_view_with_detail_adds_the_payload(api, own):
    segment = SegmentFactory(app=own.app, name="L10", description="ten", filters=LEVEL_10)
    path = f"/apps/{own.app.id}/segments/{segment.id}?include-segment-detail=true"
    body = api.get(path, key=own.app_key).json()
    assert body == {
        "subscriber_count": 0,
        "payload": {
            "id": str(segment.id),
            "name": "L10",
            "description": "ten",
            "created_at": int(segment.created_at.timestamp()),
            "source": "custom",
            "filters": LEVEL_10,
        },
    }


def test_view_of_a_builtin(api, own):
    PlayerFactory(app=own.app, session_count=11)
    PlayerFactory(app=own.app, session_count=11, last_active=timezone.now() - timedelta(days=8))
    PlayerFactory(app=own.app, session_count=2)
    counts = {}
    for name in BUILTIN_NAMES:
        path = f"/apps/{own.app.id}/segments/{builtin_id(own.app, name)}?include-segment-detail=true"
        body = api.get(path, key=own.app_key).json()
        counts[name] = body["subscriber_count"]
        assert body["payload"]["name"] == name and body["payload"]["source"] == "default"
        assert body["payload"]["created_at"] == int(own.app.created_at.timestamp())
    assert counts == {
        "Subscribed Users": 3,
        "All": 3,
        "Active Users": 2,
        "Engaged Users": 1,
        "Inactive Users": 1,
    }


@pytest.mark.parametrize("which", ["unknown", "garbage", "foreign", "foreign-builtin"])
def test_view_of_an_unknown_or_foreign_segment_is_404(api, own, outsider, which):
    segment_id = {
        "unknown": UNKNOWN,
        "garbage": "not-a-uuid",
        "foreign": str(SegmentFactory(app=outsider.app).id),
        "foreign-builtin": builtin_id(outsider.app, "Subscribed Users"),
    }[which]
    response = api.get(f"/apps/{own.app.id}/segments/{segment_id}", key=own.app_key)
    assert response.status_code == 404
    assert response.json() == {"errors": ["segment not found"]}


def test_the_builtin_all_is_gone_once_a_custom_all_exists(api, own):
    SegmentFactory(app=own.app, name="All")
    response = api.get(f"/apps/{own.app.id}/segments/{builtin_id(own.app, 'All')}", key=own.app_key)
    assert response.status_code == 404


def test_view_with_an_outsiders_key_is_refused(api_root, own, outsider):
    segment = SegmentFactory(app=own.app)
    assert api_root.get(f"/apps/{own.app.id}/segments/{segment.id}", key=outsider.app_key).status_code == 403
    # Its own app in the path does not reach our segment either.
    response = api_root.get(f"/apps/{outsider.app.id}/segments/{segment.id}", key=outsider.app_key)
    assert response.status_code == 404


def test_a_stored_user_based_segment_is_400_on_view_and_patch(api, own):
    segment = SegmentFactory(app=own.app, filters=[{"field": "message_event", "relation": "="}])
    message = (
        "User-based segments (with message event or custom event filters) are not yet supported via the API"
    )
    response = api.get(f"/apps/{own.app.id}/segments/{segment.id}", key=own.app_key)
    assert response.status_code == 400 and response.json() == {"errors": [message]}
    response = patch(api, f"/apps/{own.app.id}/segments/{segment.id}", {"name": "x"}, key=own.app_key)
    assert response.status_code == 400 and response.json() == {"success": False, "errors": [message]}


# --- PATCH /apps/{app_id}/segments/{segment_id} -------------------------------------------------


def test_update_renames_and_replaces_filters(api, own):
    segment = SegmentFactory(app=own.app, name="old", description="keep me", filters=LEVEL_10)
    new_filters = [{"field": "session_count", "relation": ">", "value": 5}]
    body = {"name": "new", "filters": new_filters}
    response = patch(api, f"/apps/{own.app.id}/segments/{segment.id}", body, key=own.app_key)
    assert response.status_code == 200
    assert response.json() == {"success": True, "id": str(segment.id)}
    segment.refresh_from_db()
    assert segment.name == "new" and segment.description == "keep me"
    assert segment.filters == [{"field": "session_count", "relation": ">", "value": "5"}]


def test_update_with_an_empty_description_clears_it(api, own):
    segment = SegmentFactory(app=own.app, name="s", description="gone soon", filters=LEVEL_10)
    body = {"name": "s", "description": ""}
    assert patch(api, f"/apps/{own.app.id}/segments/{segment.id}", body, key=own.app_key).status_code == 200
    segment.refresh_from_db()
    assert segment.description is None and segment.filters == LEVEL_10


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"description": "no name"}, 400, "name is required"),
        ({"name": "s", "filters": []}, 400, "Invalid filter: filters must contain at least one filter"),
        (
            {"name": "s", "filters": [{"field": "tag", "relation": "="}]},
            400,
            'Invalid filter: filters[0]: key is required for field "tag"',
        ),
        ({"name": "taken"}, 409, "Segment with the given name already exists."),
        ({"name": "Subscribed Users"}, 409, "Segment with the given name already exists."),
    ],
)
def test_update_rejects_bad_input_and_changes_nothing(api, own, body, status, message):
    SegmentFactory(app=own.app, name="taken")
    segment = SegmentFactory(app=own.app, name="s", filters=LEVEL_10)
    response = patch(api, f"/apps/{own.app.id}/segments/{segment.id}", body, key=own.app_key)
    assert response.status_code == status
    assert response.json() == {"success": False, "errors": [message]}
    segment.refresh_from_db()
    assert segment.name == "s" and segment.filters == LEVEL_10


def test_builtins_are_read_only(api, own):
    for builtin in BUILTIN_SEGMENTS:
        path = f"/apps/{own.app.id}/segments/{builtin_id(own.app, builtin.name)}"
        response = patch(api, path, {"name": "mine now", "filters": LEVEL_10}, key=own.app_key)
        assert response.status_code == 403
        assert response.json() == {"success": False, "errors": ["This segment is read-only"]}
        response = api.delete(path, key=own.app_key)
        assert response.status_code == 403
    assert not Segment.objects.exists()


def test_a_read_only_row_is_read_only_too(api, own):
    segment = SegmentFactory(app=own.app, name="locked", read_only=True)
    response = patch(api, f"/apps/{own.app.id}/segments/{segment.id}", {"name": "x"}, key=own.app_key)
    assert response.status_code == 403
    segment.refresh_from_db()
    assert segment.name == "locked"


def test_update_of_a_foreign_segment_is_404_and_changes_nothing(api, api_root, own, outsider):
    foreign = SegmentFactory(app=outsider.app, name="theirs")
    for segment_id in (str(foreign.id), UNKNOWN, "garbage"):
        response = patch(
            api, f"/apps/{own.app.id}/segments/{segment_id}", {"name": "hijacked"}, key=own.app_key
        )
        assert response.status_code == 404
        assert response.json() == {"success": False, "errors": ["segment not found"]}
    response = patch(
        api_root, f"/apps/{outsider.app.id}/segments/{foreign.id}", {"name": "x"}, key=own.app_key
    )
    assert response.status_code == 403
    foreign.refresh_from_db()
    assert foreign.name == "theirs"


def test_update_without_a_key_is_refused(api_root, own):
    segment = SegmentFactory(app=own.app, name="s")
    assert patch(api_root, f"/apps/{own.app.id}/segments/{segment.id}", {"name": "x"}).status_code == 403
    segment.refresh_from_db()
    assert segment.name == "s"


# --- DELETE /apps/{app_id}/segments/{segment_id} ------------------------------------------------


def test_delete_removes_the_segment(api, own):
    segment = SegmentFactory(app=own.app)
    response = api.delete(f"/apps/{own.app.id}/segments/{segment.id}", key=own.app_key)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert not Segment.objects.filter(pk=segment.pk).exists()
    again = api.delete(f"/apps/{own.app.id}/segments/{segment.id}", key=own.app_key)
    assert again.status_code == 404 and again.json() == {"success": False}


def test_delete_of_a_foreign_or_unknown_segment_is_404_success_false(api, api_root, own, outsider):
    foreign = SegmentFactory(app=outsider.app)
    for segment_id in (str(foreign.id), UNKNOWN, "garbage"):
        response = api.delete(f"/apps/{own.app.id}/segments/{segment_id}", key=own.app_key)
        assert response.status_code == 404
        assert response.json() == {"success": False}
    assert (
        api_root.delete(f"/apps/{outsider.app.id}/segments/{foreign.id}", key=own.app_key).status_code == 403
    )
    assert api_root.delete(f"/apps/{outsider.app.id}/segments/{foreign.id}").status_code == 403
    assert Segment.objects.filter(pk=foreign.pk).exists()
