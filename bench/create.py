"""Create: ``POST /notifications`` latency for a segment of N players (``Subscribed Users``, all of
them) against a send to 10 ``include_player_ids``, in the same run, through the web server.

    python -m bench create --players 1000000 --requests 300

- Seeds N subscribed players in SQL and starts the web server as production does (Granian;
  ``--server gunicorn`` for gunicorn's sync workers).
- Sends ``--requests`` POSTs of each kind one after another, alternating the kinds (so both see
  the same noise), each on a new connection as a server-side client would, after 10 warm-up
  requests of each. No Celery worker runs: the API's own work is measured (validation, the one
  indexed count, the insert, the enqueue to Redis after commit), not delivery.
- Reports p50, p99, p99.9 and the mean per kind, ``ratio_p99_segment_to_ids`` and
  ``ratio_p50_segment_to_ids``, and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the segment's count.
- Also a custom segment whose filter holds every player (``session_count > 0``): its count cannot
  use the "subscribed" partial index alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time

from bench import loadgen
from bench.common import add_common_arguments, demo_app, percentiles, ratio, run_benchmark, seed_players
from bench.loadgen import add_web_server_arguments
from core.progress import progress_bar

WARMUP = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, players=100_000)
    parser.add_argument("--requests", type=int, default=200, help="POSTs of each kind")
    add_web_server_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_benchmark(args, "create", _create)


def _post(server: loadgen.Server, key: str, body: dict) -> tuple[float, int, dict]:
    data = json.dumps(body).encode()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    started = time.perf_counter()
    connection.request(
        "POST",
        "/api/v1/notifications",
        body=data,
        headers={"Content-Type": "application/json", "Authorization": f"Key {key}"},
    )
    response = connection.getresponse()
    payload = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    return elapsed, response.status, json.loads(payload or b"{}")


def _create(args, work, env) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.platforms import device_types_for
    from notifications.targeting import resolve_audience
    from players.models import Player
    from segments.models import Segment

    app, key = demo_app()
    seed_seconds = seed_players(app.id, args.players)
    Segment.objects.create(
        app=app, name="Everyone (filter)", filters=[{"field": "session_count", "relation": ">", "value": "0"}]
    )
    ids = [str(pk) for pk in Player.objects.filter(app=app).order_by("?").values_list("pk", flat=True)[:10]]
    kinds = {
        "segment": {"included_segments": ["Subscribed Users"]},
        "ids": {"include_player_ids": ids},
        "custom_segment": {"included_segments": ["Everyone (filter)"]},
    }
    bodies = {
        kind: {"app_id": str(app.id), "contents": {"en": "Hello"}, **target} for kind, target in kinds.items()
    }
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    recipients: dict[str, int] = {}
    failures: dict[str, int] = dict.fromkeys(kinds, 0)
    with (
        loadgen.web_server_from_args(env, work, args) as server,
        progress_bar(total=(WARMUP + args.requests) * len(bodies), desc="POST /notifications") as bar,
    ):
        for round_number in range(WARMUP + args.requests):
            for kind, body in bodies.items():
                elapsed, status, answer = _post(server, key, body)
                bar.update()  # after the request: its timing is taken inside _post
                if status != 200 or not answer.get("id"):
                    failures[kind] += 1
                    continue
                recipients[kind] = answer["recipients"]
                if round_number >= WARMUP:
                    samples[kind].append(elapsed)

    # The plan of the segment's count, as the API runs it.
    explain = {}
    for kind in ("segment", "custom_segment"):
        push = device_types_for("push", {})
        audience = resolve_audience(app=app, body=bodies[kind], mode="segments", device_types=push)
        with CaptureQueriesContext(connection) as queries:
            audience.players.count()
        sql = queries.captured_queries[-1]["sql"]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            explain[kind] = "\n".join(row[0] for row in cursor.fetchall())
        print(f"--- EXPLAIN (ANALYZE, BUFFERS) of the {kind} count\n{explain[kind]}", flush=True)

    stats = {
        kind: {**percentiles(values), "mean_ms": _mean(values), "requests": len(values)}
        for kind, values in samples.items()
    }
    for kind, entry in stats.items():
        entry["recipients"] = recipients.get(kind)
        entry["failures"] = failures[kind]
        print(
            f"{kind:<15} recipients {entry['recipients']}: p50 {entry['p50_ms']} ms, "
            f"p99 {entry['p99_ms']} ms, mean {entry['mean_ms']} ms",
            flush=True,
        )
    ok = (
        not any(failures.values())
        and recipients.get("segment") == args.players
        and recipients.get("ids") == min(10, args.players)
    )
    return {
        "ok": ok,
        "requests_per_kind": args.requests,
        "seed_seconds": round(seed_seconds, 1),
        **stats,
        "count_plan_segment_ms": _execution_ms(explain.get("segment", "")),
        "count_plan_custom_segment_ms": _execution_ms(explain.get("custom_segment", "")),
        "ratio_p99_segment_to_ids": ratio(stats["segment"]["p99_ms"], stats["ids"]["p99_ms"]),
        "ratio_p50_segment_to_ids": ratio(stats["segment"]["p50_ms"], stats["ids"]["p50_ms"]),
        "ratio_p99_custom_segment_to_ids": ratio(stats["custom_segment"]["p99_ms"], stats["ids"]["p99_ms"]),
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _execution_ms(plan: str) -> float | None:
    for line in plan.splitlines():
        if line.strip().startswith("Execution Time:"):
            return float(line.split(":")[1].split()[0])
    return None
