"""How many players a new notification will reach, as ``POST /notifications`` answers it.

The answer is "the estimated number of subscribed recipients" (OneSignal's spec); the fan-out
counts the real number as it goes (``Notification.recipients`` is reset and summed there). An exact
``count(*)`` of a million-player audience is a 0.6 s scan on a small machine, which would make
every large send slow to accept. So:

- up to ``HERALD_EXACT_RECIPIENT_COUNT`` players the count is exact: the count stops one row past
  the limit, so a large audience costs only that many rows here (and an empty one is still told
  apart: "All included players are not subscribed");
- beyond it, on PostgreSQL, the same WHERE is counted over a block sample of the players table
  (``TABLESAMPLE SYSTEM``, repeatable) of about ``HERALD_RECIPIENT_SAMPLE_ROWS`` rows: the share of
  sampled rows that match, times the table's rows (``pg_class.reltuples`` per page, kept by ANALYZE
  and autovacuum, times the pages there are now), never below what the exact count already proved.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from players.models import Player

logger = logging.getLogger(__name__)

SAMPLE_SEED = 7  # REPEATABLE: the same request against the same table gets the same estimate


def estimated_recipients(players: QuerySet) -> int:
    limit = settings.HERALD_EXACT_RECIPIENT_COUNT
    at_least = players.order_by()[: limit + 1].count()
    if at_least <= limit or connection.vendor != "postgresql":
        return at_least if at_least <= limit else players.count()
    estimate = _sampled_count(players)
    return at_least if estimate is None else max(at_least, estimate)


def _sampled_count(players: QuerySet) -> int | None:
    table = Player._meta.db_table
    # reltuples and relpages are as of the last ANALYZE; the table may have grown since (a bulk
    # import). As PostgreSQL's planner does, scale the rows per page then by the pages there are now.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples, relpages, pg_relation_size(oid) / current_setting('block_size')::int"
            " FROM pg_class WHERE oid = %s::regclass",
            [table],
        )
        row = cursor.fetchone()
    if not row or row[0] <= 0 or row[1] <= 0:  # never analysed yet (autovacuum will): count
        return players.count()
    total = row[0] / row[1] * max(row[2], 1)
    percent = min(100.0, 100.0 * settings.HERALD_RECIPIENT_SAMPLE_ROWS / total)
    sql, params = players.order_by().values("pk").query.sql_with_params()
    select = f'SELECT "{table}"."{Player._meta.pk.column}" AS "pk" FROM "{table}" WHERE '  # noqa: S608 (compared, not run)
    if not sql.startswith(select) or sql.count(f'FROM "{table}"') != 1:
        # A shape this sampling was not written for (a self-join, say): count exactly.
        logger.info("recipient estimate: unexpected query shape, counting exactly")
        return players.count()
    # One pass over the sampled pages counts both the rows that match and all the rows. The share
    # that matches, times the table's rows, is the estimate: it does not also carry the noise of
    # how many pages the sample happened to pick.
    condition = sql[len(select) :]
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FILTER (WHERE {condition}), count(*) FROM "{table}" '  # noqa: S608
            f"TABLESAMPLE SYSTEM (%s) REPEATABLE ({SAMPLE_SEED})",
            [*params, percent],
        )
        matched, sampled = cursor.fetchone()
    if percent >= 100:  # the "sample" was the whole table: that count is exact
        return matched
    return round(total * matched / sampled) if sampled else None
