"""Audience: the time to count and to stream a filter audience over N players, as Herald runs
them (``POST /notifications`` with ``filters`` counts it; the fan-out streams it in keyset pages),
with ``EXPLAIN (ANALYZE, BUFFERS)`` of each.

    python -m bench audience --players 1000000

Players are seeded in SQL (bench/common.py ``seed_players``: numeric ``level`` tag 0-49, plan,
``last_active`` over 60 days, a third located around Paris, New York or Tokyo). Filters:

- ``subscribed``: no filter, every subscribed player (the reference: one partial-index count);
- ``tag_equal``: ``level = 7`` (2% of players);
- ``tag_range``: ``level > 10`` and ``level < 20`` (18%);
- ``last_session``: active in the last 24 hours (about 1.7%);
- ``or_of_three``: ``plan = pro`` AND ``level < 5``, OR ``last_session`` in 12 hours, OR
  ``cohort = c3`` AND country DE (about 6.4%);
- ``location``: within 50 km of the Eiffel tower.

Each count runs ``--repeat`` times (the median and the first are reported), and so does the
estimate ``POST /notifications`` answers today (``notifications/recipient_estimate.py``: exact
up to a limit, then a table sample), with its error against the exact count; each stream once,
in pages of HERALD_FANOUT_CHUNK ids as ``notification_fan_out`` reads them.
``ratio_<filter>_count_to_subscribed`` compares each count with the reference in the same run.

Then (unless ``--no-tag-index``) ``level`` becomes an indexed numeric tag, as an operator makes it
one (HERALD_INDEXED_NUMERIC_TAGS, then ``tag_indexes.sync()``, timed as
``tag_index_build_seconds``), and the three filters on ``level`` are measured again:
``ratio_<filter>_count_indexed_to_plain`` compares their counts with the first pass, and each
must select exactly the players the plain SQL selects (``same_players_as_plain``, part of ``ok``).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import add_common_arguments, demo_app, ratio, run_benchmark, seed_players
from core.progress import progress_bar

FILTERS = {
    "subscribed": [],
    "tag_equal": [{"field": "tag", "key": "level", "relation": "=", "value": "7"}],
    "tag_range": [
        {"field": "tag", "key": "level", "relation": ">", "value": "10"},
        {"field": "tag", "key": "level", "relation": "<", "value": "20"},
    ],
    "last_session": [{"field": "last_session", "relation": "<", "hours_ago": "24"}],
    "or_of_three": [
        {"field": "tag", "key": "plan", "relation": "=", "value": "pro"},
        {"field": "tag", "key": "level", "relation": "<", "value": "5"},
        {"operator": "OR"},
        {"field": "last_session", "relation": "<", "hours_ago": "12"},
        {"operator": "OR"},
        {"field": "tag", "key": "cohort", "relation": "=", "value": "c3"},
        {"field": "country", "relation": "=", "value": "DE"},
    ],
    "location": [{"field": "location", "radius": "50000", "lat": "48.8584", "long": "2.2945"}],
}
# Measured again once ``level`` is an indexed numeric tag (players/tag_indexes.py).
NUMERIC_TAG_FILTERS = ("tag_equal", "tag_range", "or_of_three")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, players=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="counts per filter")
    parser.add_argument("--no-explain", action="store_true", help="do not print the plans")
    parser.add_argument(
        "--no-tag-index",
        action="store_true",
        help="skip the second pass with the level tag in HERALD_INDEXED_NUMERIC_TAGS",
    )


def run(args: argparse.Namespace) -> int:
    return run_benchmark(args, "audience", _audience)


def _queryset(app, filters: list):
    """The audience as POST /notifications resolves it (push channel, subscribed players)."""
    from notifications.platforms import device_types_for
    from notifications.targeting import resolve_audience

    push = device_types_for("push", {})
    if not filters:
        body, mode = {"included_segments": ["Subscribed Users"]}, "segments"
    else:
        body, mode = {"filters": filters}, "filters"
    return resolve_audience(app=app, body=body, mode=mode, device_types=push).players


def _explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _stream(players, chunk: int) -> tuple[int, float, str]:
    """Every id in keyset pages, as notification_fan_out reads them: (rows, seconds, first page SQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows, cursor, first_sql = 0, None, ""
    started = time.perf_counter()
    while True:
        page = players.order_by("pk")
        if cursor is not None:
            page = page.filter(pk__gt=cursor)
        if not first_sql:
            with CaptureQueriesContext(connection) as queries:
                values = list(
                    page.values_list("pk", "device_type", "timezone", "timezone_id", "last_active")[:chunk]
                )
            first_sql = queries.captured_queries[-1]["sql"]
        else:
            values = list(
                page.values_list("pk", "device_type", "timezone", "timezone_id", "last_active")[:chunk]
            )
        if not values:
            break
        rows += len(values)
        cursor = values[-1][0]
    return rows, time.perf_counter() - started, first_sql


def _measure(app, name: str, filters: list, args) -> dict:
    """Count (``--repeat`` times), estimate and stream one audience; prints its plans."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.recipient_estimate import estimated_recipients

    players = _queryset(app, filters)
    timings = []
    with CaptureQueriesContext(connection) as queries:
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            count = players.count()
            timings.append((time.perf_counter() - started) * 1000)
    count_sql = queries.captured_queries[-1]["sql"]
    # What POST /notifications now answers: the estimate (exact up to a limit, then sampled).
    estimates = []
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        estimate = estimated_recipients(players)
        estimates.append((time.perf_counter() - started) * 1000)
    rows, stream_seconds, page_sql = _stream(players, settings.HERALD_FANOUT_CHUNK)
    entry = {
        "count": count,
        "count_ms_median": round(statistics.median(timings), 1),
        "count_ms_first": round(timings[0], 1),
        "count_ms_min": round(min(timings), 1),
        "estimate": estimate,
        "estimate_error": round(estimate / count - 1, 4) if count else None,
        "estimate_ms_median": round(statistics.median(estimates), 1),
        "stream_rows": rows,
        "stream_seconds": round(stream_seconds, 2),
        "stream_rows_per_second": round(rows / stream_seconds) if stream_seconds else None,
    }
    if not args.no_explain:
        plan = _explain(count_sql)
        page_plan = _explain(page_sql)
        print(f"--- {name}: EXPLAIN (ANALYZE, BUFFERS) of the count\n{plan}", flush=True)
        print(f"--- {name}: EXPLAIN (ANALYZE, BUFFERS) of the first stream page\n{page_plan}", flush=True)
    print(
        f"{name:<21} {count:>9} players: count {entry['count_ms_median']} ms (median of {len(timings)}), "
        f"estimate {estimate} in {entry['estimate_ms_median']} ms, "
        f"stream {rows} in {entry['stream_seconds']} s",
        flush=True,
    )
    return entry


def _same_players(app, filters: list) -> bool:
    """Whether the indexed and the plain SQL select the same players, compiled at the same moment
    (a pass takes seconds, and ``last_session`` windows move meanwhile)."""
    from django.test.utils import override_settings

    with override_settings(HERALD_INDEXED_NUMERIC_TAGS=[]):
        plain = _queryset(app, filters)
    indexed = _queryset(app, filters)
    return set(plain.values_list("pk", flat=True)) == set(indexed.values_list("pk", flat=True))


def _audience(args, work, env) -> dict:
    from django.conf import settings

    from players import tag_indexes

    app, _key = demo_app()
    seed_seconds = seed_players(app.id, args.players)
    indexed_filters = [] if args.no_tag_index else list(NUMERIC_TAG_FILTERS)
    results: dict[str, dict] = {}
    bar = progress_bar(total=len(FILTERS) + len(indexed_filters), desc="Filters", unit=" filters")
    for name, filters in FILTERS.items():
        bar.set_postfix_str(name)  # the filter being measured
        results[name] = _measure(app, name, filters, args)
        bar.update()
    result: dict = {"repeat": args.repeat, "seed_seconds": round(seed_seconds, 1), "filters": results}
    if indexed_filters:
        # Then the same filters once "level" is in HERALD_INDEXED_NUMERIC_TAGS, as an operator does it.
        settings.HERALD_INDEXED_NUMERIC_TAGS = ["level"]
        started = time.perf_counter()
        tag_indexes.sync()
        result["tag_index_build_seconds"] = round(time.perf_counter() - started, 1)
        indexed = result["filters_level_indexed"] = {}
        for name in indexed_filters:
            bar.set_postfix_str(f"{name}, level indexed")
            indexed[name] = _measure(app, f"{name} (level indexed)", FILTERS[name], args)
            indexed[name]["same_players_as_plain"] = _same_players(app, FILTERS[name])
            result[f"ratio_{name}_count_indexed_to_plain"] = ratio(
                indexed[name]["count_ms_median"], results[name]["count_ms_median"], 3
            )
            bar.update()
    bar.close()
    reference = results["subscribed"]["count_ms_median"]
    measured = [*results.values(), *result.get("filters_level_indexed", {}).values()]
    result["ok"] = (
        all(r["count"] == r["stream_rows"] for r in measured)
        and results["subscribed"]["count"] == args.players
        and all(result["filters_level_indexed"][n]["same_players_as_plain"] for n in indexed_filters)
    )
    for name in FILTERS:
        if name != "subscribed":
            result[f"ratio_{name}_count_to_subscribed"] = ratio(
                results[name]["count_ms_median"], reference, 2
            )
    for name in indexed_filters:
        result[f"ratio_{name}_indexed_count_to_subscribed"] = ratio(
            result["filters_level_indexed"][name]["count_ms_median"], reference, 2
        )
    return result
