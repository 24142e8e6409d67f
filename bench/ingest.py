"""Ingest: the SDKs' write traffic under concurrent load, against Herald's web tier and PostgreSQL
on the same machine, compared in the same run with a bare Django view returning a constant JSON.

    python -m bench ingest --players 1000000 --duration 20

- Seeds N players in SQL, then starts the web server as production does (docker/start-web:
  Granian, 2 processes of 4 threads; ``--server gunicorn`` for gunicorn's sync workers, 4 of
  them, which served it before) with the bench-only URLconf (bench/urls.py), which adds
  ``POST /bench/constant``: a plain Django view behind the same middleware.
- Load: wrk (``--load-generator wrk``, the default when installed) or the asyncio client of
  bench/loadgen.py, ``--connections`` connections for ``--duration`` seconds per scenario, after
  a warm-up of a quarter of that:
  - ``baseline``: ``POST /bench/constant`` (measured before and after the others; their mean is
    the ceiling);
  - ``on_session``: ``POST /api/v1/players/{id}/on_session`` for random existing players, with the
    fields an SDK sends on app open;
  - ``create``: ``POST /api/v1/players`` registering a new FCM token each time;
  - ``tags``: ``PUT /api/v1/players/{id}`` with a tag change for random existing players.
- Reports requests/s, p50, p99 and p99.9 latency, non-2xx answers, and the CPU seconds per 1,000
  requests of the web server's processes; ``ratio_<scenario>_to_bare_django`` = its requests/s over the
  baseline's. The API's rate limits are raised for the run (bench/common.py).
"""

from __future__ import annotations

import argparse

from bench import loadgen, stack
from bench.common import add_common_arguments, demo_app, ratio, run_benchmark, seed_players
from bench.loadgen import add_web_server_arguments

IDS_IN_FILE = 200_000  # random players the SDK scenarios touch (all of them when fewer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, players=100_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds of warm-up before each scenario (default: a quarter of --duration)",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    add_web_server_arguments(parser)
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--scenarios", default=",".join(loadgen.SCENARIOS[1:]), help="comma list of on_session, create, tags"
    )


def run(args: argparse.Namespace) -> int:
    return run_benchmark(args, "ingest", _ingest)


def _ingest(args, work, env) -> dict:
    from players.models import Player

    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if loadgen.wrk_available() else "python"
    if generator == "wrk" and not loadgen.wrk_available():
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --load-generator python")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in loadgen.SCENARIOS[1:]]
    if unknown:
        raise SystemExit(f"--scenarios: unknown {', '.join(unknown)}")

    app, _key = demo_app()
    seed_seconds = seed_players(app.id, args.players)
    ids = [str(pk) for pk in Player.objects.filter(app=app).values_list("pk", flat=True)[:IDS_IN_FILE]]
    ids_path = work / "player_ids.txt"
    ids_path.write_text("\n".join(ids) + "\n")

    results: dict[str, dict] = {}
    with loadgen.web_server_from_args(env, work, args) as server:

        def load(scenario: str, duration: float) -> loadgen.LoadResult:
            if generator == "wrk":
                return loadgen.run_wrk(
                    server,
                    scenario,
                    app_id=str(app.id),
                    ids_path=ids_path,
                    work=work,
                    duration=duration,
                    connections=args.connections,
                    threads=args.threads,
                )
            return loadgen.run_python(
                server, scenario, app_id=str(app.id), ids=ids, duration=duration, connections=args.connections
            )

        def measure(scenario: str, key: str) -> None:
            warmup = args.warmup if args.warmup is not None else args.duration / 4
            if warmup > 0:  # connections, caches, each worker's first request (imports, URL resolver)
                load(scenario, max(1.0, warmup) if generator == "wrk" else warmup)
            cpu_before, machine_before = server.cpu_seconds(), stack.machine_cpu()
            result = load(scenario, args.duration)
            cpu = server.cpu_seconds() - cpu_before
            entry = result.as_dict()
            entry["web_cpu_seconds_per_1000"] = round(cpu / max(1, result.requests) * 1000, 3)
            entry["machine_cpu_busy"] = round(stack.machine_busy(machine_before, stack.machine_cpu()), 2)
            results[key] = entry
            print(
                f"{key:<16} {entry['requests_per_second']:>7}/s p50 {entry['p50_ms']} ms "
                f"p99 {entry['p99_ms']} ms p99.9 {entry['p99_9_ms']} ms non-2xx {entry['non_2xx']} "
                f"socket errors {entry['socket_errors']}",
                flush=True,
            )

        measure("baseline", "baseline_before")
        for scenario in scenarios:
            measure(scenario, scenario)
        measure("baseline", "baseline_after")

    ceiling = (
        results["baseline_before"]["requests_per_second"] + results["baseline_after"]["requests_per_second"]
    ) / 2
    created = Player.objects.filter(app=app, identifier__startswith="ingest-").count()
    ok = all(r["requests"] > 0 and r["non_2xx"] == 0 for r in results.values())
    if "create" in results:
        ok = ok and created >= results["create"]["requests"]
    result = {
        "ok": ok,
        "load_generator": generator,
        "connections": args.connections,
        "duration_s": args.duration,
        "server": args.server,
        "web_workers": args.web_workers or loadgen.DEFAULT_WORKERS[args.server],
        "web_threads": args.web_threads or loadgen.DEFAULT_THREADS[args.server],
        "worker_class": args.worker_class,
        "seed_seconds": round(seed_seconds, 1),
        "bare_django_per_second": round(ceiling),
        "scenarios": results,
        "players_created_by_create": created,
    }
    for scenario in scenarios:
        result[f"ratio_{scenario}_to_bare_django"] = ratio(results[scenario]["requests_per_second"], ceiling)
    return result
