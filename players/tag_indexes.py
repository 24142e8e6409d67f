"""Expression indexes for numeric tag comparisons, for the tag keys an operator names.

The filter language compares a tag as a number when both sides are numbers (onesignal-api.md
§6.4), which the GIN index on ``tags`` cannot answer: ``level < 5`` reads every row of the app.
For each key in ``HERALD_INDEXED_NUMERIC_TAGS`` two partial B-tree indexes answer it instead:

- ``player_tag_num_<digest>`` on ``(app_id, herald_tag_number(tags, key))``, for the players whose
  value is a number;
- ``player_tag_txt_<digest>`` on ``(app_id, left(herald_tag_text(tags, key), 500) COLLATE "C")``,
  for the players whose value is text (compared as text with a numeric operand; usually none, so
  tiny);
- and ``player_tag_stx_<digest>``, extended statistics on both expressions, without which the
  planner misjudges how many players a comparison selects.

segments/filters.py writes those keys' comparisons with the same expressions, so the planner can
use the indexes; the results are the same with or without them. The indexes cover every app (an
index per app would not scale with tenants), so naming a key is the operator's choice, not an
app's. A player without the key is in neither index, so apps that do not use it pay nothing but
the two predicates on each write.

``sync()`` makes the database match the setting: it builds what is missing, rebuilds what a failed
build left invalid, and drops what belongs to keys no longer named. Indexes are built and dropped
CONCURRENTLY, so the SDK's writes go on meanwhile. ``manage.py tag_indexes --apply`` runs it
(bin/run and compose's migrate step do). The functions come from migration players/0009.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

TABLE = "players_player"
PREFIX = "player_tag_"
COMMENT_PREFIX = "herald numeric tag index: "

# The indexed expressions; filters.py compiles comparisons from the same two strings.
NUMBER_EXPRESSION = "herald_tag_number({tags}, {key})"
# A B-tree entry holds at most about 2,700 bytes and a tag value up to 1,024 characters (4,096
# bytes of UTF-8), so the text index keeps a prefix. Comparing a prefix longer than the operand
# answers exactly as comparing the whole value (filters.py uses it only for such operands).
TEXT_PREFIX = 500
TEXT_EXPRESSION = f"left(herald_tag_text({{tags}}, {{key}}), {TEXT_PREFIX})"
_NUMBER = NUMBER_EXPRESSION.format(tags="tags", key="{key}")
_TEXT = TEXT_EXPRESSION.format(tags="tags", key="{key}")
# kind -> the statement that makes it; {mode}, {name} and {key} (a SQL literal) are filled in.
# Partial indexes give the planner no statistics of their expressions, so without the extended
# statistics ("stx") it guesses a third of the table for any comparison and plans ranges poorly.
_KINDS = {
    "num": f"CREATE INDEX{{mode}} {{name}} ON {TABLE} (app_id, {_NUMBER}) WHERE {_NUMBER} IS NOT NULL",
    "txt": (
        f'CREATE INDEX{{mode}} {{name}} ON {TABLE} (app_id, ({_TEXT} COLLATE "C")) WHERE {_TEXT} IS NOT NULL'
    ),
    "stx": f"CREATE STATISTICS {{name}} ON ({_NUMBER}), ({_TEXT}) FROM {TABLE}",
}


@dataclass(frozen=True)
class TagIndex:
    name: str
    key: str  # from the object's comment; "" if someone removed it
    valid: bool  # an index whose CONCURRENTLY build failed is invalid: the planner ignores it

    @property
    def is_statistics(self) -> bool:
        return self.name.startswith(f"{PREFIX}stx_")


def supported() -> bool:
    return connection.vendor == "postgresql"


def indexed_keys() -> tuple[str, ...]:
    """The keys whose comparisons filters.py writes in the indexable form."""
    return tuple(dict.fromkeys(key for key in settings.HERALD_INDEXED_NUMERIC_TAGS if key))


def object_name(key: str, kind: str) -> str:
    # A digest, not the key: keys hold any character and may be longer than an identifier (63).
    return f"{PREFIX}{kind}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def wanted() -> dict[str, str]:
    """object name -> key, for every key of the setting."""
    return {object_name(key, kind): key for key in indexed_keys() for kind in _KINDS}


def existing() -> dict[str, TagIndex]:
    """The tag indexes and statistics on the players table, by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, i.indisvalid, coalesce(obj_description(c.oid, 'pg_class'), '')
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = %(table)s::regclass AND starts_with(c.relname, %(prefix)s)
            UNION ALL
            SELECT s.stxname, true, coalesce(obj_description(s.oid, 'pg_statistic_ext'), '')
            FROM pg_statistic_ext s
            WHERE s.stxrelid = %(table)s::regclass AND starts_with(s.stxname, %(prefix)s)
            """,
            {"table": TABLE, "prefix": PREFIX},
        )
        rows = cursor.fetchall()
    return {name: TagIndex(name, _key_of(comment), valid) for name, valid, comment in rows}


def _key_of(comment: str) -> str:
    return comment.removeprefix(COMMENT_PREFIX) if comment.startswith(COMMENT_PREFIX) else ""


def _literal(text: str) -> str:
    from psycopg import sql

    connection.ensure_connection()
    return sql.Literal(text).as_string(connection.connection)


def create(key: str, *, concurrently: bool = True) -> list[str]:
    """Build the indexes and statistics of ``key`` that are not there yet; returns their names.
    ``concurrently=False`` is for callers inside a transaction (tests), where CONCURRENTLY cannot
    run. The table is ANALYZEd after a build, so the planner has the new statistics at once."""
    built = []
    mode = " CONCURRENTLY" if concurrently else ""
    present = existing()
    for kind, statement in _KINDS.items():
        name = object_name(key, kind)
        if name in present:
            continue
        what = "STATISTICS" if kind == "stx" else "INDEX"
        with connection.cursor() as cursor:
            cursor.execute(statement.format(mode=mode, name=name, key=_literal(key)))
            cursor.execute(f"COMMENT ON {what} {name} IS {_literal(COMMENT_PREFIX + key)}")
        built.append(name)
    if built:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")
    return built


def drop(index: TagIndex, *, concurrently: bool = True) -> None:
    if not index.name.startswith(PREFIX) or not index.name.replace("_", "").isalnum():
        raise ValueError(f"not a tag index: {index.name!r}")
    if index.is_statistics:
        statement = f"DROP STATISTICS IF EXISTS {index.name}"
    else:
        statement = f"DROP INDEX{' CONCURRENTLY' if concurrently else ''} IF EXISTS {index.name}"
    with connection.cursor() as cursor:
        cursor.execute(statement)


@dataclass(frozen=True)
class Change:
    action: str  # "built", "rebuilt" or "dropped"
    key: str
    name: str


def sync(*, concurrently: bool = True) -> list[Change]:
    """Make the table's tag indexes and statistics match ``HERALD_INDEXED_NUMERIC_TAGS``."""
    changes = []
    target = wanted()
    for name, index in existing().items():
        if name not in target:
            drop(index, concurrently=concurrently)
            changes.append(Change("dropped", index.key, name))
        elif not index.valid:
            drop(index, concurrently=concurrently)
            changes.append(Change("rebuilt", target[name], name))
    rebuilt = {change.name for change in changes if change.action == "rebuilt"}
    for key in indexed_keys():
        for name in create(key, concurrently=concurrently):
            if name not in rebuilt:
                changes.append(Change("built", key, name))
    return changes
