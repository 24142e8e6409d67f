"""Property: the SQL filter compiler agrees with a plain Python reading of the filter language.

``reference_match`` below is written from onesignal-api.md §6 and the semantics listed in
segments/filters.py's docstring, not from the compiler: it compares Python values (``Decimal``,
``str`` in code-point order, version tuples, haversine in floats). Hypothesis makes a handful of
random players and a random valid filter list, and the players PostgreSQL selects with
``compile_filters`` must be exactly the ones the reference selects, and ``exclude`` must select
the rest (every compiled condition is a strict boolean). A second property feeds arbitrary JSON
to the compiler: it answers ``FilterError`` (the 400 text) or a query that runs, never an error
from the database.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from players.models import DeviceType, Player, Purchase
from segments.filters import FilterError, compile_filters
from tests.factories import AppFactory

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
EARTH_RADIUS = 6_371_008.8

SHORT = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
LONG = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# --- the reference ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")


def number(text: str) -> Decimal | None:
    """A decimal number as the filter language reads one (no exponent, at most 1,000 chars)."""
    if len(text) <= 1000 and _NUMBER.fullmatch(text):
        return Decimal(text)
    return None


def compare(left, relation: str, right) -> bool:
    return {">": left > right, "<": left < right, "=": left == right, "!=": left != right}[relation]


def version_tuple(version: str) -> list[tuple]:
    """Dotted segments: digits as numbers before any other text; trailing ``.0`` segments dropped."""
    stripped = re.sub(r"(\.0+)+\Z", "", version)
    segments = stripped.split(".") if stripped else []
    return [(0, int(s)) if s.isascii() and s.isdigit() else (1, s) for s in segments]


def distance(lat1: float, long1: float, lat2: float, long2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(long2 - long1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(a)))


def tag_match(tags: dict, f: dict) -> bool:
    key, relation = f["key"], f["relation"]
    present = key in tags
    tag = tags.get(key)
    value = str(f.get("value", ""))
    if relation == "exists":
        return present
    if relation == "not_exists":
        return not present
    if not present:
        return False
    if relation in ("=", "!="):
        equal = tag == value or (
            number(tag) is not None and number(value) is not None and number(tag) == number(value)
        )
        return equal if relation == "=" else not equal
    if relation in (">", "<"):
        if number(value) is not None and number(tag) is not None:
            return compare(number(tag), relation, number(value))
        return compare(tag, relation, value)
    if relation in ("time_elapsed_gt", "time_elapsed_lt"):
        if number(tag) is None:
            return False
        elapsed = Decimal(repr(NOW.timestamp())) - number(tag)
        return (
            elapsed > Decimal(value.strip())
            if relation == "time_elapsed_gt"
            else elapsed < Decimal(value.strip())
        )
    members = [item.strip() for item in value.split(",")]
    return (tag in members) if relation == "in_array" else (tag not in members)


def filter_match(player: dict, f: dict) -> bool:
    field, relation = f["field"], f.get("relation")
    if field == "tag":
        return tag_match(player["tags"], f)
    if field in ("session_count", "session_time"):
        column = "session_count" if field == "session_count" else "playtime"
        return compare(player[column], relation, int(Decimal(str(f["value"]).strip())))
    if field == "amount_spent":
        return compare(player["amount_spent"], relation, Decimal(str(f["value"]).strip()))
    if field in ("last_session", "first_session"):
        moment = player["last_active" if field == "last_session" else "created_at"]
        cutoff = NOW - timedelta(hours=float(Decimal(str(f["hours_ago"]).strip())))
        return moment < cutoff if relation == ">" else moment > cutoff
    if field == "language":
        if player["language"] is None:
            return False
        return compare(player["language"], relation, f["value"].strip())
    if field == "country":
        return player["country"] is not None and player["country"].upper() == f["value"].strip().upper()
    if field == "rooted":
        return player["rooted"] is (str(f["value"]).lower() == "true")
    if field == "app_version":
        version = player["game_version"]
        if not version:
            return False
        return compare(version_tuple(version), relation, version_tuple(f["value"].strip()))
    if field == "bought_sku":
        wanted = Decimal(str(f["value"]).strip())
        return any(
            sku == f["key"] and compare(amount, relation, wanted) for sku, amount in player["purchases"]
        )
    if field == "email":
        address = f["value"].strip().lower()
        own = player["device_type"] == DeviceType.EMAIL and (player["identifier"] or "").lower() == address
        return own or player["linked_email"] == address
    if field == "location":
        if player["lat"] is None:
            return False
        return distance(f["lat"], f["long"], player["lat"], player["long"]) <= f["radius"]
    raise AssertionError(field)


def reference_match(player: dict, filters: list[dict]) -> bool:
    """OR of AND-groups; ``{"operator": "AND"}`` changes nothing."""
    groups: list[list[dict]] = [[]]
    for entry in filters:
        if "operator" in entry:
            if entry["operator"].upper() == "OR":
                groups.append([])
        else:
            groups[-1].append(entry)
    return any(all(filter_match(player, f) for f in group) for group in groups)


# --- generators ------------------------------------------------------------------------------------

TAG_KEYS = ["level", "name", "ts"]
TAG_VALUES = st.one_of(
    st.sampled_from(
        ["1", "10", "10.0", "2", "-3", "+4", ".5", "1.", "abc", "ABC", "", " 1", "a,b", "é", "z"]
    ),
    st.integers(-50, 50).map(str),
    st.integers(1_780_000_000, 1_790_000_000).map(str),  # unix seconds around NOW
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4),
)
VERSIONS = st.one_of(
    st.sampled_from(
        ["1", "1.0", "1.0.0", "1.2", "1.10", "1.2a", "2.0.1", "10", "1..2", "0", "01.2", "1.a", "a", "1.00"]
    ),
    st.lists(st.integers(0, 12).map(str), min_size=1, max_size=3).map(".".join),
)
EMAILS = ["a@example.com", "B@Example.com", "c@example.com"]


@st.composite
def players(draw) -> dict:
    email_player = draw(st.booleans()) and draw(st.integers(0, 3)) == 0
    located = draw(st.booleans())
    return {
        "device_type": DeviceType.EMAIL if email_player else draw(st.sampled_from([0, 1, 5])),
        "identifier": draw(st.sampled_from(EMAILS)) if email_player else None,
        "linked_email": None
        if email_player
        else draw(st.sampled_from([None, None, *[e.lower() for e in EMAILS]])),
        "tags": draw(st.dictionaries(st.sampled_from(TAG_KEYS), TAG_VALUES, max_size=3)),
        "session_count": draw(st.integers(0, 20)),
        "playtime": draw(st.integers(0, 5000)),
        "amount_spent": draw(st.decimals(0, 100, places=2)),
        "language": draw(st.sampled_from([None, "en", "fr", "de", ""])),
        "country": draw(st.sampled_from([None, "US", "us", "FR", "de"])),
        "rooted": draw(st.sampled_from([None, True, False])),
        "game_version": draw(st.one_of(st.none(), st.just(""), VERSIONS)),
        "last_active": NOW - timedelta(minutes=draw(st.integers(0, 60 * 24 * 10))),
        "created_at": NOW - timedelta(minutes=draw(st.integers(0, 60 * 24 * 30))),
        "lat": draw(st.floats(-89, 89)) if located else None,
        "long": draw(st.floats(-180, 180)) if located else None,
        "purchases": draw(
            st.lists(st.tuples(st.sampled_from(["gold", "silver"]), st.decimals(0, 20, places=2)), max_size=2)
        ),
    }


NUMBER_TEXT = st.one_of(st.integers(-20, 60).map(str), st.sampled_from(["10.0", "1.5", "+3", ".5", " 7 "]))


@st.composite
def single_filter(draw) -> dict:
    field = draw(
        st.sampled_from(
            [
                "tag",
                "tag",
                "tag",
                "session_count",
                "session_time",
                "amount_spent",
                "last_session",
                "first_session",
                "language",
                "country",
                "rooted",
                "app_version",
                "bought_sku",
                "email",
                "location",
            ]
        )
    )
    if field == "tag":
        relation = draw(
            st.sampled_from(
                [
                    ">",
                    "<",
                    "=",
                    "!=",
                    "exists",
                    "not_exists",
                    "time_elapsed_gt",
                    "time_elapsed_lt",
                    "in_array",
                    "not_in_array",
                ]
            )
        )
        f = {"field": "tag", "key": draw(st.sampled_from(TAG_KEYS)), "relation": relation}
        if relation in ("exists", "not_exists"):
            return f
        if relation.startswith("time_elapsed"):
            f["value"] = draw(st.integers(0, 10 * 24 * 3600).map(str))
        elif relation.endswith("in_array"):
            f["value"] = ",".join(
                draw(st.lists(TAG_VALUES.filter(lambda v: "," not in v), min_size=1, max_size=4))
            )
        else:
            f["value"] = draw(TAG_VALUES)
        return f
    if field in ("session_count", "session_time"):
        return {
            "field": field,
            "relation": draw(st.sampled_from([">", "<", "=", "!="])),
            "value": draw(st.one_of(st.integers(0, 20), st.integers(0, 20).map(str))),
        }
    if field in ("amount_spent", "bought_sku"):
        f = {
            "field": field,
            "relation": draw(st.sampled_from([">", "<", "="])),
            "value": draw(st.one_of(st.decimals(0, 100, places=2).map(str), st.integers(0, 100))),
        }
        if field == "bought_sku":
            f["key"] = draw(st.sampled_from(["gold", "silver"]))
        return f
    if field in ("last_session", "first_session"):
        return {
            "field": field,
            "relation": draw(st.sampled_from([">", "<"])),
            "hours_ago": draw(
                st.one_of(st.integers(0, 800).map(str), st.sampled_from(["1.5", "0.25", "24"]))
            ),
        }
    if field == "language":
        return {
            "field": field,
            "relation": draw(st.sampled_from(["=", "!="])),
            "value": draw(st.sampled_from(["en", "fr", " de"])),
        }
    if field == "country":
        return {"field": field, "relation": "=", "value": draw(st.sampled_from(["US", "us", "fr", "DE"]))}
    if field == "rooted":
        return {
            "field": field,
            "relation": "=",
            "value": draw(st.sampled_from([True, False, "true", "FALSE"])),
        }
    if field == "app_version":
        return {
            "field": field,
            "relation": draw(st.sampled_from([">", "<", "=", "!="])),
            "value": draw(VERSIONS),
        }
    if field == "email":
        return {
            "field": field,
            "relation": "=",
            "value": draw(st.sampled_from([e.upper() for e in EMAILS] + EMAILS)),
        }
    return {
        "field": "location",
        "radius": draw(st.floats(1, 3e6)),
        "lat": draw(st.floats(-89, 89)),
        "long": draw(st.floats(-180, 180)),
    }


@st.composite
def filter_lists(draw) -> list[dict]:
    count = draw(st.integers(1, 4))
    entries: list[dict] = []
    for index in range(count):
        if index:
            operator = draw(st.sampled_from([None, None, "OR", "or", "AND"]))
            if operator:
                entries.append({"operator": operator})
        entries.append(draw(single_filter()))
    return entries


# --- the properties --------------------------------------------------------------------------------


def _store(app, specs: list[dict]) -> dict:
    """The players as rows; returns ``{player id: spec}``."""
    Player.objects.filter(app=app).delete()
    rows = {}
    emails = {}
    for spec in specs:
        player = Player.objects.create(
            app=app,
            device_type=spec["device_type"],
            identifier=spec["identifier"],
            tags=spec["tags"],
            session_count=spec["session_count"],
            playtime=spec["playtime"],
            amount_spent=spec["amount_spent"],
            language=spec["language"],
            country=spec["country"],
            rooted=spec["rooted"],
            game_version=spec["game_version"],
            last_active=spec["last_active"],
            created_at=spec["created_at"],
            lat=spec["lat"],
            long=spec["long"],
        )
        for sku, amount in spec["purchases"]:
            Purchase.objects.create(player=player, sku=sku, amount=amount)
        rows[player.pk] = spec
        if spec["identifier"]:
            emails.setdefault(spec["identifier"].lower(), player)
    for pk, spec in rows.items():
        if spec["device_type"] != DeviceType.EMAIL:
            email = emails.get(spec["linked_email"])
            if email is None:
                spec["linked_email"] = None  # no email player with that address: no link
            elif email.parent_player_id is None:
                Player.objects.filter(pk=email.pk).update(parent_player_id=pk)
                email.parent_player_id = pk
            else:
                spec["linked_email"] = None  # an email player links to one push player only
    return rows


def _near_location_edge(specs: list[dict], filters: list[dict]) -> bool:
    """A player within a metre of a location filter's radius: float rounding may decide either way."""
    return any(
        abs(distance(f["lat"], f["long"], spec["lat"], spec["long"]) - f["radius"]) < 1
        for f in filters
        if f.get("field") == "location"
        for spec in specs
        if spec["lat"] is not None
    )


def check_agreement(app, specs: list[dict], filters: list[dict]) -> None:
    assume(not _near_location_edge(specs, filters))
    with transaction.atomic():  # a database error fails this example only, with its own traceback
        _check_agreement(app, specs, filters)


def _check_agreement(app, specs: list[dict], filters: list[dict]) -> None:
    rows = _store(app, specs)
    q = compile_filters(filters, now=NOW)
    selected = set(Player.objects.filter(app=app).filter(q).values_list("pk", flat=True))
    excluded = set(Player.objects.filter(app=app).exclude(q).values_list("pk", flat=True))
    expected = {pk for pk, spec in rows.items() if reference_match(spec, filters)}
    assert selected == expected, {
        "filters": filters,
        "sql_only": [rows[pk] for pk in selected - expected],
        "reference_only": [rows[pk] for pk in expected - selected],
    }
    assert excluded == set(rows) - selected


def unique_identifier(spec: dict) -> object:
    """(app, identifier) is unique; players without one may repeat."""
    return spec["identifier"] or object()


@pytest.fixture
def app(db):
    return AppFactory()


@SHORT
@given(specs=st.lists(players(), max_size=5, unique_by=unique_identifier), filters=filter_lists())
def test_compiled_filters_select_what_the_reference_selects(app, specs, filters):
    check_agreement(app, specs, filters)


@pytest.mark.slow
@LONG
@given(specs=st.lists(players(), max_size=8, unique_by=unique_identifier), filters=filter_lists())
def test_compiled_filters_select_what_the_reference_selects_long(app, specs, filters):
    check_agreement(app, specs, filters)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["field", "relation", "key", "value", "hours_ago", "radius", "lat", "long", "operator"]
)
LOOSE_ENTRY = st.dictionaries(
    KEYS,
    st.one_of(
        JSON,
        st.sampled_from(
            ["tag", "location", "app_version", "session_count", "=", ">", "in_array", "OR", "exists"]
        ),
        st.sampled_from(["1e309", "NaN", "-0", "9" * 1001, "1" * 40, "\x00", "1.2.3", "1,2,3"]),
    ),
    max_size=6,
)


def check_no_database_error(app, filters) -> None:
    try:
        q = compile_filters(filters, now=NOW)
    except FilterError:
        return
    list(Player.objects.filter(app=app).filter(q).values_list("pk", flat=True))
    list(Player.objects.filter(app=app).exclude(q).values_list("pk", flat=True))


@SHORT
@given(filters=st.one_of(JSON, st.lists(st.one_of(LOOSE_ENTRY, single_filter()), max_size=4)))
def test_any_filter_list_is_refused_or_runs(app, filters):
    Player.objects.get_or_create(
        app=app, identifier="x", defaults={"device_type": 1, "tags": {"level": "1e5"}, "game_version": "1.0"}
    )
    with transaction.atomic():  # a database error fails this example only, with its own traceback
        check_no_database_error(app, filters)


@pytest.mark.parametrize(
    ("lat", "long"), [(5e-324, 0.0), (0.0, 1e-310), (1e-200, -1e-200), (89.9999999999, 1e-320)]
)
def test_a_location_near_zero_degrees_is_measured_not_an_underflow(app, lat, long):
    """Found by the long property run: radians() and power() of subnormal angles raised
    "value out of range: underflow" in PostgreSQL, a 500 for any filter or player near 0."""
    near = Player.objects.create(app=app, device_type=1, lat=lat, long=long)
    Player.objects.create(app=app, device_type=1, lat=lat + 1, long=long)
    for centre in ((lat, long), (1e-300, 0.0), (0.0, 0.0)):
        if abs(centre[0] - lat) > 1:
            continue
        filters = [{"field": "location", "radius": 1000, "lat": centre[0], "long": centre[1]}]
        with transaction.atomic():
            selected = set(Player.objects.filter(app=app).filter(compile_filters(filters, now=NOW)))
        assert selected == {near}
