"""Each benchmark at a tiny size, so that none of them can rot: it runs to the end, and its last
line is one JSON object with its figures and ``ratio_*`` keys. Nothing here is timed: the figures
are checked for presence and sanity, never against a speed.

The benchmarks create their own ``herald_bench_<pid>`` database (cloned from a migrated template)
and use this test session's Redis databases, which they flush.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bench.nginx import nginx_binary

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 300


def _admin_url() -> str:
    from tests.e2e.conftest import _test_database_url

    return _test_database_url().rsplit("/", 1)[0] + "/postgres"


def bench(name: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [
        sys.executable,
        "-m",
        "bench",
        name,
        *args,
        "--database-url",
        _admin_url(),
        "--redis-url",
        settings.REDIS_URL,
        "--broker-url",
        settings.CELERY_BROKER_URL,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, (
        f"{' '.join(command)}\nstdout:\n{done.stdout[-5000:]}\nstderr:\n{done.stderr[-5000:]}"
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == name and result["players"] == int(args[args.index("--players") + 1])
    assert result["machine"]["cores"] >= 1 and result["date"] and result["commit"]
    return result


def entry_items(result: dict):
    return result["per_platform"].items()


def ratios(result: dict) -> dict:
    found = {k: v for k, v in result.items() if k.startswith("ratio_")}
    assert found, result
    return found


def test_fanout_to_the_simulators(django_db_setup):
    result = bench("fanout", "--players", "100", "--mix", "android", "--sink", "simulator")
    assert result["completed"] and result["successful"] == 100
    assert result["sink"] == "simulator" and result["sink_accepted"] == 100 and result["sink_duplicates"] == 0
    assert result["deliveries_per_second"] > 0 and result["peak_worker_rss_mb"] > 0
    # django-push-notifications sent the same 100 through its bulk path, to the same simulator.
    assert result["per_platform"]["android"]["django_push_notifications"]["requests"] == 100
    assert set(ratios(result)) == {
        "ratio_to_raw_baseline",
        "ratio_all_to_raw_baseline",
        "ratio_to_django_push_notifications",
    }
    assert result["ratio_to_django_push_notifications"] > 0


def test_fanout_to_nginx(django_db_setup):
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (bin/ensure-test-tools installs Debian's nginx-light)")
    result = bench("fanout", "--players", "150", "--mix", "android,ios,web")
    assert result["completed"] and result["successful"] == 150 and result["sink"] == "nginx"
    # nginx logged exactly one request per player; APNs and Web Push URIs name the device, so
    # nginx can tell duplicates; FCM's token is in the body, which it does not keep.
    assert result["sink_accepted"] == 150 and result["sink_duplicates"] is None
    for name, entry in result["per_platform"].items():
        assert entry["delivered"] == entry["sink_accepted"] == 50, name
        assert entry["sink_duplicates"] == (None if name == "android" else 0), name
        assert entry["sink_first_s"] is not None and entry["sink_first_s"] <= entry["sink_last_s"], name
        # nginx may answer 50 requests within one CPU-clock tick, so its CPU is not checked here.
        assert entry["raw"]["requests"] == 50 and entry["raw"]["per_second"] > 0, name
    # Its APNs path cannot send to nginx (bench/nginx.py), so no ratio over all three platforms.
    peers = {name: e.get("django_push_notifications", {}).get("requests") for name, e in entry_items(result)}
    assert peers == {"android": 50, "ios": None, "web": 50}
    assert result["ratio_to_django_push_notifications"] is None
    assert set(ratios(result)) == {
        "ratio_to_raw_baseline",
        "ratio_all_to_raw_baseline",
        "ratio_to_django_push_notifications",
    }


@pytest.mark.parametrize("generator", ["python", pytest.param("wrk", marks=pytest.mark.slow)])
def test_ingest(django_db_setup, generator):
    if generator == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk); the python load generator is tested")
    scenarios = "on_session,create,tags" if generator == "python" else "on_session"
    duration = ["--duration", "0.5", "--warmup", "0.2"] if generator == "python" else ["--duration", "1"]
    result = bench(
        "ingest",
        "--players",
        "200",
        "--load-generator",
        generator,
        "--scenarios",
        scenarios,
        "--connections",
        "4",
        "--web-workers",
        "2",
        *duration,
    )
    assert result["ok"] and result["load_generator"] == generator
    for scenario in ["baseline_before", "baseline_after", *scenarios.split(",")]:
        entry = result["scenarios"][scenario]
        assert entry["requests"] > 0 and entry["non_2xx"] == 0 and entry["p50_ms"] > 0, (scenario, entry)
        assert entry["p50_ms"] <= entry["p99_ms"] <= entry["p99_9_ms"] <= entry["max_ms"]
    assert set(ratios(result)) == {f"ratio_{s}_to_bare_django" for s in scenarios.split(",")}
    if "create" in scenarios:
        assert result["players_created_by_create"] >= result["scenarios"]["create"]["requests"]


def test_create(django_db_setup):
    result = bench("create", "--players", "200", "--requests", "5", "--web-workers", "1")
    assert result["ok"]
    assert (result["segment"]["recipients"], result["ids"]["recipients"]) == (200, 10)
    assert result["segment"]["requests"] == result["ids"]["requests"] == 5
    assert result["count_plan_segment_ms"] is not None
    assert {"ratio_p99_segment_to_ids", "ratio_p50_segment_to_ids"} <= set(ratios(result))


def test_audience(django_db_setup):
    result = bench("audience", "--players", "600", "--repeat", "1")
    assert result["ok"]
    filters = result["filters"]
    assert filters["subscribed"]["count"] == 600
    for name, entry in filters.items():
        assert entry["count"] == entry["stream_rows"], name
        if name != "subscribed":
            assert 0 < entry["count"] < 600, (name, entry)
    indexed = result["filters_level_indexed"]
    assert set(indexed) == {"tag_equal", "tag_range", "or_of_three"}
    for name, entry in indexed.items():
        assert entry["count"] == entry["stream_rows"] and entry["same_players_as_plain"], name
    assert result["tag_index_build_seconds"] >= 0
    assert len(ratios(result)) == 5 + 3 + 3


def test_bulk(django_db_setup):
    result = bench("bulk", "--players", "300")
    assert result["ok"] and result["mismatched_players"] == 0
    assert result["export"]["rows"] == 300 and result["import"]["rows_created"] == 300
    assert result["reimport"]["rows_created"] == 0 and result["reimport"]["rows_updated"] == 0
    assert set(ratios(result)) == {
        "ratio_export_to_raw_copy",
        "ratio_import_to_raw_insert",
        "ratio_reimport_to_import",
    }


def test_scaling(django_db_setup):
    result = bench("scaling", "--players", "100", "--workers", "1", "--latency-ms", "0,20")
    assert result["ok"] and set(result["runs"]) == {"1w_0ms", "1w_20ms"}
    for run in result["runs"].values():
        assert run["completed"] and run["successful"] == 100 and run["simulator_duplicates"] == 0
    assert set(ratios(result)) == {"ratio_20ms_to_0ms_1w"}


@pytest.mark.slow
def test_scaling_matrix(django_db_setup):
    result = bench("scaling", "--players", "200", "--workers", "1,2", "--latency-ms", "0,20")
    assert result["ok"] and set(result["runs"]) == {"1w_0ms", "2w_0ms", "1w_20ms", "2w_20ms"}
    for run in result["runs"].values():
        assert run["completed"] and run["successful"] == 200 and run["simulator_duplicates"] == 0
    assert set(ratios(result)) == {
        "ratio_2w_to_1w_0ms",
        "ratio_2w_to_1w_20ms",
        "ratio_20ms_to_0ms_1w",
        "ratio_20ms_to_0ms_2w",
    }
