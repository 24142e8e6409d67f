"""End-to-end fixtures: tenants on committed data, official clients in subprocesses, a real worker.

Every test here runs against pytest-django's ``live_server`` (a real HTTP server thread on a
transactional test database), so subprocesses (the official OneSignal clients, a Celery worker)
see what the test committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings

from tests.conftest import Tenant, make_tenant

E2E_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = E2E_DIR / "client_scripts"
PROJECT_DIR = E2E_DIR.parent.parent
CLIENT_DIRS = {
    "os221": PROJECT_DIR / "var" / "clients" / "os221",
    "os518": PROJECT_DIR / "var" / "clients" / "os518",
}
CLIENT_TIMEOUT_SECONDS = 60
WORKER_READY_TIMEOUT_SECONDS = 60
WORKER_STOP_TIMEOUT_SECONDS = 20


@pytest.fixture
def tenant(transactional_db) -> Tenant:
    """An organization, app and keys, committed (``own`` uses ``db``, which live_server cannot)."""
    return make_tenant()


@pytest.fixture
def other_tenant(transactional_db) -> Tenant:
    return make_tenant()


# --- official clients ---------------------------------------------------------------------------


ClientRunner = Callable[..., dict]


@pytest.fixture
def run_client() -> ClientRunner:
    """``run_client("os221", "os221_players.py", arg, ..., extra={...})`` -> the script's JSON.

    The script runs under this interpreter with only the client's directory on PYTHONPATH, so
    the two client versions (both named ``onesignal``) never meet. A failing script fails the
    test with its stderr.
    """

    def run(client: str, script: str, *args: str, extra: dict | None = None) -> dict:
        client_dir = CLIENT_DIRS[client]
        if not (client_dir / "onesignal").is_dir():
            pytest.fail(f"{client_dir} has no onesignal package: run `make clients`")
        env = {**os.environ, "PYTHONPATH": str(client_dir), "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        argv = [sys.executable, str(SCRIPTS_DIR / script), *args]
        if extra is not None:
            argv.append(json.dumps(extra))
        try:
            done = subprocess.run(
                argv,
                env=env,
                cwd=str(SCRIPTS_DIR),
                capture_output=True,
                text=True,
                timeout=CLIENT_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{script} {args[:1]} timed out after {exc.timeout}s\nstderr:\n{exc.stderr}")
        if done.returncode != 0:
            pytest.fail(
                f"{script} {args[:1]} exited with {done.returncode}\n"
                f"stderr:\n{done.stderr}\nstdout:\n{done.stdout}",
                pytrace=False,
            )
        lines = done.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            pytest.fail(f"{script} printed no JSON\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        assert Path(result["client_file"]).resolve().is_relative_to(client_dir.resolve()), result
        return result

    return run


@pytest.fixture
def enqueued_exports(monkeypatch) -> list[str]:
    """Record CSV export tasks instead of sending them: their exports stay pending forever.

    The live server runs in this process, so patching the task object reaches its requests.
    """
    from players.tasks import csv_export_task

    sent: list[str] = []
    monkeypatch.setattr(csv_export_task, "delay_on_commit", lambda export_id, **kw: sent.append(export_id))
    return sent


# --- Celery worker ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_media_root(tmp_path_factory) -> Path:
    """MEDIA_ROOT shared by the worker (which writes export files) and the live server."""
    return tmp_path_factory.mktemp("e2e-media")


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture(scope="module")
def worker_extra_env() -> dict[str, str]:
    """Environment added to the module's worker; a module overrides this fixture (module scope) to
    point its worker at a gateway simulator or to tune the pipeline's settings."""
    return {}


def worker_env(media_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A worker's environment: the test database, the test broker and cache, ``media_root``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "HERALD_MEDIA_ROOT": str(media_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(extra or {}),
    }
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL  # the worker must read the broker the tests write
    return env


def start_worker(
    log_path: Path,
    env: dict[str, str],
    *,
    app: str = "config",
    pool: str = "solo",
    concurrency: int = 1,
    new_session: bool = False,
    loglevel: str = "INFO",
) -> subprocess.Popen:
    """Start ``celery worker`` and wait for its ready line; the caller stops it (``stop_worker``).

    Everything it prints (stdout and stderr, its log at ``loglevel``) goes to ``log_path``.
    ``new_session`` makes the worker lead its own process group, so that it and its pool's children
    can be killed together (``os.killpg``).
    """
    node = f"e2e-{uuid.uuid4().hex[:8]}@%h"
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        node,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=str(PROJECT_DIR),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
    process.log_path = log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
    while b" ready." not in log_path.read_bytes():
        if process.poll() is not None:
            pytest.fail(f"celery worker exited with {process.returncode}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            stop_worker(process)
            pytest.fail(
                f"celery worker not ready after {WORKER_READY_TIMEOUT_SECONDS}s:\n{log_path.read_text()}"
            )
        time.sleep(0.2)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    """Warm shutdown, then cold, then SIGKILL: whatever it takes, the worker is gone after this."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown: finishes a running task first
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        return
    except subprocess.TimeoutExpired:
        pass
    process.send_signal(signal.SIGQUIT)  # cold shutdown
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def worker_loglevel() -> str:
    """The module's worker's ``--loglevel``; a module overrides this fixture to read more."""
    return "INFO"


@pytest.fixture(scope="module")
def celery_worker(
    django_db_setup, e2e_media_root, tmp_path_factory, worker_extra_env, worker_loglevel
) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process on the test database, the test broker and e2e_media_root,
    with ``worker_extra_env`` added to its environment, logging at ``worker_loglevel``.

    Module-scoped: started once for the module that needs it, and stopped (killed if it will not
    stop) when the module is done, so no worker outlives the tests.
    """
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no stale messages from earlier runs
    log_path = tmp_path_factory.mktemp("e2e-worker") / "worker.log"
    process = start_worker(log_path, worker_env(e2e_media_root, worker_extra_env), loglevel=worker_loglevel)
    try:
        yield process
    finally:
        stop_worker(process)


@pytest.fixture
def worker(celery_worker, settings, e2e_media_root) -> Iterator[subprocess.Popen]:
    """Per test: the worker alive, this process's MEDIA_ROOT = the worker's; after the test, no
    task failed in the worker (a failing task fails the test that caused it, with the log)."""
    log_path: Path = celery_worker.log_path
    if celery_worker.poll() is not None:
        pytest.fail(f"celery worker died:\n{log_path.read_text()}")
    settings.MEDIA_ROOT = str(e2e_media_root)
    offset = log_path.stat().st_size
    yield celery_worker
    with log_path.open("rb") as log:
        log.seek(offset)
        new = log.read().decode(errors="replace")
    if "Traceback" in new or " ERROR " in new or " CRITICAL " in new:
        pytest.fail(f"the celery worker logged an error during the test:\n{new[-8000:]}")
