"""HTTP load for the web benchmarks: Herald behind Granian, as in production (docker/start-web), or
behind gunicorn, and two load generators with the same scenarios:

- ``wrk`` (Debian's package), driven by a generated Lua script, when it is installed;
- a small asyncio HTTP/1.1 client (``python``), for machines without wrk and for the smoke tests.

Latency is measured as wrk does: from writing the request to reading the whole response (a new
connection's setup is not in it; gunicorn's sync workers close the connection after every
response, so there each request also pays a connect, which shows in the rate; Granian keeps
connections alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import stack
from bench.common import percentiles
from config.granian import granian_argv
from core.progress import timed_bar

SCENARIOS = ("baseline", "on_session", "create", "tags")
ON_SESSION_BODY = '"language":"en","timezone":3600,"game_version":"1.2.0","device_os":"14"'


@dataclass
class Server:
    process: subprocess.Popen
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cpu_seconds(self) -> float:
        return stack.cpu_seconds(stack.process_tree(self.process.pid))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Production serves the API with Granian (docker/start-web); gunicorn's sync workers, which served
# it before, stay measurable for the comparison in BENCHMARKS.md.
WEB_SERVERS = ("granian", "gunicorn")
DEFAULT_WORKERS = {"granian": 2, "gunicorn": 4}
DEFAULT_THREADS = {"granian": 4, "gunicorn": 1}


def web_server_command(
    server: str, port: int, *, workers: int, threads: int, worker_class: str = "sync"
) -> list[str]:
    if server == "granian":
        return granian_argv(host="127.0.0.1", port=port, workers=workers, threads=threads)
    if server != "gunicorn":
        raise ValueError(f"unknown web server {server!r}: one of {', '.join(WEB_SERVERS)}")
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--timeout",
        "60",
        "--backlog",
        "2048",
    ]


def add_web_server_arguments(parser) -> None:
    parser.add_argument("--server", choices=WEB_SERVERS, default="granian", help="production: granian")
    parser.add_argument("--web-workers", type=int, help="processes (production: Granian's 2; gunicorn's 4)")
    parser.add_argument("--web-threads", type=int, help="threads per process (production: Granian's 4)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn only: its worker class")


def web_server_from_args(env: dict, work: Path, args):
    """``web_server`` shaped by ``add_web_server_arguments``' options."""
    return web_server(
        env,
        work,
        server=args.server,
        workers=args.web_workers,
        threads=args.web_threads,
        worker_class=args.worker_class,
    )


@contextlib.contextmanager
def web_server(
    env: dict,
    work: Path,
    *,
    server: str = "granian",
    workers: int | None = None,
    threads: int | None = None,
    worker_class: str = "sync",
):
    """Herald's web tier with the bench-only URLconf (bench/settings.py), ready on yield: Granian as
    production runs it, or gunicorn. Workers and threads default to each one's production shape."""
    port = free_port()
    log = work / f"{server}.log"
    command = web_server_command(
        server,
        port,
        workers=workers or DEFAULT_WORKERS[server],
        threads=threads or DEFAULT_THREADS[server],
        worker_class=worker_class,
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=stack.ROOT,
            env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "bench.settings"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, "127.0.0.1", port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{running.url}/bench/constant", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield running
    finally:
        stack.stop(process)


@dataclass
class LoadResult:
    scenario: str
    generator: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    latency: dict

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "requests_per_second": round(self.per_second),
            **self.latency,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "seconds": round(self.seconds, 2),
            "generator": self.generator,
        }


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


# --- wrk ------------------------------------------------------------------------------------

LUA = r"""
local scenario, app_id, ids_path, run_tag = "%(scenario)s", "%(app_id)s", "%(ids_path)s", "%(run_tag)s"
local headers = {["Content-Type"] = "application/json"}
local ids, counter, thread_id = {}, 0, 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  thread_id = tid or 0
  math.randomseed(os.time() + thread_id * 7919)
  if scenario == "on_session" or scenario == "tags" then
    for line in io.lines(ids_path) do ids[#ids + 1] = line end
  end
end

function request()
  counter = counter + 1
  if scenario == "on_session" then
    local id = ids[math.random(#ids)]
    return wrk.format("POST", "/api/v1/players/" .. id .. "/on_session", headers,
      '{"app_id":"' .. app_id .. '",%(on_session_body)s}')
  elseif scenario == "create" then
    return wrk.format("POST", "/api/v1/players", headers,
      '{"app_id":"' .. app_id .. '","device_type":1,"identifier":"ingest-' .. run_tag .. '-' .. thread_id
      .. '-' .. counter .. '","language":"en","timezone":0,"tags":{"level":"1"}}')
  elseif scenario == "tags" then
    local id = ids[math.random(#ids)]
    return wrk.format("PUT", "/api/v1/players/" .. id, headers,
      '{"app_id":"' .. app_id .. '","tags":{"level":"' .. (counter %% 50) .. '"}}')
  else
    return wrk.format("POST", "/bench/constant", headers, '{"app_id":"' .. app_id .. '"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "status": %%d, "connect": %%d, '
    .. '"read": %%d, "write": %%d, "timeout": %%d, "p50": %%d, "p99": %%d, "p999": %%d, "max": %%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def run_wrk(
    server: Server,
    scenario: str,
    *,
    app_id: str,
    ids_path: Path,
    work: Path,
    duration: float,
    connections: int,
    threads: int,
) -> LoadResult:
    run_tag = f"{os.getpid()}{random.randrange(10**9)}"
    script = work / f"wrk-{scenario}-{run_tag}.lua"
    script.write_text(
        LUA
        % {
            "scenario": scenario,
            "app_id": app_id,
            "ids_path": str(ids_path),
            "run_tag": run_tag,
            "on_session_body": ON_SESSION_BODY,
        }
    )
    with timed_bar(max(1, round(duration)), desc=f"{scenario} (wrk)"):
        done = subprocess.run(
            [
                shutil.which("wrk") or "wrk",
                f"-t{threads}",
                f"-c{max(connections, threads)}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                server.url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return LoadResult(
        scenario=scenario,
        generator="wrk",
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        latency={
            "p50_ms": raw["p50"] / 1000,
            "p99_ms": raw["p99"] / 1000,
            "p99_9_ms": raw["p999"] / 1000,
            "max_ms": raw["max"] / 1000,
        },
    )


# --- the asyncio client ---------------------------------------------------------------------


class _Requests:
    """The same requests as the Lua script, as bytes."""

    def __init__(self, scenario: str, app_id: str, ids: list[str], host: str):
        self.scenario, self.app_id, self.ids, self.host = scenario, app_id, ids, host
        self.counter = 0
        self.tag = f"{os.getpid()}{random.randrange(10**9)}"

    def next(self) -> bytes:
        self.counter += 1
        if self.scenario == "on_session":
            method, path = "POST", f"/api/v1/players/{random.choice(self.ids)}/on_session"
            body = f'{{"app_id":"{self.app_id}",{ON_SESSION_BODY}}}'
        elif self.scenario == "create":
            method, path = "POST", "/api/v1/players"
            body = (
                f'{{"app_id":"{self.app_id}","device_type":1,"identifier":"ingest-{self.tag}-{self.counter}",'
                '"language":"en","timezone":0,"tags":{"level":"1"}}'
            )
        elif self.scenario == "tags":
            method, path = "PUT", f"/api/v1/players/{random.choice(self.ids)}"
            body = f'{{"app_id":"{self.app_id}","tags":{{"level":"{self.counter % 50}"}}}}'
        else:
            method, path = "POST", "/bench/constant"
            body = f'{{"app_id":"{self.app_id}"}}'
        data = body.encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 response, its body read."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return status, headers.get("connection", "").lower() != "close"


async def _connection(server: Server, requests: _Requests, stop_at: float, stats: dict) -> None:
    writer = reader = None
    while time.perf_counter() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(server.host, server.port)
            data = requests.next()
            started = time.perf_counter()
            writer.write(data)
            status, keep_alive = await _response(reader)
            stats["latencies"].append((time.perf_counter() - started) * 1000)
            stats["requests"] += 1
            if not 200 <= status < 300:
                stats["non_2xx"] += 1
            if not keep_alive:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            stats["socket_errors"] += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


def run_python(
    server: Server, scenario: str, *, app_id: str, ids: list[str], duration: float, connections: int
) -> LoadResult:
    stats = {"latencies": [], "requests": 0, "non_2xx": 0, "socket_errors": 0}

    async def main() -> float:
        requests = _Requests(scenario, app_id, ids, f"{server.host}:{server.port}")
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(_connection(server, requests, stop_at, stats) for _ in range(connections)))
        return time.perf_counter() - started

    # The bar's thread wakes twice a second, and only when the bar is drawn (a terminal or --progress).
    with timed_bar(duration, desc=f"{scenario} (python)"):
        seconds = asyncio.run(main())
    return LoadResult(
        scenario=scenario,
        generator="python",
        requests=stats["requests"],
        seconds=seconds,
        non_2xx=stats["non_2xx"],
        socket_errors=stats["socket_errors"],
        latency={k: v for k, v in percentiles(stats["latencies"]).items()},
    )
