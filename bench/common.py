"""What every benchmark shares: its arguments, a fresh database with Django set up on it, the
demo app, seeding players in SQL, percentiles, and the final JSON line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench import stack
from bench.fanout import git_commit, machine
from core.progress import progress_bar

# The API's rate limits would cap a load test at their own numbers (players_write is 1,000/s per
# app, keyless device calls 50/s per client address, and every request here comes from 127.0.0.1):
# each bucket is raised, not removed, so the limiter's own cost (Redis round trips) is measured.
BENCH_RATE = "100000000/s"


def add_common_arguments(parser: argparse.ArgumentParser, *, players: int) -> None:
    parser.add_argument("--players", type=int, default=players)
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
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory (logs, files)")


def _flush(*urls: str) -> None:
    import redis

    for url in urls:
        redis.Redis.from_url(url).flushdb()


def run_benchmark(
    args: argparse.Namespace, name: str, body: Callable[[argparse.Namespace, Path, dict], dict]
) -> int:
    """Run ``body(args, work, env)`` on a fresh database with Django set up in this process; print
    its result (plus the run's context) as the last line, one JSON object."""
    work = Path(tempfile.mkdtemp(prefix=f"herald-bench-{name}-"))
    status = 1
    try:
        with environment(args, work) as env:
            started_wall = time.time()
            load_before = stack.loadavg()
            machine_before = stack.machine_cpu()
            result = body(args, work, env)
            result = {
                "benchmark": name,
                "players": args.players,
                **result,
                "machine_cpu_busy": round(stack.machine_busy(machine_before, stack.machine_cpu()), 2),
                "loadavg_1_5_15_at_start": load_before,
                "loadavg_1_5_15_at_end": stack.loadavg(),
                "seconds": round(time.time() - started_wall, 1),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "commit": git_commit(),
                "machine": machine(),
            }
        status = 0 if result.get("ok", True) else 1
        print(json.dumps(result, default=str), flush=True)
        return status
    except BaseException:
        print(f"bench: logs kept in {work}", file=sys.stderr)
        raise
    finally:
        if status == 0 and not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        elif status != 0 or args.keep_logs:
            print(f"bench: logs kept in {work}", file=sys.stderr)


@contextlib.contextmanager
def environment(args: argparse.Namespace, work: Path) -> Iterator[dict]:
    """A fresh ``herald_bench_<pid>`` database (never ``test_herald_*``), Django set up on it in
    this process, and the environment that Herald processes started by the benchmark get."""
    name = f"herald_bench_{os.getpid()}"
    with stack.fresh_database(args.database_url, name) as database_url:
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis_url,
            "CELERY_BROKER_URL": args.broker_url,
            "HERALD_VAR_DIR": str(work / "var"),
            "HERALD_MEDIA_ROOT": str(work / "media"),
            "HERALD_LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        }
        (work / "metrics").mkdir(parents=True, exist_ok=True)
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        # Every bucket Herald has (read after setup, so a new bucket is raised too), here and in
        # the processes the benchmark starts.
        settings.HERALD_RATE_LIMITS = dict.fromkeys(settings.HERALD_RATE_LIMITS, BENCH_RATE)
        env["HERALD_RATE_LIMITS"] = ",".join(
            f"{bucket}={BENCH_RATE}" for bucket in settings.HERALD_RATE_LIMITS
        )
        os.environ["HERALD_RATE_LIMITS"] = env["HERALD_RATE_LIMITS"]

        call_command("migrate", verbosity=0)  # a no-op on the migrated template; cheap insurance
        _flush(args.redis_url, args.broker_url)
        try:
            yield env
        finally:
            from django.db import connections

            connections.close_all()
            _flush(args.redis_url, args.broker_url)


def demo_app():
    """The demo organization's app and a fresh App key (bootstrap_demo, as `make run` does)."""
    from apps.demo import bootstrap_demo
    from apps.models import App

    credentials = bootstrap_demo(org_name="bench")
    return App.objects.get(pk=credentials.app_id), credentials.app_key


def new_app(name: str):
    """Another app of the demo organization, and its App key."""
    from apps.models import App, Organization
    from apps.services import app_key_issue

    organization = Organization.objects.get(name="bench")
    app = App.objects.create(organization=organization, name=name)
    _, key = app_key_issue(app=app, label="bench")
    return app, key


def seed_players(app_id, count: int, *, prefix: str = "bench", days: int = 60) -> float:
    """``count`` subscribed FCM players made by PostgreSQL itself (``INSERT … SELECT`` over
    ``generate_series``: no rows cross the wire), with varied attributes for the filter benchmarks:

    - tags ``level`` "0".."49" (numeric), ``plan`` free / pro / team, ``cohort`` c0..c6;
    - ``last_active`` spread evenly over the last ``days`` days, ``session_count`` 1..100;
    - language en / de / fr / es, country US / DE / FR / BR / IN;
    - one in three players located, around Paris, New York or Tokyo (within about 3 degrees).

    Values come from a multiplicative hash of the row number, so they are reproducible and not
    correlated with the id order. Returns the seconds it took (VACUUM and ANALYZE included)."""
    from django.db import connection

    from players import tag_indexes

    started = time.perf_counter()
    step = 200_000
    with connection.cursor() as cursor, progress_bar(total=count, desc="Seeding", unit=" players") as bar:
        for start in range(0, count, step):
            cursor.execute(
                """
                INSERT INTO players_player (
                    id, app_id, device_type, identifier, language, country, tags, session_count,
                    playtime, amount_spent, badge_count, notification_types, invalid_identifier,
                    unsubscribed_reason, location_meta, lat, long, timezone, created_at, last_active)
                SELECT gen_random_uuid(), %(app)s, 1, %(prefix)s || '-fcm-' || lpad(i::text, 9, '0'),
                    (ARRAY['en', 'de', 'fr', 'es'])[1 + mod(h, 4)],
                    (ARRAY['US', 'DE', 'FR', 'BR', 'IN'])[1 + mod(h / 4, 5)],
                    jsonb_build_object('level', mod(h / 20, 50)::text,
                                       'plan', (ARRAY['free', 'pro', 'team'])[1 + mod(h / 1000, 3)],
                                       'cohort', 'c' || mod(h / 3000, 7)),
                    1 + mod(h / 21000, 100), mod(h, 3600), 0, 0, 1, false, '', '{}'::jsonb,
                    CASE WHEN mod(i, 3) = 0 THEN (ARRAY[48.85, 40.71, 35.68])[1 + mod(h / 7, 3)]
                        + (mod(h / 11, 6000) - 3000) / 1000.0 END,
                    CASE WHEN mod(i, 3) = 0 THEN (ARRAY[2.35, -74.0, 139.69])[1 + mod(h / 7, 3)]
                        + (mod(h / 13, 6000) - 3000) / 1000.0 END,
                    0, now() - interval '90 days',
                    now() - make_interval(secs => mod(h, %(days)s * 86400))
                FROM (SELECT i, mod(i::bigint * 2654435761, 4294967296) AS h
                      FROM generate_series(%(start)s, %(stop)s) AS i) AS numbered
                """,
                {
                    "app": app_id,
                    "prefix": prefix,
                    "start": start,
                    "stop": min(count, start + step) - 1,
                    "days": days,
                },
            )
            bar.update(min(count, start + step) - start)
        # VACUUM too: a table just bulk-loaded has no visibility map yet, so every index-only scan
        # would visit the heap until autovacuum comes by. Measure the steady state instead.
        cursor.execute("VACUUM (ANALYZE) players_player")
    # With HERALD_INDEXED_NUMERIC_TAGS in the environment the tag indexes are built now, as
    # `manage.py tag_indexes --apply` would (ingest measures what they cost the SDK's writes).
    if tag_indexes.indexed_keys():
        tag_indexes.sync()
    return time.perf_counter() - started


def percentiles(samples_ms: list[float]) -> dict[str, float | None]:
    """p50, p99 and p99.9 (nearest rank) and the max of latencies in milliseconds."""
    if not samples_ms:
        return {"p50_ms": None, "p99_ms": None, "p99_9_ms": None, "max_ms": None}
    ordered = sorted(samples_ms)

    def rank(q: float) -> float:
        index = max(0, min(len(ordered) - 1, -(-len(ordered) * q // 1) - 1))
        return round(ordered[int(index)], 2)

    return {
        "p50_ms": rank(0.50),
        "p99_ms": rank(0.99),
        "p99_9_ms": rank(0.999),
        "max_ms": round(ordered[-1], 2),
    }


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, digits)


@contextlib.contextmanager
def celery_worker(env: dict, work: Path, *, concurrency: int = 1, name: str = "worker"):
    """A Celery worker (prefork) on the benchmark's database and broker, ready when this yields."""
    log = work / f"{name}.log"
    command = [
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"bench-{name}-{os.getpid()}@%h",
    ]
    with stack.celery(command, log, env) as process:
        stack.wait_for_log(log, "ready.")
        yield process


def wait_until(check: Callable[[], bool], *, timeout: float, every: float = 0.05, what: str = "it") -> float:
    """Poll ``check`` until true; the seconds it took. TimeoutError after ``timeout``."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(every)
    return time.perf_counter() - started
