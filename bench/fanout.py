"""Fan-out: one notification to N players, from POST to ``completed_at``, through real Celery
workers to a sink, compared in the same run with raw clients sending the same requests to the
same sink with no database or queue.

The sink (``--sink``) is nginx answering a constant for FCM, APNs and Web Push (the default,
bench/nginx.py: it is not the bottleneck), or the gateway simulators, which check and decode
every request (``--sink simulator``). The simulators serve everything else either way.

    python -m bench fanout --players 100000 --mix android
    python -m bench fanout --players 100000 --mix android,ios,web,email,sms,wns

``--mix`` is a comma list of android (FCM), ios (APNs), web (Chrome Web Push), wns, email and sms;
players are spread evenly over them. Push players get one notification to "Subscribed Users"; as
in OneSignal, email and SMS are their own channels, so a mix with them posts one notification per
channel, back to back, and the clock runs from the first POST to the last ``completed_at``.
Deliveries per second are reported in total and per platform (from Herald's delivery records:
count / (last delivery - first delivery) of that platform), with the same window as the
simulator saw it. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import json
import os
import platform as python_platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import stack
from bench.nginx import nginx_sink
from bench.peer import PEER_PLATFORMS, peer_baseline
from bench.raw import raw_baseline
from core.progress import progress_bar
from players.seeding import identities, parse_mix, seed_players, split_evenly

RAW_REQUESTS = 50_000  # raw baseline requests in all, shared evenly by the platforms of the mix
# Except email: the SMTP simulator takes about 6 ms of CPU per message, so 2,500 already say it.
RAW_CAPS = {"email": 2_500}
# django-push-notifications' requests per platform (android, ios, web): its Web Push path sends one
# device after another on a new TLS connection each, about a hundred a second, so a sample.
PEER_REQUESTS = 5_000
POLL_SECONDS = 0.05
EMAIL_BODY = '<html><body><p>Hello</p><p><a href="[unsubscribe_url]">Unsubscribe</a></p></body></html>'
CHANNEL_BODIES = {
    "push": {"included_segments": ["Subscribed Users"], "contents": {"en": "Hello"}},
    "email": {"included_segments": ["Subscribed Users"], "email_subject": "Hello", "email_body": EMAIL_BODY},
    "sms": {"included_segments": ["Subscribed Users"], "target_channel": "sms", "contents": {"en": "Hello"}},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument(
        "--mix", default="android", help="comma list of android, ios, web, wns, email, sms (default: android)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--sink",
        choices=("nginx", "simulator"),
        default="nginx",
        help="where FCM, APNs and Web Push deliveries go: nginx answering a constant (default; the "
        "sink is then not the bottleneck, bench/nginx.py) or the gateway simulators, which check "
        "and decode every request",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection; the benchmark creates and drops its own herald_bench_<pid> database",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        help="Redis for the cache (db 9 by default); flushed before and after the run",
    )
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/8"),
        help="the Celery broker (Redis db 8 by default); flushed before and after the run",
    )
    parser.add_argument(
        "--peer-requests",
        type=int,
        default=PEER_REQUESTS,
        help=f"requests per platform through django-push-notifications (default {PEER_REQUESTS}; 0: none)",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and simulator logs")
    parser.add_argument(
        "--timeline",
        type=Path,
        help="write a CSV of the simulator's accepted count per platform, once a second from the POST",
    )


def machine() -> dict:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": python_platform.python_version(),
    }


def git_commit() -> str:
    """The commit benchmarked, marked when bench/ has uncommitted changes."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        commit = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=stack.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--", "bench"],
            cwd=stack.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+bench-changes" if dirty else commit


def _flush(*urls: str) -> None:
    import redis

    for url in urls:
        redis.Redis.from_url(url).flushdb()


def run(args: argparse.Namespace) -> int:
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    try:
        status = _run_in(args, mix, work)
    except BaseException:
        print(f"bench: logs kept in {work}", file=sys.stderr)
        raise
    if status == 0 and not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"bench: logs kept in {work}", file=sys.stderr)
    return status


def _run_in(args: argparse.Namespace, mix, work: Path, measure=None) -> int:
    """The database, simulators and environment of a fan-out run; then ``measure`` (``_measure``
    by default; bench/scaling.py passes its own)."""
    name = f"herald_bench_{os.getpid()}"  # never test_herald_*, the test suite's
    with contextlib.ExitStack() as running:
        database_url = running.enter_context(stack.fresh_database(args.database_url, name))
        sim = running.enter_context(stack.simulator(work / "sim"))
        if args.sink == "nginx":
            sim = running.enter_context(nginx_sink(sim, work))
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "CELERY_BROKER_URL": args.broker_url,
            "HERALD_VAR_DIR": str(work / "var"),
            "HERALD_LOG_LEVEL": "WARNING",
            # Every gateway is the simulator, as `make run` wires them (bin/run), or nginx for the
            # deliveries of FCM, APNs and Web Push (--sink nginx).
            "HERALD_GATEWAY_CA_FILE": sim.ca_path,
            "HERALD_FCM_BASE_URL": sim.urls["fcm"],
            "HERALD_APNS_PRODUCTION_URL": sim.urls["apns"],
            "HERALD_APNS_SANDBOX_URL": sim.urls["apns"],
            "HERALD_WNS_TOKEN_URL": f"{sim.urls['wns']}/accesstoken.srf",
            "HERALD_GATEWAYSIM_CONTROL_URL": sim.control_url,
            "HERALD_DEMO_SMTP_PORT": str(sim.port("email")),
            "HERALD_DEMO_SMS_PORT": str(sim.port("sms")),
            "HERALD_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        _flush(args.redis_url, args.broker_url)
        try:
            return (measure or _measure)(args, mix, sim, work, env)
        finally:
            _flush(args.redis_url, args.broker_url)


def _measure(args, mix, sim, work: Path, env: dict) -> int:
    from apps.demo import bootstrap_demo
    from apps.models import App
    from apps.vapid import ensure_vapid_keys

    # The demo wiring `make run` uses: every channel's credentials point at the simulators.
    credentials = bootstrap_demo(org_name="bench")
    app = ensure_vapid_keys(App.objects.get(pk=credentials.app_id))
    counts = split_evenly(args.players, mix)

    seed_started = time.perf_counter()
    issued = {p.name: identities(p, counts[p.name], sim, app.vapid_public_key) for p in mix}
    if "web" in issued:
        issued["web"] = [replace(i, identifier=sim.route(i.identifier)) for i in issued["web"]]
    with progress_bar(total=args.players, desc="Seeding", unit=" players") as bar:
        seed_players(app.id, mix, issued, progress=bar.update)
    seed_seconds = time.perf_counter() - seed_started

    raw = {}
    for p in mix:
        count = min(counts[p.name], RAW_REQUESTS // len(mix), RAW_CAPS.get(p.name, RAW_REQUESTS))
        if count:
            raw[p.name] = raw_baseline(p, app, issued[p.name][:count], CHANNEL_BODIES[p.channel], sim)
    peer = {}
    for p in mix:
        count = min(counts[p.name], args.peer_requests)
        if p.name not in PEER_PLATFORMS or count <= 0:
            continue
        if p.name in sim.peer_unsupported():
            why = sim.peer_unsupported()[p.name]
            print(f"bench: no django-push-notifications {p.name} here: {why}", file=sys.stderr)
        else:
            body = CHANNEL_BODIES[p.channel]
            database_url = env["DATABASE_URL"]
            peer[p.name] = peer_baseline(p, app, issued[p.name][:count], body, sim, database_url=database_url)
    del issued
    sim.reset()

    with contextlib.ExitStack() as processes:
        worker_log = work / "worker.log"
        worker = processes.enter_context(
            stack.celery(
                [
                    "worker",
                    "--concurrency",
                    str(args.concurrency),
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench{os.getpid()}@%h",
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
                    str(work / "celerybeat-schedule"),
                    "--pidfile",
                    str(work / "beat.pid"),
                ],
                work / "beat.log",
                env,
            )
        )
        stack.wait_for_log(worker_log, "ready.")
        run = _run_notifications(args, mix, app, credentials.app_key, sim, worker)
    return _report(args, mix, run, raw, peer, seed_seconds)


def _run_notifications(args, mix, app, app_key: str, sim, worker) -> dict:
    from django.test import Client

    from notifications.models import Notification

    worker_pids = stack.process_tree(worker.pid)
    cpu_before = stack.cpu_seconds(worker_pids)
    sink_cpu_before = sim.cpu_seconds()
    machine_before = stack.machine_cpu()
    samples: list[tuple[float, dict]] = []
    done = threading.Event()
    poller = threading.Thread(target=_poll_sink, args=(sim, samples, done), daemon=True)

    client = Client()
    # Warm the process (imports, URL resolver, connection) so post_ms is the request's own cost.
    client.get(f"/api/v1/notifications?app_id={app.id}", HTTP_AUTHORIZATION=f"Key {app_key}")
    channels = list(dict.fromkeys(p.channel for p in mix))
    poller.start()
    posted_wall = datetime.now(UTC)
    posted = time.perf_counter()
    ids, post_ms = [], {}
    for channel in channels:
        started = time.perf_counter()
        response = client.post(
            "/api/v1/notifications",
            data=json.dumps({"app_id": str(app.id), **CHANNEL_BODIES[channel]}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Key {app_key}",
        )
        post_ms[channel] = round((time.perf_counter() - started) * 1000, 1)
        assert response.status_code == 200, response.content
        ids.append(response.json()["id"])
    deadline = posted + args.timeout
    notifications = []
    # The bar reads the counters the loop fetches anyway: it adds no query to the measured run.
    with progress_bar(total=args.players, desc="Delivering", unit=" deliveries") as bar:
        while time.perf_counter() < deadline and worker.poll() is None:
            notifications = list(Notification.objects.filter(pk__in=ids))
            bar.update(sum(n.successful + n.failed + n.errored for n in notifications) - bar.n)
            if all(n.completed_at for n in notifications):
                break
            time.sleep(0.2)
    elapsed = time.perf_counter() - posted
    done.set()
    poller.join()
    worker_pids = stack.process_tree(worker.pid)
    return {
        "ids": ids,
        "notifications": notifications,
        "post_ms": post_ms,
        "posted": posted,
        "posted_wall": posted_wall,
        "elapsed": elapsed,
        "worker_cpu": stack.cpu_seconds(worker_pids) - cpu_before,
        "peak_rss_mb": max(stack.peak_rss_mb(pid) for pid in worker_pids),
        "sink_cpu": sim.cpu_seconds() - sink_cpu_before,
        "machine_busy": stack.machine_busy(machine_before, stack.machine_cpu()),
        "loadavg": stack.loadavg(),
        "samples": samples,
        "final_stats": sim.stats(),
        # Per platform nginx served (--sink nginx): every request's time, from its access log.
        "request_times": sim.request_times(),
    }


def _poll_sink(sim, samples: list, done: threading.Event) -> None:
    """The simulator's counters every POLL_SECONDS: when each platform's first and last
    delivery reached the sink."""
    while not done.is_set():
        with contextlib.suppress(OSError):
            samples.append((time.perf_counter(), sim.live_stats()))
        time.sleep(POLL_SECONDS)


def _sink_window(
    samples: list, posted: float, platform: str, final: int
) -> tuple[float | None, float | None]:
    first = last = None
    for at, stats in samples:
        accepted = stats[platform]["accepted"]
        if first is None and accepted > 0:
            first = at - posted
        if accepted >= final > 0:
            last = at - posted
            break
    return first, last


def _delivery_records(ids: list[str]) -> dict[int, dict]:
    """Per device type: outcomes and the first and last ``sent_at`` of Herald's delivery rows."""
    from django.db.models import Count, Max, Min, Q

    from notifications.models import Delivery

    rows = (
        Delivery.objects.filter(notification_id__in=ids)
        .values("batch__device_type")
        .annotate(
            sent=Count("id", filter=Q(status=Delivery.Status.SENT)),
            failed=Count("id", filter=Q(status=Delivery.Status.FAILED)),
            errored=Count("id", filter=Q(status=Delivery.Status.ERRORED)),
            first=Min("sent_at"),
            last=Max("sent_at"),
            batches=Count("batch", distinct=True),
        )
    )
    return {row["batch__device_type"]: row for row in rows}


def _report(args, mix, run: dict, raw: dict, peer: dict, seed_seconds: float) -> int:
    notifications = run["notifications"]
    completed = bool(notifications) and all(n.completed_at for n in notifications)
    successful = sum(n.successful for n in notifications)
    elapsed = run["elapsed"]
    stats = run["final_stats"]
    records = _delivery_records(run["ids"])
    posted_wall = run["posted_wall"]

    per_platform = {}
    http2_sent, http2_last = 0, 0.0
    for p in mix:
        record = records.get(p.device_type, {})
        sent = record.get("sent", 0)
        first = (record["first"] - posted_wall).total_seconds() if record.get("first") else None
        last = (record["last"] - posted_wall).total_seconds() if record.get("last") else None
        accepted = stats[p.simulator]["accepted"]
        if p.simulator in run["request_times"]:
            times = run["request_times"][p.simulator]
            epoch = posted_wall.timestamp()
            sink_first, sink_last = (times[0] - epoch, times[-1] - epoch) if times else (None, None)
        else:
            sink_first, sink_last = _sink_window(run["samples"], run["posted"], p.simulator, accepted)
        entry = {
            "players": split_evenly(args.players, mix)[p.name],
            "delivered": sent,
            "failed": record.get("failed", 0),
            "errored": record.get("errored", 0),
            "share": round(sent / successful, 3) if successful else 0.0,
            "first_delivery_s": _round(first),
            "last_delivery_s": _round(last),
            "deliveries_per_second": _rate(sent, first, last),
            "batches": record.get("batches", 0),
            "sink_accepted": accepted,
            # None where the sink cannot tell (nginx and FCM: the token is in the body).
            "sink_duplicates": stats[p.simulator]["duplicates"],
            "sink_first_s": _round(sink_first),
            "sink_last_s": _round(sink_last),
            "sink_per_second": _rate(accepted, sink_first, sink_last),
        }
        if p.name in raw:
            entry["raw"] = raw[p.name].as_dict()
        if p.name in peer:
            entry["django_push_notifications"] = peer[p.name].as_dict()
        per_platform[p.name] = entry
        if p.http2 and last is not None:
            http2_sent += sent
            http2_last = max(http2_last, last)

    http2_raw = [raw[p.name] for p in mix if p.http2 and p.name in raw]
    raw_http2_rate = _combined_rate(http2_raw)
    raw_all_rate = _combined_rate(list(raw.values()))
    # Only when the peer sent every platform Herald's HTTP/2 rate covers: a ratio over a subset
    # would compare different work.
    http2_names = [p.name for p in mix if p.http2]
    peer_rate = _combined_rate([peer[n] for n in http2_names]) if set(http2_names) <= set(peer) else 0.0
    http2_rate = http2_sent / http2_last if http2_last else 0.0
    rate = successful / elapsed if completed else 0.0
    firsts = [e["sink_first_s"] for e in per_platform.values() if e["sink_first_s"] is not None]
    result = {
        "benchmark": "fanout",
        "players": args.players,
        "mix": ",".join(p.name for p in mix),
        "worker_processes": args.concurrency,
        "notifications": len(run["ids"]),
        "completed": completed,
        "successful": successful,
        "failed": sum(n.failed for n in notifications),
        "errored": sum(n.errored for n in notifications),
        "sink": args.sink,
        "sink_accepted": sum(stats[p.simulator]["accepted"] for p in mix),
        "sink_duplicates": _total_or_none(stats[p.simulator]["duplicates"] for p in mix),
        "post_ms": run["post_ms"],
        "seconds_post_to_completed": round(elapsed, 2),
        "deliveries_per_second": round(rate),
        "time_to_first_delivery_ms": round(min(firsts) * 1000) if firsts else None,
        "cpu_seconds_per_1000": round(run["worker_cpu"] / max(1, successful) * 1000, 3),
        "peak_worker_rss_mb": round(run["peak_rss_mb"], 1),
        "sink_cpu_seconds": round(run["sink_cpu"], 1),
        "sink_busy": round(run["sink_cpu"] / elapsed, 2),
        # Everything on the machine, others' processes included: how shared the cores were.
        "machine_cpu_busy": round(run["machine_busy"], 2),
        "loadavg_1_5_15_at_end": run["loadavg"],
        "per_platform": per_platform,
        "http2_deliveries_per_second": round(http2_rate),
        "raw_baseline_per_second": round(raw_http2_rate),
        "raw_all_per_second": round(raw_all_rate),
        "ratio_to_raw_baseline": round(http2_rate / raw_http2_rate, 3) if raw_http2_rate else None,
        "ratio_all_to_raw_baseline": round(rate / raw_all_rate, 3) if raw_all_rate else None,
        "django_push_notifications_per_second": round(peer_rate) if peer_rate else None,
        "ratio_to_django_push_notifications": round(http2_rate / peer_rate, 2) if peer_rate else None,
        "seed_seconds": round(seed_seconds, 1),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": git_commit(),
        "machine": machine(),
    }
    if args.timeline:
        _write_timeline(args.timeline, mix, run)
    _print_table(result)
    print(json.dumps(result), flush=True)
    return 0 if completed else 1


def _write_timeline(path: Path, mix, run: dict) -> None:
    """One row per second since the first POST: each platform's accepted count at the sink (from
    the simulator's polled counters, or nginx's request times)."""
    epoch = run["posted_wall"].timestamp()
    rows, next_second = [], 0
    for at, stats in run["samples"]:
        if at - run["posted"] >= next_second:
            at_epoch = epoch + next_second
            rows.append([next_second, *(_accepted_by(p.simulator, stats, run, at_epoch) for p in mix)])
            next_second += 1
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["seconds", *(p.name for p in mix)])
        writer.writerows(rows)


def _accepted_by(name: str, stats: dict, run: dict, epoch: float) -> int:
    times = run["request_times"].get(name)
    return bisect.bisect_right(times, epoch) if times is not None else stats[name]["accepted"]


def _total_or_none(values) -> int | None:
    """The sum, or None if any is unknown: a total must not quietly leave a platform out."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def _combined_rate(results: list) -> float:
    """The rate of one raw client sending these platforms' requests one platform after another
    (the mix is even, as each raw run has the same number of requests)."""
    seconds = sum(r.seconds for r in results)
    return sum(r.requests for r in results) / seconds if seconds else 0.0


def _rate(count: int, first: float | None, last: float | None) -> int | None:
    """count / (last - first), when there is a window."""
    if first is None or last is None or last <= first:
        return None
    return round(count / (last - first))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _print_table(result: dict) -> None:
    print(
        f"{'platform':<8} {'delivered':>9} {'share':>6} {'first s':>8} {'last s':>8} {'per s':>7} "
        f"{'sink/s':>7} {'raw/s':>7} {'dpn/s':>6} {'sink µs/req':>11} {'dups':>5}"
    )
    for name, e in result["per_platform"].items():
        raw, peer = e.get("raw", {}), e.get("django_push_notifications", {})
        print(
            f"{name:<8} {e['delivered']:>9} {e['share']:>6.3f} {_cell(e['first_delivery_s']):>8} "
            f"{_cell(e['last_delivery_s']):>8} {_cell(e['deliveries_per_second']):>7} "
            f"{_cell(e['sink_per_second']):>7} {_cell(raw.get('per_second')):>7} "
            f"{_cell(peer.get('per_second')):>6} "
            f"{_cell(raw.get('sink_cpu_us_per_request')):>11} {_cell(e['sink_duplicates']):>5}"
        )
    print(
        f"total: {result['successful']} delivered in {result['seconds_post_to_completed']} s = "
        f"{result['deliveries_per_second']}/s; HTTP/2 platforms {result['http2_deliveries_per_second']}/s "
        f"vs raw {result['raw_baseline_per_second']}/s (ratio {result['ratio_to_raw_baseline']}), "
        f"vs django-push-notifications {result['django_push_notifications_per_second']}/s "
        f"(ratio {result['ratio_to_django_push_notifications']}); "
        f"sink busy {result['sink_busy']} of one core",
        flush=True,
    )


def _cell(value) -> str:
    return "-" if value is None else str(value)
