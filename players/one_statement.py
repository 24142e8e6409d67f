"""The SDK's usual writes as one statement with no read and no lock (``players.services``
decides when a body allows it):

- ``on_session`` and ``PUT /players/{id}``: one UPDATE (``apply_one_update``);
- ``POST /players`` with a new token: one INSERT … ON CONFLICT DO NOTHING (``insert_new``).

The SQL is written here rather than built by the ORM per request: the ORM spent 0.4 ms of CPU per
ping building the UPDATE (filter, expressions, compiler), more than the rest of Herald's work for
it together (BENCHMARKS.md, "Ingest"). What the ORM still does is typing the values: each
column's own ``get_db_prep_save``.

The UPDATE is PostgreSQL only: the tags and location meta are merged with jsonb operators. Other
databases take the locked path, which merges in Python (``one_update_supported``).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from players.models import Player
from players.validation import MAX_TAGS_BYTES

# merge_tags refuses tags whose Python repr exceeds MAX_TAGS_BYTES. PostgreSQL's jsonb text of the
# same tags is never less than a quarter of that (the worst character is DEL: 1 byte in jsonb,
# 4 in a repr, "\x7f"), so tags whose jsonb text is within this many bytes certainly pass it.
TAGS_CERTAINLY_SMALL_BYTES = MAX_TAGS_BYTES // 4
# (tags || keys set) - keys deleted: the two are disjoint (one change per key), so their order
# does not matter.
MERGED_TAGS = "((COALESCE(tags, '{}'::jsonb) || %s) - %s::text[])"


@dataclass(frozen=True)
class OneUpdate:
    """A partial Player body that one UPDATE can apply whatever the row holds."""

    values: dict[str, Any]  # field name → value, written as given
    identifier: str | None = None  # a new token, normalized, when the body sends one
    sets_identifier: bool = False
    location_meta: dict[str, Any] | None = None  # merged into what is stored
    tag_changes: dict[str, str | None] | None = None  # key → new value, None to delete


def one_update_supported() -> bool:
    return connection.vendor == "postgresql"


def apply_one_update(app_id: uuid.UUID, player_id: uuid.UUID, update: OneUpdate, *, session: bool) -> bool:
    """Apply ``update`` to the app's player; with ``session`` also count a session and mark the
    player active now. True when the row was updated; False: no such player in this app, or the
    merged tags might be too large (the caller's locked path then decides exactly)."""
    values = dict(update.values)
    if session:
        values.pop("session_count", None)
        values["last_active"] = timezone.now()
    assignments, params = [], []
    for name, value in values.items():
        field = Player._meta.get_field(name)
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    if session:
        assignments.append("session_count = session_count + 1")
    if update.sets_identifier:
        assignments.append("identifier = %s")
        params.append(update.identifier)
        if update.identifier:
            # A new token is a re-subscription: the old rejection no longer applies. SET reads
            # the row as it was, so this compares the stored token with the new one.
            assignments.append(
                "invalid_identifier = CASE WHEN identifier = %s THEN invalid_identifier ELSE false END"
            )
            params.append(update.identifier)
    if update.location_meta:
        assignments.append("location_meta = location_meta || %s")
        params.append(_json("location_meta", update.location_meta))
    conditions, condition_params = ["app_id = %s", "id = %s"], [app_id, player_id]
    if update.tag_changes is not None:
        sets = {key: value for key, value in update.tag_changes.items() if value is not None}
        deleted = [key for key, value in update.tag_changes.items() if value is None]
        merged_params = [_json("tags", sets), deleted]
        assignments.append(f"tags = {MERGED_TAGS}")
        params += merged_params
        conditions.append(f"octet_length({MERGED_TAGS}::text) <= %s")
        condition_params += [*merged_params, TAGS_CERTAINLY_SMALL_BYTES]
    if not assignments:
        return False  # nothing to write: the locked path answers (the player may not exist)
    table = connection.ops.quote_name(Player._meta.db_table)
    # Only the model's own column names and fixed SQL are joined here; every value is a parameter.
    sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *condition_params])
        return cursor.rowcount == 1


def _json(field_name: str, value: Any) -> Any:
    return Player._meta.get_field(field_name).get_db_prep_save(value, connection)


def insert_new(player: Player) -> bool:
    """INSERT … ON CONFLICT DO NOTHING of an unsaved player: True when the row was written, False
    when a player of the app already holds its identifier. No savepoint is needed (an
    IntegrityError would need one to keep a surrounding transaction usable)."""
    fields = Player._meta.local_concrete_fields
    values = [field.pre_save(player, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        # A field whose default is computed by the database (db_default alone, Now()) would need
        # the ORM's compiler: this statement only carries plain values.
        raise TypeError("insert_new takes plain values only; compile such a field with InsertQuery")
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), params)
        return cursor.rowcount == 1


@functools.cache
def _insert_sql(vendor: str) -> str:
    """The same statement for every player (``vendor``: one per kind of database; both
    PostgreSQL and SQLite write ON CONFLICT DO NOTHING)."""
    fields = Player._meta.local_concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(Player._meta.db_table)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"  # noqa: S608
