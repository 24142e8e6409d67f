"""Start and measure the real processes a benchmark needs: a fresh database, the simulators and
Celery processes, each stopped (with every child it started) when the benchmark ends."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIMULATOR_PLATFORMS = ("fcm", "apns", "webpush", "email", "sms", "wns", "hms", "adm")


TEMPLATE_PREFIX = "herald_bench_tpl_"
_TEMPLATE_LOCK = "SELECT pg_advisory_lock(hashtext('herald_bench_template'))"


def _migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def migrated_template(conn: psycopg.Connection, admin_url: str) -> str:
    """A database with every migration applied, made once per set of migration files
    (``herald_bench_tpl_<digest>``): each benchmark clones it in a second instead of migrating for
    tens of seconds. The caller holds the template lock. Older templates are dropped."""
    name = TEMPLATE_PREFIX + _migrations_digest()
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        return name
    pattern = TEMPLATE_PREFIX.replace("_", "\\_") + "%"
    for (old,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]).fetchall():
        conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
    building = f"{name}_part"
    conn.execute(f'CREATE DATABASE "{building}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": _database_url(admin_url, building),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return name


@contextlib.contextmanager
def fresh_database(admin_url: str, name: str):
    """Create database ``name`` (dropping a leftover) as a clone of the migrated template, yield
    its URL, drop it afterwards."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(_TEMPLATE_LOCK)  # one builder; no clone while it is built
        try:
            template = migrated_template(conn, admin_url)
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('herald_bench_template'))")
    try:
        yield _database_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Simulator:
    process: subprocess.Popen
    urls: dict[str, str]  # platform (and "control") -> the address it printed
    ca_path: str

    @property
    def fcm_url(self) -> str:
        return self.urls["fcm"]

    @property
    def control_url(self) -> str:
        return self.urls["control"]

    def port(self, platform: str) -> int:
        return urlsplit(self.urls[platform]).port or 0

    def control(self, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.control_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"{}")

    def stats(self) -> dict[str, dict[str, int]]:
        return self.control("/_sim/stats")

    live_stats = stats

    def peer_unsupported(self) -> dict[str, str]:
        """Platforms django-push-notifications cannot send to this sink, and why: none."""
        return {}

    def request_times(self) -> dict[str, list[float]]:
        """Only bench/nginx.py's sink logs each request; the simulator's are polled (live_stats)."""
        return {}

    def route(self, endpoint: str) -> str:
        """Web Push endpoints stay where the simulator issued them (bench/nginx.py moves them)."""
        return endpoint

    def reset(self) -> None:
        """Clear counters and duplicate memory, keeping subscriptions, channels and tokens."""
        self.control("/_sim/reset", {"keep_tokens": True})

    def cpu_seconds(self) -> float:
        return cpu_seconds([self.process.pid])


@contextlib.contextmanager
def simulator(state_dir: Path, record: str = "none"):
    """Every gateway simulator on free ports, in one process (``python -m gatewaysim``)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gatewaysim",
            "--control-port",
            "0",
            *(arg for name in SIMULATOR_PLATFORMS for arg in (f"--{name}-port", "0")),
            "--state-dir",
            str(state_dir),
            "--record",
            record,
            "--exit-with-parent",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    urls: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 2:
                urls[parts[0]] = parts[1]
            if "gatewaysim ready" in line:
                break
        else:
            raise RuntimeError(f"gatewaysim exited before it was ready: {urls}")
        # Keep reading its output, so that a full pipe can never block the simulator.
        threading.Thread(target=_drain, args=(process, state_dir / "gatewaysim.log"), daemon=True).start()
        yield Simulator(process, urls, urls.pop("ca"))
    finally:
        stop(process)


def _drain(process: subprocess.Popen, log: Path) -> None:
    with log.open("a") as out:
        for line in process.stdout:
            out.write(line)


@contextlib.contextmanager
def celery(command: list[str], log: Path, env: dict[str, str]):
    """``celery -A config <command>``, its output in ``log``; stopped with all its children."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; then SIGKILL whatever of its process tree is left
    (prefork children), each by its own pid."""
    tree = process_tree(process.pid)[1:]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 5
    for pid in tree:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    found = []
    for path in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = path.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(path.parent.name))
    return found


def process_tree(pid: int) -> list[int]:
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children(parent)]
        tree += frontier
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """CPU-seconds used by these processes and by their children that have exited."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime + stime, plus cutime + cstime: children that exited and were reaped.
            total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def machine_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of all cores that was busy between two ``machine_cpu()`` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        if match:
            return int(match[1]) / 1024
    return 0.0


def wait_for_log(path: Path, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{marker!r} did not appear in {path}")
