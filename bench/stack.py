"""Start and measure the real processes a benchmark needs: a fresh database, the simulators and
Celery workers, each stopped when the benchmark ends."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def fresh_database(admin_url: str, name: str):
    """Create database ``name`` (dropping a leftover), yield its URL, drop it afterwards."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Simulator:
    process: subprocess.Popen
    fcm_url: str
    control_url: str
    ca_path: str


@contextlib.contextmanager
def simulator(state_dir: Path, record: str = "none"):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gatewaysim",
            "--control-port",
            "0",
            "--fcm-port",
            "0",
            *(arg for name in ("apns", "webpush", "email", "sms", "wns") for arg in (f"--{name}-port", "0")),
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
    addresses: dict[str, str] = {}
    try:
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 2:
                addresses[parts[0]] = parts[1]
            if "gatewaysim ready" in line:
                break
        yield Simulator(process, addresses["fcm"], addresses["control"], addresses["ca"])
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


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
