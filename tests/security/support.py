"""Shared pieces of the tenant-isolation matrices: the URL walk and the database snapshot.

``url_patterns(namespace)`` lists every route Django serves under a namespace, straight from
``get_resolver()``, so a route added to ``config/api_urls.py`` or ``imfpush/urls.py`` appears in
the matrix without anyone touching these tests (and fails them until it has an entry).

``snapshot()`` is one SQL statement over every table of the database: its row count and an
order-independent checksum of all its rows. Comparing a snapshot taken before a refused request
with one taken after proves the request changed nothing, whatever table it might have touched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

# Columns that a refused request may legitimately change: an API key's ``last_used_at`` is
# touched when the key itself authenticates, before the request is refused for the ids it names.
VOLATILE_COLUMNS = {"last_used_at"}
# Tables outside any tenant whose rows a request may add without touching tenant data: none
# today. Kept explicit so an exception needs a written reason here.
IGNORED_TABLES: set[str] = set()


@dataclass(frozen=True)
class Route:
    """One URL pattern: the full route (``api/v1/players/<str:player_id>``), its name without the
    ``-slash`` suffix, whether it is the trailing-slash twin, and the view class."""

    route: str
    name: str
    slash: bool
    view_class: type

    def path(self, **kwargs: str) -> str:
        def fill(match: re.Match) -> str:
            return kwargs[match.group(2)]

        return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", fill, self.route)

    def parameters(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.route)

    def methods(self) -> list[str]:
        """The HTTP methods the view implements (OPTIONS and HEAD are Django's own)."""
        names = [m for m in self.view_class.http_method_names if m not in ("options", "head")]
        return [m.upper() for m in names if hasattr(self.view_class, m)]


def url_patterns(namespace: str) -> list[Route]:
    """Every named URL pattern of ``namespace`` (nested includes flattened), in URLconf order."""
    found: list[Route] = []

    def walk(patterns, prefix: str, inside: bool) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(
                    pattern.url_patterns,
                    prefix + str(pattern.pattern),
                    inside or pattern.namespace == namespace,
                )
            elif isinstance(pattern, URLPattern) and inside and pattern.name:
                view_class = getattr(pattern.callback, "view_class", None)
                assert view_class is not None, f"{prefix}{pattern.pattern} is not a class-based view"
                slash = pattern.name.endswith("-slash")
                name = pattern.name.removesuffix("-slash")
                found.append(Route(prefix + str(pattern.pattern), name, slash, view_class))

    walk(get_resolver().url_patterns, "", False)
    return found


def snapshot() -> dict[str, tuple[int, str]]:
    """``{table: (rows, checksum)}`` for every table, ignoring ``VOLATILE_COLUMNS``."""
    sql, tables = _snapshot_sql(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return {name: (count, digest) for name, count, digest in cursor.fetchall()}


@functools.cache
def _snapshot_sql(database: str) -> tuple[str, list[str]]:
    """The snapshot statement, built once per database (the schema does not change mid-run)."""
    selects, tables = [], []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in IGNORED_TABLES:
                continue
            columns = [
                c.name
                for c in connection.introspection.get_table_description(cursor, table)
                if c.name not in VOLATILE_COLUMNS
            ]
            row = "ROW(" + ", ".join(connection.ops.quote_name(c) for c in columns) + ")::text"
            digest = f"coalesce(md5(string_agg(md5({row}), '' ORDER BY md5({row}))), '')"
            # Table and column names come from the database's own catalogue, quoted.
            selects.append(f"SELECT %s, count(*), {digest} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            tables.append(table)
    return " UNION ALL ".join(selects), tables


def changed_tables(before: dict, after: dict) -> dict[str, tuple]:
    return {
        t: (before.get(t), after.get(t)) for t in set(before) | set(after) if before.get(t) != after.get(t)
    }


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run a request inside a savepoint that is always rolled back (and forget rate-limit
    counters), so every case of the matrix starts from the same state."""
    with transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)
    cache.clear()


def leaked_markers(content: bytes, markers: list[str]) -> list[str]:
    text = content.decode("utf-8", "replace")
    return [m for m in markers if m in text]


@contextmanager
def module_data(django_db_blocker) -> Iterator[None]:
    """Data built once for a whole test module, like ``TestCase.setUpTestData``: an outer
    transaction that every test's own (pytest-django) transaction nests in as a savepoint, rolled
    back when the module is done. Each test still sees exactly this data and nothing of the others."""
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)
