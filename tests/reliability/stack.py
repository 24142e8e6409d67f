"""The whole Herald stack as real processes, for tests that kill, restart and starve its parts.

Every process runs as production runs it, from the same code: the web (Granian), Celery workers
(prefork, each in its own process group so ``kill -9`` takes the pool's children too), the beat
(the scheduler and sweeper, ``dispatch_due``), a Redis server of the stack's own (so a test may
kill it, flush it or keep it down without touching anybody else's Redis) and the gateway
simulators. PostgreSQL is the test database (pytest-django's), unless a test brings a cluster of
its own (``PgCluster``) to restart.

The test process seeds players and reads the outcome through the ORM; it never runs a task.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config.granian import granian_argv

PROJECT_DIR = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60
ANDROID = 1
FCM_PROJECT_ID = "herald-reliability"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process that leads its own group, and its children; reap it if it was killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    if sig == signal.SIGKILL:
        process.wait(timeout=15)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies excluded), from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def group_pids(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- Redis of the stack's own -------------------------------------------------------------------


class RedisServer:
    """``redis-server`` on a free port with no persistence: a restart loses everything, as the
    broker-loss tests want. Only this process is ever killed or flushed."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(self.ping, timeout=15, what="redis-server to answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        """Empty this server (ours alone: never the shared one)."""
        import redis

        redis.Redis(host="127.0.0.1", port=self.port).flushall()

    def kill(self) -> None:
        """kill -9: the data is gone (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- the processes ------------------------------------------------------------------------------


def stack_database_url() -> str:
    from tests.e2e.conftest import _test_database_url

    return _test_database_url()


@dataclass
class Stack:
    """Starts web, workers and beat on one environment; ``close`` stops whatever is still running."""

    workdir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    web_url: str = ""
    counter: int = 0

    def _log(self, name: str) -> Path:
        self.counter += 1
        return self.workdir / f"{self.counter:03d}-{name}.log"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log_path = self._log(name)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=str(PROJECT_DIR),
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def _wait_log(self, process: subprocess.Popen, marker: bytes, what: str) -> None:
        log_path: Path = process.log_path  # type: ignore[attr-defined]
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in log_path.read_bytes():
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode}:\n{log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not ready after {READY_TIMEOUT}s:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.1)

    def start_worker(self, concurrency: int = 2, *, wait: bool = True) -> subprocess.Popen:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"rel-{uuid.uuid4().hex[:8]}@%h",
        ]
        process = self._spawn("worker", argv)
        if wait:
            self._wait_log(process, b" ready.", "celery worker")
        return process

    def start_beat(self) -> subprocess.Popen:
        schedule = self.workdir / f"beat-{uuid.uuid4().hex[:6]}"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(schedule),
            "--pidfile",
            "",
        ]
        process = self._spawn("beat", argv)
        self._wait_log(process, b"beat: Starting", "celery beat")
        return process

    def start_web(self) -> subprocess.Popen:
        port = free_port()
        # As docker/start-web runs it, with one process.
        argv = granian_argv(host="127.0.0.1", port=port, workers=1, threads=8)
        process = self._spawn("web", argv)
        self.web_url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the web server exited:\n{process.log_path.read_text()[-5000:]}")  # type: ignore[attr-defined]
            try:
                urllib.request.urlopen(self.web_url + "/api/v1/apps", timeout=2)  # noqa: S310
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        wait_for(answers, timeout=READY_TIMEOUT, what="the web server to answer", interval=0.2)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """kill -9 on purpose (``assert_running`` then expects it dead)."""
        process.killed_on_purpose = True  # type: ignore[attr-defined]
        kill_group(process)

    def assert_running(self) -> None:
        """Every process not killed on purpose still runs: nothing crashed on its own."""
        for process in self.processes:
            if getattr(process, "killed_on_purpose", False):
                continue
            log: Path = process.log_path  # type: ignore[attr-defined]
            assert process.poll() is None, (
                f"{log.name} exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        kill_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # any child left behind

    def close(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)

    def logs(self, kind: str) -> str:
        return "\n".join(
            p.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
            for p in self.processes
            if p.log_path.name.endswith(f"-{kind}.log")  # type: ignore[attr-defined]
        )


def pipeline_env(**overrides: Any) -> dict[str, str]:
    """Pipeline settings for the stack: small batches and short leases, so that recovery is
    quick enough to watch (the mechanics are the production ones, only the clocks are shorter)."""
    values = {
        "HERALD_BATCH_SIZE": 250,
        "HERALD_FANOUT_CHUNK": 2000,
        "HERALD_BATCH_LEASE_SECONDS": 10,
        "HERALD_REDELIVERY_GRACE_SECONDS": 10,
        "HERALD_DISPATCH_INTERVAL_SECONDS": 1,
        "HERALD_RETRY_BASE_MS": 300,
        "HERALD_MAX_DELIVERY_ATTEMPTS": 5,
    }
    values.update(overrides)
    return {name: str(value) for name, value in values.items()}


def stack_env(*, redis: RedisServer, gateway: dict[str, str], media_root: Path, **pipeline: Any) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": stack_database_url(),
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": redis.url(1),
        "HERALD_MEDIA_ROOT": str(media_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **gateway,
        **pipeline_env(**pipeline),
    }
    env.pop("HERALD_TEST_DB_NAME", None)
    return env


# --- data ---------------------------------------------------------------------------------------


def configure_fcm(app, sim) -> None:
    app.fcm_service_account_json = json.dumps(sim.fcm_service_account(FCM_PROJECT_ID))
    app.fcm_project_id = FCM_PROJECT_ID
    app.save()


def seed_android_players(app, count: int, prefix: str = "rel") -> list[str]:
    """``count`` subscribed Android players with distinct FCM tokens; returns the tokens."""
    from players.models import Player

    run = secrets.token_hex(4)
    tokens = [f"{prefix}-{run}-{n:07d}" for n in range(count)]
    for start in range(0, count, 10_000):
        Player.objects.bulk_create(
            [
                Player(app=app, device_type=ANDROID, identifier=token)
                for token in tokens[start : start + 10_000]
            ],
            batch_size=10_000,
        )
    return tokens


def post_json(url: str, body: Any, *, key: str | None = None, timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - our own web
    request.add_header("Content-Type", "application/json; charset=UTF-8")
    if key:
        request.add_header("Authorization", f"Key {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")


@dataclass
class State:
    recipients: int
    successful: int
    failed: int
    errored: int
    remaining: int
    fanout_done: bool
    completed: bool

    @property
    def settled(self) -> int:
        return self.successful + self.failed + self.errored


def state(notification_id: str) -> State:
    from notifications.models import Notification

    row = Notification.objects.values_list(
        "recipients", "successful", "failed", "errored", "remaining", "fanout_done", "completed_at"
    ).get(pk=notification_id)
    return State(*row[:6], completed=row[6] is not None)


def jitter(low: float, high: float) -> float:
    return random.uniform(low, high)


@contextlib.contextmanager
def closing_stack(stack: Stack) -> Iterator[Stack]:
    try:
        yield stack
    finally:
        stack.close()


# --- a PostgreSQL cluster of the test's own ------------------------------------------------------


class PgCluster:
    """``initdb`` + ``pg_ctl`` into a temporary directory on a free port, run as the ``postgres``
    user (PostgreSQL refuses to run as root): a server this test may stop and start at will."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin = bins[-1].parent
        # Its own directory, outside pytest's (which the postgres user cannot enter when root runs).
        self.root = Path(tempfile.mkdtemp(prefix="herald-reliability-pg-"))
        self.dir = self.root / "data"
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start a private PostgreSQL")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_postgres, *argv], check=True, capture_output=True, timeout=timeout)

    def url(self, database: str = "herald") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, connections cut, WAL replayed at the next start."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop")

    def sql(
        self, query: str, *params: Any, database: str = "herald", autocommit: bool = False
    ) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=autocommit, connect_timeout=5) as connection:
            cursor = connection.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []
