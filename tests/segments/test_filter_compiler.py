"""compile_filters against a small pure-Python reading of onesignal-api.md §6, player by player.

The reference evaluator below is written from the document, not from segments/filters.py: each
filter list must select exactly the same players in SQL as in Python, and its negation exactly
the others (compiled conditions must never be SQL NULL, or ``exclude()`` would lose rows).
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from players import tag_indexes
from players.models import DeviceType, Player, Purchase
from segments.filters import compile_filters
from tests.factories import AppFactory, PlayerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())

# --- the reference evaluator ------------------------------------------------------------------


def ref_number(text: str | None) -> Decimal | None:
    """§6.4: a finite decimal number (no exponent); at most 1,000 characters."""
    if text is None or len(text) > 1000 or not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", text):
        return None
    return Decimal(text)


def ref_order(left, relation: str, right) -> bool:
    return {">": left > right, "<": left < right, "=": left == right, "!=": left != right}[relation]


def ref_tag(player: Player, f: dict) -> bool:
    tag = player.tags.get(f["key"])
    relation, value = f["relation"], f.get("value")
    if relation == "exists":
        return tag is not None
    if relation == "not_exists":
        return tag is None
    if tag is None:
        return False  # a missing tag matches only not_exists
    if relation in ("in_array", "not_in_array"):
        inside = tag in [item.strip() for item in str(value).split(",")]
        return inside if relation == "in_array" else not inside
    if relation in ("time_elapsed_gt", "time_elapsed_lt"):
        stamp = ref_number(tag)
        if stamp is None:
            return False
        elapsed = Decimal(NOW_TS) - stamp
        return elapsed > Decimal(value) if relation == "time_elapsed_gt" else elapsed < Decimal(value)
    value = str(value)
    left, right = ref_number(tag), ref_number(value)
    if left is not None and right is not None:
        return ref_order(left, relation, right)
    return ref_order(tag, relation, value)  # Python str order is code-point order


def ref_version(text: str) -> tuple:
    parts = text.split(".")
    while len(parts) > 1 and re.fullmatch("0+", parts[-1]):
        parts.pop()  # 1.0.0 == 1
    return tuple((0, int(p)) if re.fullmatch("[0-9]+", p) else (1, p) for p in parts)


def haversine_metres(lat1, lng1, lat2, lng2) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = math.radians(lat2 - lat1), math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def ref_filter(player: Player, f: dict, world: World) -> bool:
    field, relation = f["field"], f.get("relation")
    if field == "tag":
        return ref_tag(player, f)
    if field in ("last_session", "first_session"):
        moment = player.last_active if field == "last_session" else player.created_at
        hours = (NOW - moment).total_seconds() / 3600
        return hours > float(f["hours_ago"]) if relation == ">" else hours < float(f["hours_ago"])
    if field == "session_count":
        return ref_order(player.session_count, relation, int(f["value"]))
    if field == "session_time":
        return ref_order(player.playtime, relation, int(f["value"]))
    if field == "amount_spent":
        return ref_order(Decimal(player.amount_spent), relation, Decimal(f["value"]))
    if field == "bought_sku":
        return any(
            ref_order(Decimal(p.amount), relation, Decimal(f["value"]))
            for p in world.purchases.get(player.id, [])
            if p.sku == f["key"]
        )
    if field == "language":
        return player.language is not None and ref_order(player.language, relation, f["value"])
    if field == "app_version":
        if not player.game_version:
            return False
        return ref_order(ref_version(player.game_version), relation, ref_version(f["value"]))
    if field == "country":
        return player.country is not None and player.country.upper() == f["value"].upper()
    if field == "rooted":
        return player.rooted is not None and player.rooted == (str(f["value"]).lower() == "true")
    if field == "email":
        address = f["value"].lower()
        if player.device_type == DeviceType.EMAIL and (player.identifier or "").lower() == address:
            return True
        return any(
            e.parent_player_id == player.id
            and e.device_type == DeviceType.EMAIL
            and e.identifier.lower() == address
            for e in world.players
        )
    if field == "location":
        if player.lat is None or player.long is None:
            return False
        distance = haversine_metres(player.lat, player.long, float(f["lat"]), float(f["long"]))
        return distance <= float(f["radius"])
    raise AssertionError(field)


def ref_evaluate(filters: list[dict], player: Player, world: World) -> bool:
    """§6.3: AND binds tighter than OR; an AND operator changes nothing."""
    groups: list[list[dict]] = [[]]
    for entry in filters:
        if entry.get("operator", "").upper() == "OR":
            groups.append([])
        elif "field" in entry:
            groups[-1].append(entry)
    return any(all(ref_filter(player, f, world) for f in group) for group in groups)


# --- the players --------------------------------------------------------------------------------


class World:
    def __init__(self, players: list[Player], purchases: dict):
        self.players = players
        self.purchases = purchases


TAG_VALUES = [
    "10",
    "9",
    "10.0",
    "010",
    "+10",
    "-3.5",
    ".5",
    "5.",
    "abc",
    "Abc",
    "",
    " 10",
    "1e3",
    "ä",
    "10a",
    "99999999999999999999999999",
    "1" * 1500,
]
VERSIONS = [
    "1.0",
    "1.0.0",
    "1",
    "1.2",
    "1.10",
    "1.9.3",
    "2.0-beta",
    "2.0",
    "10.0.1",
    "1..2",
    "",
    None,
    "01.2",
]
POINTS = [
    (52.5200, 13.4050),  # Berlin
    (52.5300, 13.4200),  # ~1.4 km away
    (52.4000, 13.0600),  # Potsdam, ~27 km
    (48.8566, 2.3522),  # Paris
    (-17.7134, 178.0650),  # Fiji, near the antimeridian
    (-17.8000, -179.9000),  # across it
    (89.9, 0.0),  # near the pole
    (89.9, 179.0),
    (None, None),
]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module, inside a transaction rolled back at its end (each test still
    runs in its own savepoint through pytest-django)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def build_world() -> World:
    app = AppFactory()
    other = AppFactory()
    rng = random.Random(20250601)
    players = []
    for index in range(90):
        tags = {}
        if index % 5:
            tags["level"] = TAG_VALUES[index % len(TAG_VALUES)]
        if index % 3 == 0:
            tags["plan"] = rng.choice(["gold", "silver", "Gold", "bronze,gold"])
        if index % 4 == 1:
            tags["seen"] = rng.choice(
                [str(NOW_TS - 600), str(NOW_TS - 7200), str(NOW_TS - 90000), "soon", "1.5e9"]
            )
        lat, lng = POINTS[index % len(POINTS)]
        players.append(
            PlayerFactory(
                app=app,
                tags=tags,
                last_active=NOW - timedelta(hours=rng.choice([0.5, 2, 23, 30, 100, 200, 1000])),
                created_at=NOW - timedelta(hours=rng.choice([10, 50, 500, 5000])),
                session_count=rng.choice([1, 2, 3, 10, 11, 50]),
                playtime=rng.choice([0, 59, 3600, 7200]),
                amount_spent=Decimal(rng.choice(["0", "0.99", "1.00", "4.99", "100"])),
                language=rng.choice(["en", "es", "de", None]),
                game_version=VERSIONS[index % len(VERSIONS)],
                country=rng.choice(["US", "us", "DE", None]),
                rooted=rng.choice([True, False, None]),
                lat=lat,
                long=lng,
                notification_types=rng.choice([1, 1, 1, -2, 0]),
            )
        )
    # Email players, one linked to a push player (SDK setEmail), one on its own.
    players.append(
        PlayerFactory(
            app=app,
            device_type=DeviceType.EMAIL,
            identifier="Fan@Example.com",
            parent_player_id=players[0].id,
        )
    )
    players.append(PlayerFactory(app=app, device_type=DeviceType.EMAIL, identifier="solo@example.com"))
    purchases: dict = {}
    for player in players[:40:3]:
        for sku, amount in [("coins", rng.choice(["0.99", "4.99"])), ("gems", "9.99")][: rng.choice([1, 2])]:
            purchases.setdefault(player.id, []).append(
                PurchaseFactory(player=player, sku=sku, amount=Decimal(amount))
            )
    # Another app's players match everything; none may leak in.
    PlayerFactory(app=other, tags={"level": "10", "plan": "gold"}, lat=52.52, long=13.405, country="US")
    for player in players:
        player.refresh_from_db()
    return World(players, purchases)


CASES = [
    # tags: numbers vs strings
    [{"field": "tag", "key": "level", "relation": "=", "value": "10"}],
    [{"field": "tag", "key": "level", "relation": "=", "value": 10}],
    [{"field": "tag", "key": "level", "relation": "=", "value": "abc"}],
    [{"field": "tag", "key": "level", "relation": "!=", "value": "10"}],
    [{"field": "tag", "key": "level", "relation": "!=", "value": "abc"}],
    [{"field": "tag", "key": "level", "relation": ">", "value": "9"}],
    [{"field": "tag", "key": "level", "relation": "<", "value": "9.5"}],
    [{"field": "tag", "key": "level", "relation": ">", "value": "Abc"}],
    [{"field": "tag", "key": "level", "relation": "<", "value": "b"}],
    [{"field": "tag", "key": "level", "relation": ">", "value": "-4"}],
    [{"field": "tag", "key": "level", "relation": "=", "value": ""}],
    [{"field": "tag", "key": "level", "relation": "exists"}],
    [{"field": "tag", "key": "level", "relation": "not_exists"}],
    [{"field": "tag", "key": "nope", "relation": "!=", "value": "x"}],
    [{"field": "tag", "key": "plan", "relation": "in_array", "value": "gold, silver"}],
    [{"field": "tag", "key": "plan", "relation": "not_in_array", "value": "gold,Gold"}],
    [{"field": "tag", "key": "plan", "relation": "in_array", "value": "bronze,gold"}],
    [{"field": "tag", "key": "seen", "relation": "time_elapsed_gt", "value": "3600"}],
    [{"field": "tag", "key": "seen", "relation": "time_elapsed_lt", "value": "3600"}],
    [{"field": "tag", "key": "seen", "relation": "time_elapsed_lt", "value": "100000"}],
    # composition
    [
        {"field": "session_count", "relation": ">", "value": "2"},
        {"operator": "AND"},
        {"field": "tag", "key": "level", "relation": "=", "value": "10"},
        {"operator": "OR"},
        {"field": "last_session", "relation": "<", "hours_ago": "24"},
    ],
    [
        {"field": "tag", "key": "plan", "relation": "=", "value": "gold"},
        {"field": "language", "relation": "=", "value": "en"},
        {"operator": "OR"},
        {"field": "tag", "key": "plan", "relation": "=", "value": "Gold"},
        {"field": "country", "relation": "=", "value": "de"},
        {"operator": "or"},
        {"field": "amount_spent", "relation": ">", "value": "50"},
    ],
    # sessions and money
    [{"field": "last_session", "relation": ">", "hours_ago": "24"}],
    [{"field": "last_session", "relation": "<", "hours_ago": "1.1"}],
    [{"field": "last_session", "relation": ">", "hours_ago": 168}],
    [{"field": "first_session", "relation": "<", "hours_ago": "100"}],
    [{"field": "first_session", "relation": ">", "hours_ago": "1000"}],
    [{"field": "session_count", "relation": "=", "value": "10"}],
    [{"field": "session_count", "relation": "!=", "value": "10"}],
    [{"field": "session_count", "relation": "<", "value": 3}],
    [{"field": "session_time", "relation": ">", "value": "3600"}],
    [{"field": "session_time", "relation": "=", "value": "0"}],
    [{"field": "amount_spent", "relation": ">", "value": "0.999"}],
    [{"field": "amount_spent", "relation": "=", "value": "1"}],
    [{"field": "amount_spent", "relation": "<", "value": "0.99"}],
    [{"field": "bought_sku", "key": "coins", "relation": ">", "value": "1"}],
    [{"field": "bought_sku", "key": "coins", "relation": "=", "value": "0.99"}],
    [{"field": "bought_sku", "key": "gems", "relation": "<", "value": "100"}],
    # device fields
    [{"field": "language", "relation": "=", "value": "es"}],
    [{"field": "language", "relation": "!=", "value": "en"}],
    [{"field": "country", "relation": "=", "value": "US"}],
    [{"field": "country", "relation": "=", "value": "us"}],
    [{"field": "rooted", "relation": "=", "value": "true"}],
    [{"field": "rooted", "relation": "=", "value": False}],
    [{"field": "app_version", "relation": "=", "value": "1.0.0"}],
    [{"field": "app_version", "relation": ">", "value": "1.9"}],
    [{"field": "app_version", "relation": "<", "value": "1.10"}],
    [{"field": "app_version", "relation": "!=", "value": "1"}],
    [{"field": "app_version", "relation": ">", "value": "2.0"}],
    [{"field": "app_version", "relation": "<", "value": "2.0-beta"}],
    [{"field": "email", "relation": "=", "value": "fan@example.com"}],
    [{"field": "email", "relation": "=", "value": "SOLO@example.com"}],
    # location
    [{"field": "location", "radius": 5000, "lat": 52.52, "long": 13.405}],
    [{"field": "location", "radius": "30000", "lat": "52.52", "long": "13.405"}],
    [{"field": "location", "radius": 100, "lat": 52.52, "long": 13.405}],
    [{"field": "location", "radius": 1_100_000, "lat": 50.0, "long": 8.0}],
    [{"field": "location", "radius": 50_000, "lat": -17.75, "long": 179.99}],
    [{"field": "location", "radius": 300_000, "lat": -17.75, "long": -179.99}],
    [{"field": "location", "radius": 50_000, "lat": 89.95, "long": -90.0}],
    [{"field": "location", "radius": 30_000_000, "lat": 0, "long": 0}],
    # operands far outside the columns' ranges answer, never raise
    [{"field": "session_count", "relation": "<", "value": "9" * 40}],
    [{"field": "session_count", "relation": "!=", "value": "-" + "9" * 40}],
    [{"field": "session_time", "relation": ">", "value": "9" * 40}],
    [{"field": "amount_spent", "relation": "<", "value": "9" * 40 + ".5"}],
    [{"field": "last_session", "relation": ">", "hours_ago": "9" * 40}],
    [{"field": "tag", "key": "seen", "relation": "time_elapsed_lt", "value": "9" * 40}],
    [{"field": "location", "radius": "9" * 40, "lat": 0, "long": 0}],
]


def sql_ids(app, q) -> set:
    return set(Player.objects.filter(app=app).filter(q).values_list("id", flat=True))


@pytest.mark.parametrize("filters", CASES, ids=[str(i) for i in range(len(CASES))])
def test_sql_selects_the_same_players_as_the_reference(world, filters):
    app = world.players[0].app
    q = compile_filters(filters, now=NOW)
    expected = {p.id for p in world.players if ref_evaluate(filters, p, world)}
    assert sql_ids(app, q) == expected
    everyone = {p.id for p in world.players}
    assert sql_ids(app, ~q) == everyone - expected  # never NULL: negation is the complement


def test_the_cases_are_not_trivial(world):
    """Most cases select some players and leave others out, or they would prove little."""
    sizes = [sum(ref_evaluate(f, p, world) for p in world.players) for f in CASES]
    assert sum(1 for size in sizes if 0 < size < len(world.players)) >= len(CASES) - 6


def test_an_empty_list_is_every_player(world):
    app = world.players[0].app
    assert sql_ids(app, compile_filters([], now=NOW)) == {p.id for p in world.players}


def test_a_huge_numeric_tag_is_a_string_and_raises_nothing(world):
    app = world.players[0].app
    player = PlayerFactory(app=app, tags={"level": "9" * 200_000})
    q = compile_filters([{"field": "tag", "key": "level", "relation": ">", "value": "5"}], now=NOW)
    assert player.id in sql_ids(app, q)  # "999…" > "5" as strings too


def test_purchases_of_another_player_do_not_count(world):
    app = world.players[0].app
    buyer = PlayerFactory(app=app)
    Purchase.objects.create(player=buyer, sku="unique-sku", amount=Decimal("5"))
    q = compile_filters(
        [{"field": "bought_sku", "key": "unique-sku", "relation": ">", "value": "1"}], now=NOW
    )
    assert sql_ids(app, q) == {buyer.id}


# --- the same answers through the indexes of HERALD_INDEXED_NUMERIC_TAGS ---------------------

INDEXED_KEYS = ["level", "seen"]
TAG_CASES = [case for case in CASES if any(entry.get("field") == "tag" for entry in case)]


@pytest.fixture(scope="module")
def indexed_world(world, django_db_blocker):
    """The world with the tag indexes built (inside its transaction, so they roll back with it)."""
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:  # the world's deferred foreign key checks run now
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for key in INDEXED_KEYS:
            tag_indexes.create(key, concurrently=False)
    return world


@pytest.fixture
def indexes_only(settings):
    """The indexed form, and a planner that must use indexes wherever it can: a sequential scan
    would hide an indexed expression that answers differently from the one compiled."""
    settings.HERALD_INDEXED_NUMERIC_TAGS = INDEXED_KEYS
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_seqscan")


@pytest.mark.parametrize("filters", TAG_CASES, ids=[str(i) for i in range(len(TAG_CASES))])
def test_indexed_tags_select_the_same_players_as_the_reference(indexed_world, indexes_only, filters):
    app = indexed_world.players[0].app
    q = compile_filters(filters, now=NOW)
    expected = {p.id for p in indexed_world.players if ref_evaluate(filters, p, indexed_world)}
    assert sql_ids(app, q) == expected
    assert sql_ids(app, ~q) == {p.id for p in indexed_world.players} - expected


def test_the_indexed_form_is_what_compiles_for_the_named_keys(indexed_world, indexes_only):
    players = Player.objects.filter(compile_filters(TAG_CASES[5], now=NOW))  # level > 9
    assert "herald_tag_number" in str(players.query) and "herald_tag_text" in str(players.query)
    plan = players.explain()
    assert tag_indexes.object_name("level", "num") in plan and tag_indexes.object_name("level", "txt") in plan
    other = [{"field": "tag", "key": "plan", "relation": ">", "value": "9"}]
    assert "herald_tag_number" not in str(Player.objects.filter(compile_filters(other, now=NOW)).query)


def test_an_indexed_tag_of_long_text_compares_whole_and_can_be_written(indexed_world, indexes_only):
    """A B-tree entry cannot hold a 1,024-character value of 4-byte characters: the text index keeps
    a prefix, and a comparison with a shorter operand still answers for the whole value."""
    app = indexed_world.players[0].app
    long_text = PlayerFactory(app=app, tags={"level": "\U0001f600" * 1024})
    just_above = PlayerFactory(app=app, tags={"level": "9" * 10 + "a" * 1000})
    q = compile_filters([{"field": "tag", "key": "level", "relation": ">", "value": "9" * 10}], now=NOW)
    selected = sql_ids(app, q)
    assert {long_text.id, just_above.id} <= selected  # "999…9aaa…" > "999…9" as text
    q = compile_filters([{"field": "tag", "key": "level", "relation": "<", "value": "9" * 10}], now=NOW)
    assert not {long_text.id, just_above.id} & sql_ids(app, q)
