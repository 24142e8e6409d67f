"""Scaling: the fan-out of bench/fanout.py with 1, 2 and 4 Celery worker processes, first against
the simulators as they are, then with 20 ms of latency injected into every gateway answer, to show
how much of the delivery is I/O that Herald overlaps.

    python -m bench scaling --players 100000 --workers 1,2,4 --latency-ms 0,20

The players are seeded once (COPY, players/seeding.py); each configuration starts its own worker
(prefork, ``--concurrency`` = the worker count) and beat, posts one notification to "Subscribed
Users", waits for ``completed_at`` and stops them. Between runs the simulator's counters are reset
and its fault plan set to the run's latency (``POST /_sim/faults {"latency_ms": …}``).

Reported per run: deliveries per second (POST to ``completed_at``), CPU-seconds per 1,000
deliveries and peak RSS of the worker's process tree, how busy the simulator (the sink) and the
whole machine were. ``ratio_<w>w_to_1w_<latency>ms`` = rate with w workers over the rate with one,
at the same latency; ``ratio_<latency>ms_to_0ms_<w>w`` = rate with latency over the rate without,
with the same workers (1.0 means the latency is fully overlapped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import fanout, stack
from bench.common import ratio
from core.progress import progress_bar
from players.seeding import identities, parse_mix, seed_players, split_evenly


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fanout.add_arguments(parser)
    # The latency is injected by the simulator's fault plan, so the simulator must be the sink.
    parser.set_defaults(players=50_000, sink="simulator")
    parser.add_argument("--workers", default="1,2,4", help="comma list of worker process counts")
    parser.add_argument("--latency-ms", default="0,20", help="comma list of injected gateway latencies")


def _numbers(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"{name}: a comma list of whole numbers") from None
    if not values or any(v < 0 for v in values):
        raise SystemExit(f"{name}: a comma list of whole numbers")
    return values


def run(args: argparse.Namespace) -> int:
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    args.worker_counts = [w for w in _numbers(args.workers, "--workers") if w > 0]
    args.latencies = _numbers(args.latency_ms, "--latency-ms")
    if args.sink != "simulator":
        raise SystemExit("scaling: --sink simulator only (the injected latency is the simulator's)")
    work = Path(tempfile.mkdtemp(prefix="herald-bench-scaling-"))
    try:
        status = fanout._run_in(args, mix, work, measure=_scaling)
    except BaseException:
        print(f"bench: logs kept in {work}", file=sys.stderr)
        raise
    if status == 0 and not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"bench: logs kept in {work}", file=sys.stderr)
    return status


def _scaling(args, mix, sim, work: Path, env: dict) -> int:
    from apps.demo import bootstrap_demo
    from apps.models import App
    from apps.vapid import ensure_vapid_keys

    credentials = bootstrap_demo(org_name="bench")
    app = ensure_vapid_keys(App.objects.get(pk=credentials.app_id))
    counts = split_evenly(args.players, mix)
    seed_started = time.perf_counter()
    issued = {p.name: identities(p, counts[p.name], sim, app.vapid_public_key) for p in mix}
    with progress_bar(total=args.players, desc="Seeding", unit=" players") as bar:
        seed_players(app.id, mix, issued, progress=bar.update)
    del issued
    seed_seconds = time.perf_counter() - seed_started

    runs: dict[str, dict] = {}
    for latency in args.latencies:
        for workers in args.worker_counts:
            key = f"{workers}w_{latency}ms"
            runs[key] = _one_run(args, mix, sim, work, env, app, credentials.app_key, workers, latency)
            r = runs[key]
            print(
                f"{key:<10} {r['deliveries_per_second']:>6}/s in {r['seconds_post_to_completed']} s, "
                f"CPU-s/1000 {r['cpu_seconds_per_1000']}, peak RSS {r['peak_worker_rss_mb']} MB, "
                f"sink busy {r['sink_busy']}, machine busy {r['machine_cpu_busy']}",
                flush=True,
            )
    result = {
        "benchmark": "scaling",
        "players": args.players,
        "mix": ",".join(p.name for p in mix),
        "seed_seconds": round(seed_seconds, 1),
        "runs": runs,
    }
    for latency in args.latencies:
        one = runs.get(f"1w_{latency}ms", {}).get("deliveries_per_second")
        for workers in args.worker_counts:
            if workers != 1:
                rate = runs[f"{workers}w_{latency}ms"]["deliveries_per_second"]
                result[f"ratio_{workers}w_to_1w_{latency}ms"] = ratio(rate, one)
    for latency in args.latencies:
        if latency:
            for workers in args.worker_counts:
                base = runs.get(f"{workers}w_0ms", {}).get("deliveries_per_second")
                rate = runs[f"{workers}w_{latency}ms"]["deliveries_per_second"]
                result[f"ratio_{latency}ms_to_0ms_{workers}w"] = ratio(rate, base)
    completed = all(r["completed"] and r["simulator_duplicates"] == 0 for r in runs.values())
    result.update(
        {
            "ok": completed,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": fanout.git_commit(),
            "machine": fanout.machine(),
        }
    )
    print(json.dumps(result, default=str), flush=True)
    return 0 if completed else 1


def _one_run(args, mix, sim, work: Path, env: dict, app, app_key: str, workers: int, latency: int) -> dict:
    sim.reset()
    for platform in {p.simulator for p in mix}:
        sim.control("/_sim/faults", {"platform": platform, "latency_ms": latency})
    name = f"w{workers}-l{latency}"
    with contextlib.ExitStack() as processes:
        worker_log = work / f"worker-{name}.log"
        worker = processes.enter_context(
            stack.celery(
                [
                    "worker",
                    "--concurrency",
                    str(workers),
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"scaling-{name}@%h",
                ],
                worker_log,
                env,
            )
        )
        processes.enter_context(
            stack.celery(
                [
                    "beat",
                    "--loglevel",
                    "WARNING",
                    "--schedule",
                    str(work / f"beat-{name}"),
                    "--pidfile",
                    str(work / f"beat-{name}.pid"),
                ],
                work / f"beat-{name}.log",
                env,
            )
        )
        stack.wait_for_log(worker_log, "ready.")
        run = fanout._run_notifications(args, mix, app, app_key, sim, worker)
    notifications = run["notifications"]
    completed = bool(notifications) and all(n.completed_at for n in notifications)
    successful = sum(n.successful for n in notifications)
    elapsed = run["elapsed"]
    stats = run["final_stats"]
    return {
        "workers": workers,
        "latency_ms": latency,
        "completed": completed,
        "successful": successful,
        "failed": sum(n.failed for n in notifications),
        "errored": sum(n.errored for n in notifications),
        "simulator_accepted": sum(stats[p.simulator]["accepted"] for p in mix),
        "simulator_duplicates": sum(stats[p.simulator]["duplicates"] for p in mix),
        "seconds_post_to_completed": round(elapsed, 2),
        "deliveries_per_second": round(successful / elapsed) if completed and elapsed else 0,
        "cpu_seconds_per_1000": round(run["worker_cpu"] / max(1, successful) * 1000, 3),
        "peak_worker_rss_mb": round(run["peak_rss_mb"], 1),
        "sink_busy": round(run["sink_cpu"] / elapsed, 2) if elapsed else None,
        "machine_cpu_busy": round(run["machine_busy"], 2),
        "loadavg_1_5_15_at_end": run["loadavg"],
    }
