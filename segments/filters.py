"""The OneSignal filter language (onesignal-api.md §6), compiled to a Django ``Q`` over Player.

Two public steps, both pure (no queries run here):

- ``validate_filters(filters)`` checks the shape, fields, relations and operands of a filter list
  and returns it normalised (operands as the wire types of spec 5.12.0 ``Filter``: ``value`` and
  ``hours_ago`` as strings, ``radius``/``lat``/``long`` as numbers; irrelevant keys dropped).
  It raises ``FilterError`` whose message is the user-facing 400 text (§2.3).
- ``compile_filters(filters, now=...)`` turns a list into one ``Q`` that runs as SQL.

Precedence (§6.3): consecutive filters are ANDed, ``{"operator": "OR"}`` separates AND-groups,
``{"operator": "AND"}`` changes nothing. ``A, B, OR, C`` is ``(A AND B) OR C``.

Every compiled condition is a strict boolean (never SQL NULL), so a compiled ``Q`` can be
negated (``~q``, ``exclude(q)``, as ``excluded_segments`` does) without NULL rows slipping out.

Semantics where OneSignal is silent (§6.4, our choice):

- Tag ``>``, ``<``, ``=``, ``!=`` compare as numbers when the tag value and ``value`` are both
  decimal numbers (``[+-]digits[.digits]``, at most 1,000 characters: no exponents), else as
  strings (``=`` exact and case-sensitive; ``>``/``<`` in code-point order: ``COLLATE "C"``).
  The numeric cast sits behind a ``CASE WHEN <regex>`` guard, so no tag can raise a cast error.
- A missing tag matches only ``not_exists``: never ``!=``, never ``not_in_array``. The same goes
  for an unset column (``language != "en"`` does not match players without a language).
- ``in_array`` / ``not_in_array``: exact string membership in the trimmed comma-separated list.
- ``time_elapsed_gt`` / ``_lt``: the tag holds unix seconds; ``now - tag`` is compared with
  ``value`` seconds. A non-numeric tag never matches.
- ``bought_sku``: the player has at least one purchase of SKU ``key`` whose amount compares
  with ``value`` (one purchase, not the sum).
- ``email``: the email player (device_type 11) with that address, case-insensitively, and the
  push players it is linked to (its ``parent_player_id``, set by the SDK's ``setEmail``).
- ``app_version``: dotted versions compared segment by segment, digit-only segments as
  numbers, and any other segment after every number, as a string; trailing ``.0`` segments do
  not count (``1.0 = 1.0.0``). Players without a version never match.
- ``location``: haversine distance on a sphere of radius 6,371,008.8 m, at most ``radius``
  metres; a bounding box on (lat, long) goes first so the index on those columns can help.

Index use (players/models.py): tag ``=`` with a non-numeric value and ``in_array`` are
``tags @> {...}`` containment (GIN ``player_tags_gin``); ``last_session``/``first_session``,
``session_count``, ``amount_spent``, ``language``, ``country`` and ``location`` use the
``(app, …)`` btree indexes. Tag ``=`` with a *numeric* value also matches other spellings of
the same number ("10.0" for "10"), a branch no index can answer, so it is ORed with the
containment and filtered over the app's rows. ``exists``/``not_exists``, ``!=``, ranges and
``app_version`` are filters too (jsonb_path_ops cannot answer key existence). For the tag keys of
``HERALD_INDEXED_NUMERIC_TAGS``, numeric ``=``, ``>``, ``<`` and ``time_elapsed_*`` are written
with the expressions of that key's partial indexes instead (players/tag_indexes.py), which answer
them; the players selected are the same either way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.utils import timezone

from players import tag_indexes
from players.models import DeviceType, Player, Purchase
from players.validation import MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH

MAX_ENTRIES = 200
MAX_ARRAY_VALUES = 20
MAX_NUMBER_LENGTH = 1000
# The longest tag key and value a player may have: a longer operand can match nothing.
MAX_KEY_LENGTH = MAX_TAG_KEY_LENGTH
MAX_VALUE_LENGTH = MAX_TAG_VALUE_LENGTH
EARTH_RADIUS_METRES = 6_371_008.8
# Far enough back for any "more than N hours ago", near enough to stay a valid datetime.
MAX_HOURS_AGO = Decimal(10_000_000)

TOO_MANY_ENTRIES = f"Filters may contain at most {MAX_ENTRIES} entries"
OPERATOR_AT_EDGE = "Filters must not start or end with an operator"
USER_BASED_FIELDS = ("message_event", "custom_event")

# The same pattern guards the SQL cast and decides "numeric" in Python. fullmatch in Python,
# ^…$ in PostgreSQL (whose $ matches only at the very end, like Python's fullmatch).
NUMBER_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)"
_NUMBER = re.compile(NUMBER_PATTERN)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_SQL_NUMBER = f"^{NUMBER_PATTERN}$"
# Trailing ".0" segments of a version do not count: "1.0" == "1". ($ is the end in PostgreSQL.)
_VERSION_ZERO_TAIL_SQL = r"(\.0+)+$"
_VERSION_ZERO_TAIL = re.compile(r"(\.0+)+\Z")

COMPARISONS = (">", "<", "=", "!=")
TAG_RELATIONS = (
    *COMPARISONS,
    "exists",
    "not_exists",
    "time_elapsed_gt",
    "time_elapsed_lt",
    "in_array",
    "not_in_array",
)
# field -> relations it accepts (§6.2; session_time takes = and != as spec 1.0.2 does).
RELATIONS: dict[str, tuple[str, ...]] = {
    "last_session": (">", "<"),
    "first_session": (">", "<"),
    "session_count": COMPARISONS,
    "session_time": COMPARISONS,
    "amount_spent": (">", "<", "="),
    "bought_sku": (">", "<", "="),
    "tag": TAG_RELATIONS,
    "language": ("=", "!="),
    "app_version": COMPARISONS,
    "location": (),
    "email": ("=",),
    "country": ("=",),
    "rooted": ("=",),
}


class FilterError(Exception):
    """A filter list that cannot be used; ``message`` is the 400 text shown to the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _invalid(index: int, detail: str) -> FilterError:
    return FilterError(f"Invalid filter: filters[{index}]: {detail}"[:300])


def is_number(text: str) -> bool:
    """Whether a tag value or operand takes part in numeric comparison (§6.4)."""
    return len(text) <= MAX_NUMBER_LENGTH and _NUMBER.fullmatch(text) is not None


# --- validation ---------------------------------------------------------------------------------


def validate_filters(filters: object) -> list[dict]:
    """The filter list, checked and normalised; raises FilterError.

    Steps: a list of objects → at most 200 entries → each entry is a filter or an operator →
    no operator first, last or next to another → each filter's field, relation and operands.
    An empty list is returned as is: segments refuse it, notifications read it as "no filters".
    """
    if not isinstance(filters, list):
        raise FilterError("Invalid filter: filters must be an array of filter objects")
    if len(filters) > MAX_ENTRIES:
        raise FilterError(TOO_MANY_ENTRIES)
    for index, entry in enumerate(filters):
        if not isinstance(entry, dict):
            raise _invalid(index, "each entry must be an object")
    operators = [_is_operator(entry) for entry in filters]
    if operators and (operators[0] or operators[-1]):
        raise FilterError(OPERATOR_AT_EDGE)
    for index in range(1, len(filters)):
        if operators[index] and operators[index - 1]:
            raise _invalid(index, "two operators in a row")
    return [
        _normalise_operator(index, entry) if operators[index] else _normalise_filter(index, entry)
        for index, entry in enumerate(filters)
    ]


def _is_operator(entry: dict) -> bool:
    return entry.get("operator") is not None


def _normalise_operator(index: int, entry: dict) -> dict:
    if entry.get("field") is not None:
        raise _invalid(index, "an entry is either a filter (field) or an operator, not both")
    operator = entry["operator"]
    if not isinstance(operator, str) or operator.upper() not in ("AND", "OR"):
        raise _invalid(index, 'operator must be "AND" or "OR"')
    return {"operator": operator.upper()}


def _normalise_filter(index: int, entry: dict) -> dict:
    field = entry.get("field")
    if field is None:
        raise _invalid(index, "field is required")
    if not isinstance(field, str):
        raise _invalid(index, "field must be a string")
    if field in USER_BASED_FIELDS:
        raise _invalid(
            index, "user-based filters (message_event, custom_event) are not supported via the API"
        )
    if field not in RELATIONS:
        raise _invalid(index, f'unknown field "{field}"')
    if field == "location":
        # The location filter has no relation (§6.2); one sent anyway is ignored.
        return {
            "field": field,
            "radius": _number_operand(index, entry, "radius", low=0, low_inclusive=False),
            "lat": _number_operand(index, entry, "lat", low=-90, high=90),
            "long": _number_operand(index, entry, "long", low=-180, high=180),
        }
    relation = entry.get("relation")
    if relation is None:
        raise _invalid(index, "relation is required")
    if relation not in RELATIONS[field]:
        allowed = ", ".join(RELATIONS[field])
        raise _invalid(index, f'relation "{relation}" is not valid for field "{field}" (use {allowed})')
    normalised: dict[str, Any] = {"field": field, "relation": relation}
    if field in ("tag", "bought_sku"):
        key = entry.get("key")
        if not isinstance(key, str) or key == "":
            raise _invalid(index, f'key is required for field "{field}"')
        if len(key) > MAX_KEY_LENGTH:
            raise _invalid(index, f"key must be at most {MAX_KEY_LENGTH} characters")
        normalised["key"] = key
    if field in ("last_session", "first_session"):
        # hours_ago per the spec; some clients send it as value.
        raw = entry.get("hours_ago") if entry.get("hours_ago") is not None else entry.get("value")
        hours = _decimal_operand(index, raw, "hours_ago")
        if hours < 0:
            raise _invalid(index, "hours_ago must be a non-negative number")
        normalised["hours_ago"] = _text(raw).strip()
        return normalised
    if field == "tag" and relation in ("exists", "not_exists"):
        return normalised
    normalised["value"] = _value_operand(index, field, relation, entry.get("value"))
    return normalised


def _text(raw: Any) -> str:
    """A scalar operand as its wire string: JSON numbers are accepted and written as strings."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int):
        return str(raw)
    return format(Decimal(repr(raw)), "f")  # a finite float (checked by the caller)


def _scalar(index: int, raw: Any, name: str) -> str:
    if raw is None:
        raise _invalid(index, f"{name} is required")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _invalid(index, f"{name} must be a string")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _invalid(index, f"{name} must be a finite number")
    if isinstance(raw, str) and len(raw) > MAX_VALUE_LENGTH:
        raise _invalid(index, f"{name} must be at most {MAX_VALUE_LENGTH} characters")
    return _text(raw)


def _decimal_operand(index: int, raw: Any, name: str) -> Decimal:
    text = _scalar(index, raw, name).strip()
    if not is_number(text):
        raise _invalid(index, f"{name} must be a number")
    return Decimal(text)


def _number_operand(
    index: int,
    entry: dict,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    number = float(_decimal_operand(index, entry.get(name), name))
    too_low = low is not None and (number < low or (number == low and not low_inclusive))
    if too_low or (high is not None and number > high):
        if high is None:
            raise _invalid(index, f"{name} must be a positive number")
        raise _invalid(index, f"{name} must be a number from {low:g} to {high:g}")
    return number


def _value_operand(index: int, field: str, relation: str, raw: Any) -> str:
    if field == "rooted" and isinstance(raw, bool):
        return "true" if raw else "false"
    text = _scalar(index, raw, "value")
    if field in ("session_count", "session_time"):
        stripped = text.strip()
        if not is_number(stripped) or Decimal(stripped) != Decimal(stripped).to_integral_value():
            raise _invalid(index, "value must be an integer")
        return str(int(Decimal(stripped)))
    if field in ("amount_spent", "bought_sku") or relation in ("time_elapsed_gt", "time_elapsed_lt"):
        stripped = text.strip()
        if not is_number(stripped):
            raise _invalid(index, "value must be a number")
        if relation.startswith("time_elapsed") and Decimal(stripped) < 0:
            raise _invalid(index, "value must be a non-negative number of seconds")
        return stripped
    if relation in ("in_array", "not_in_array"):
        items = [item.strip() for item in text.split(",")]
        if len(items) > MAX_ARRAY_VALUES:
            raise _invalid(index, f"{relation} takes at most {MAX_ARRAY_VALUES} comma-separated values")
        return ",".join(items)
    if field == "rooted":
        if text.strip().lower() not in ("true", "false"):
            raise _invalid(index, 'value must be "true" or "false"')
        return text.strip().lower()
    if field in ("language", "app_version", "email", "country"):
        text = text.strip()
        if text == "":
            raise _invalid(index, "value is required")
    return text


# --- compilation --------------------------------------------------------------------------------


_PART = re.compile(r"(\{\d+\}|%s)")


class Sql(Expression):
    """A boolean SQL fragment: ``{0}``, ``{1}``… are source expressions, ``%s`` are params.

    Sources are compiled by Django (so table aliases stay right inside subqueries and joins);
    a source may appear more than once. Literal percent signs must be written ``%%``.
    """

    def __init__(self, template: str, *sources: Any, params: tuple | list = ()):
        super().__init__(output_field=BooleanField())
        self.template = template
        self.sources = list(sources)
        self.params = list(params)

    def get_source_expressions(self):
        return self.sources

    def set_source_expressions(self, exprs):
        self.sources = list(exprs)

    def as_sql(self, compiler, connection):
        compiled = [compiler.compile(source) for source in self.sources]
        params = iter(self.params)
        sql: list[str] = []
        out: list[Any] = []
        for part in _PART.split(self.template):
            if part == "%s":
                sql.append("%s")
                out.append(next(params))
            elif _PART.fullmatch(part):
                source_sql, source_params = compiled[int(part[1:-1])]
                sql.append(f"({source_sql})")
                out.extend(source_params)
            else:
                sql.append(part)
        return "".join(sql), out


def compile_filters(filters: list[dict], *, now: datetime | None = None) -> Q:
    """One ``Q`` over Player for a filter list (validated here too; FilterError on bad input).

    Steps: validate and normalise → split into AND-groups at each OR → one condition per filter
    (``_compile_one``) → AND within a group, OR across groups. An empty list gives ``Q()``
    (every player): callers decide whether "no filters" is allowed. ``now`` pins the clock for
    last_session, first_session and time_elapsed_*.
    """
    entries = validate_filters(filters)
    now = now or timezone.now()
    groups: list[Q] = []
    current: Q | None = None
    for entry in entries:
        if entry.get("operator") == "OR":
            groups.append(current)
            current = None
        elif entry.get("operator") == "AND":
            continue
        else:
            condition = _compile_one(entry, now)
            current = condition if current is None else current & condition
    if current is not None:
        groups.append(current)
    if not groups:
        return Q()
    result = groups[0]
    for group in groups[1:]:
        result |= group
    return result


def _compile_one(entry: dict, now: datetime) -> Q:
    return _COMPILERS[entry["field"]](entry, now)


def _compare(column: str, relation: str, operand: Any) -> Q:
    """``column <relation> operand`` for a NOT NULL column (Django adds NULL guards otherwise)."""
    lookup = {">": "gt", "<": "lt", "=": "exact"}
    if relation == "!=":
        return ~Q(**{column: operand})
    return Q(**{f"{column}__{lookup[relation]}": operand})


def _hours_ago(entry: dict, now: datetime) -> datetime:
    hours = min(Decimal(entry["hours_ago"].strip()), MAX_HOURS_AGO)
    return now - timedelta(seconds=float(hours * 3600))


def _session_age(column: str) -> Callable[[dict, datetime], Q]:
    def compile_age(entry: dict, now: datetime) -> Q:
        # "> 24 hours ago" is a moment before now - 24 h.
        cutoff = _hours_ago(entry, now)
        return Q(**{f"{column}__lt": cutoff}) if entry["relation"] == ">" else Q(**{f"{column}__gt": cutoff})

    return compile_age


def _integer_column(column: str) -> Callable[[dict, datetime], Q]:
    # An int operand on an integer column keeps the btree usable (int vs numeric would not).
    return lambda entry, now: _compare(column, entry["relation"], int(entry["value"]))


def _compile_amount_spent(entry: dict, now: datetime) -> Q:
    return _compare("amount_spent", entry["relation"], Decimal(entry["value"]))


def _compile_bought_sku(entry: dict, now: datetime) -> Q:
    lookup = {">": "gt", "<": "lt", "=": "exact"}[entry["relation"]]
    purchases = Purchase.objects.filter(
        player=OuterRef("pk"), sku=entry["key"], **{f"amount__{lookup}": Decimal(entry["value"])}
    )
    return Q(Exists(purchases))


def _compile_language(entry: dict, now: datetime) -> Q:
    if entry["relation"] == "=":
        return Q(language=entry["value"])
    return Q(language__isnull=False) & ~Q(language=entry["value"])


def _compile_country(entry: dict, now: datetime) -> Q:
    # UPPER(country) matches the functional index player_app_country_idx.
    return Q(country__isnull=False) & Q(Exact(Upper("country"), entry["value"].upper()))


def _compile_rooted(entry: dict, now: datetime) -> Q:
    return Q(rooted=entry["value"] == "true")


def _compile_email(entry: dict, now: datetime) -> Q:
    address = entry["value"]
    email_players = Player.objects.filter(device_type=DeviceType.EMAIL, identifier__iexact=address)
    linked = email_players.filter(parent_player_id__isnull=False).values("parent_player_id")
    return Q(device_type=DeviceType.EMAIL, identifier__iexact=address) | Q(pk__in=linked)


def version_key(version: str) -> list[str]:
    """A version as sortable text segments; the Python twin of ``_VERSION_KEY_SQL``.

    Digit-only segments become ``n`` + 4-digit length + digits without leading zeros (so text
    order is numeric order); any other segment becomes ``s`` + itself, after every number.
    """
    stripped = _VERSION_ZERO_TAIL.sub("", version)
    if stripped == "":
        return []  # string_to_array('', '.') is the empty array
    keys = []
    for segment in stripped.split("."):
        if re.fullmatch(r"[0-9]+", segment):
            digits = segment.lstrip("0")
            keys.append(f"n{len(digits):04d}{digits}")
        else:
            keys.append(f"s{segment}")
    return keys


_VERSION_KEY_SQL = (
    "ARRAY(SELECT CASE WHEN u.s ~ '^[0-9]+$' "
    "THEN 'n' || lpad(char_length(ltrim(u.s, '0'))::text, 4, '0') || ltrim(u.s, '0') "
    "ELSE 's' || u.s END "
    "FROM unnest(string_to_array(regexp_replace({0}, %s, ''), '.')) WITH ORDINALITY AS u(s, i) "
    "ORDER BY u.i)"
)


def _require_postgresql(field: str) -> None:
    """Tag and app_version comparisons are PostgreSQL SQL (JSONB containment, numeric casts);
    the embedded SQLite default of `make run` refuses them with a clear 400, not a 500."""
    if connection.vendor != "postgresql":
        raise FilterError(
            f"Invalid filter: {field} filters need PostgreSQL; this Herald runs on the embedded SQLite "
            "default (set DATABASE_URL to a PostgreSQL database)"
        )


def _compile_app_version(entry: dict, now: datetime) -> Q:
    _require_postgresql("app_version")
    operator = {">": ">", "<": "<", "=": "=", "!=": "<>"}[entry["relation"]]
    compare = Sql(
        f'{_VERSION_KEY_SQL} COLLATE "C" {operator} (%s::text[]) COLLATE "C"',
        F("game_version"),
        params=(_VERSION_ZERO_TAIL_SQL, version_key(entry["value"])),
    )
    return Q(game_version__isnull=False) & ~Q(game_version="") & Q(compare)


# PostgreSQL raises "value out of range: underflow" where a float8 product rounds to zero
# (radians(5e-324), power(1e-200, 2)). Angles this close to zero are snapped to zero, in Python
# for the operands and in SQL for the columns and differences: at most 1e-9 degrees, 0.1 mm.
_SNAP_DEGREES = 1e-9


def _snap(degrees: float) -> float:
    return 0.0 if abs(degrees) < _SNAP_DEGREES else degrees


def _snapped_sql(expression: str) -> str:
    return f"(CASE WHEN abs({expression}) < {_SNAP_DEGREES!r} THEN 0 ELSE {expression} END)"


def _compile_location(entry: dict, now: datetime) -> Q:
    radius, lat, lng = entry["radius"], _snap(entry["lat"]), _snap(entry["long"])
    located = Q(lat__isnull=False, long__isnull=False)
    angle = radius / EARTH_RADIUS_METRES  # the radius as an angle at the centre of the earth
    if angle >= math.pi:
        return located
    # Bounding box (J. Matuschek, "Finding Points Within a Distance of a Latitude/Longitude"),
    # widened a little so float rounding can only let extra rows through to the exact test.
    margin = 1e-6
    dlat = math.degrees(angle) + margin
    box = Q(lat__gte=lat - dlat, lat__lte=lat + dlat)
    if lat - dlat > -90 and lat + dlat < 90:
        dlng = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(lat))))) + margin
        if dlng < 180:
            low, high = lng - dlng, lng + dlng
            if low < -180:  # the box crosses the antimeridian: two longitude ranges
                box &= Q(long__gte=low + 360) | Q(long__lte=high)
            elif high > 180:
                box &= Q(long__gte=low) | Q(long__lte=high - 360)
            else:
                box &= Q(long__gte=low, long__lte=high)
    # LEAST(1, …): rounding can push the haversine term past 1, where asin() would raise.
    # Every angle is snapped (see _SNAP_DEGREES), so no product can underflow into an error.
    haversine = Sql(
        "COALESCE(2 * %s * asin(LEAST(1.0, sqrt("
        f"power(sin(radians({_snapped_sql('{0} - %s')}) / 2), 2) "
        f"+ cos(radians(%s)) * cos(radians({_snapped_sql('{0}')})) "
        f"* power(sin(radians({_snapped_sql('{1} - %s')}) / 2), 2)"
        "))) <= %s, false)",
        F("lat"),
        F("long"),
        params=(EARTH_RADIUS_METRES, lat, lat, lat, lng, lng, radius),
    )
    return located & box & Q(haversine)


# --- tags ---


def _tag_text(key: str) -> KeyTextTransform:
    return KeyTextTransform(key, "tags")


def _numeric_guard(position: str = "{0}") -> str:
    return f"{position} IS NOT NULL AND char_length({position}) <= {MAX_NUMBER_LENGTH} AND {position} ~ %s"


def _tag_present(key: str) -> Q:
    return Q(Sql("{0} IS NOT NULL", _tag_text(key)))


def _number_compare(key: str, operator: str, number: Decimal) -> Q:
    """The tag read as a number ``operator`` ``number``; false where it is missing or not a number.

    For a key of HERALD_INDEXED_NUMERIC_TAGS it is written with the expressions of that key's
    partial index (players/tag_indexes.py), so the planner can use it; otherwise as one CASE, which
    reads the tag once (the indexable form reads it on each call, so it is slower without the index).
    """
    if key in tag_indexes.indexed_keys():
        return Q(_indexed(tag_indexes.NUMBER_EXPRESSION, key, operator, number))
    sql = f"CASE WHEN {_numeric_guard()} THEN {{0}}::numeric {operator} %s ELSE false END"
    return Q(Sql(sql, _tag_text(key), params=(_SQL_NUMBER, number)))


def _indexed(expression: str, key: str, operator: str, operand: Any, collate: str = "") -> Sql:
    """``expression IS NOT NULL AND expression <operator> operand``: a strict boolean, written as
    the partial index of players/tag_indexes.py is (the same expression, and its predicate)."""
    term = expression.format(tags="{0}", key="%s")
    sql = f"{term} IS NOT NULL AND {term} {operator} (%s{collate})"
    return Sql(sql, F("tags"), params=(key, key, operand))


def _tag_equals(key: str, value: str) -> Q:
    containment = Q(tags__contains={key: value})  # what the GIN index answers
    if not is_number(value):
        return containment
    if key in tag_indexes.indexed_keys():
        return _number_compare(key, "=", Decimal(value))  # a numeric value's own spelling is a number too
    return containment | _number_compare(key, "=", Decimal(value))  # "10.0" = "10"


def _tag_order(key: str, relation: str, value: str) -> Q:
    if not is_number(value):
        return Q(Sql(f'COALESCE({{0}} {relation} (%s COLLATE "C"), false)', _tag_text(key), params=(value,)))
    if key in tag_indexes.indexed_keys() and len(value) < tag_indexes.TEXT_PREFIX:
        # Numbers compare as numbers, any other text as text: one partial index each.
        as_text = _indexed(tag_indexes.TEXT_EXPRESSION, key, relation, value, collate=' COLLATE "C"')
        return _number_compare(key, relation, Decimal(value)) | Q(as_text)
    sql = (
        f"CASE WHEN {{0}} IS NULL THEN false "
        f"WHEN {_numeric_guard()} THEN {{0}}::numeric {relation} %s "
        f'ELSE {{0}} {relation} (%s COLLATE "C") END'
    )
    return Q(Sql(sql, _tag_text(key), params=(_SQL_NUMBER, Decimal(value), value)))


def _tag_elapsed(key: str, relation: str, value: str, now: datetime) -> Q:
    # now - tag > value  <=>  tag < now - value (and the mirror image for _lt).
    cutoff = Decimal(repr(now.timestamp())) - Decimal(value)
    return _number_compare(key, "<" if relation == "time_elapsed_gt" else ">", cutoff)


def _tag_in(key: str, value: str) -> Q:
    members = Q()
    for item in dict.fromkeys(value.split(",")):
        members |= Q(tags__contains={key: item})
    return members


def _compile_tag(entry: dict, now: datetime) -> Q:
    _require_postgresql("tag")
    key, relation, value = entry["key"], entry["relation"], entry.get("value", "")
    if relation == "exists":
        return _tag_present(key)
    if relation == "not_exists":
        return Q(Sql("{0} IS NULL", _tag_text(key)))
    if relation == "=":
        return _tag_equals(key, value)
    if relation == "!=":
        return _tag_present(key) & ~_tag_equals(key, value)
    if relation in (">", "<"):
        return _tag_order(key, relation, value)
    if relation in ("time_elapsed_gt", "time_elapsed_lt"):
        return _tag_elapsed(key, relation, value, now)
    if relation == "in_array":
        return _tag_in(key, value)
    return _tag_present(key) & ~_tag_in(key, value)  # not_in_array


_COMPILERS: dict[str, Callable[[dict, datetime], Q]] = {
    "last_session": _session_age("last_active"),
    "first_session": _session_age("created_at"),
    "session_count": _integer_column("session_count"),
    "session_time": _integer_column("playtime"),
    "amount_spent": _compile_amount_spent,
    "bought_sku": _compile_bought_sku,
    "tag": _compile_tag,
    "language": _compile_language,
    "app_version": _compile_app_version,
    "location": _compile_location,
    "email": _compile_email,
    "country": _compile_country,
    "rooted": _compile_rooted,
}
