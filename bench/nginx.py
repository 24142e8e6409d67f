"""nginx from Debian's packages as the fan-out's sink for FCM, APNs and Web Push.

The gateway simulators are pure-Python HTTP/2 servers: they check and decode every request, and
that costs 150-430 µs of CPU each, so at a few thousand requests per second the simulator, not
Herald, is what a fan-out measures (DESIGN.md: a pure-Python h2 server holds even a fast client
to about 2,500/s). nginx answers the same requests with a constant, in C, one worker process, as
in DESIGN.md's throughput table, so the sink stops being the bottleneck.

Only the deliveries move: the simulator still issues the OAuth tokens (FCM's service account
``token_uri``), the Web Push subscriptions and everything of the other channels. nginx serves
the simulator's own server certificate, so Herald's ``HERALD_GATEWAY_CA_FILE`` stays as it is.

What nginx answers is what a gateway answers on success: FCM ``200 {"name": …}``, APNs ``200``
with an ``apns-id``, Web Push ``201``. It checks nothing, which is the point: correctness is
proven against the simulators (the test suite, and ``--sink simulator``). Each platform's
server writes one access-log line per request (``$msec $request_uri``, buffered), read after
the run: the count, the first and last request's time and, where the URI names the device
(APNs, Web Push), the duplicates. FCM puts the token in the body, which nginx does not keep.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import stack

# The simulator's platform names whose deliveries nginx takes over, and what each answers.
ANSWERS = {
    "fcm": "default_type application/json; return 200 '{\"name\":\"projects/bench/messages/0\"}';",
    "apns": "add_header apns-id 00000000-0000-4000-8000-000000000000; return 200;",
    "webpush": "return 201;",
}
# Whether the request's URI names one device, so that a repeated URI is a duplicate delivery.
URI_NAMES_DEVICE = {"fcm": False, "apns": True, "webpush": True}
LOG_FLUSH_SECONDS = 0.2

CONFIG = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    log_format sink '$msec $request_uri';
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    # Herald keeps its connections for a whole fan-out; nginx's default would close each after
    # 1,000 requests (GOAWAY) and the run would measure reconnects.
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    http2_max_concurrent_streams 1000;
    client_max_body_size 1m;
{servers}
}}
"""

SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl http2;
        access_log {dir}/{name}.log sink buffer=256k flush={flush_ms}ms;
        location / {{ {answer} }}
{extra}    }}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if Path(path).exists()), None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class NginxSink:
    """The simulator for everything but the deliveries of ``ANSWERS``' platforms, which go to
    nginx. Offers what bench/fanout.py and bench/raw.py ask of a sink."""

    sim: stack.Simulator
    process: subprocess.Popen
    ports: dict[str, int]
    log_dir: Path
    urls: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        served = {name: f"https://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.urls = {**self.sim.urls, **served}

    @property
    def ca_path(self) -> str:
        return self.sim.ca_path

    @property
    def control_url(self) -> str:
        return self.sim.control_url

    def control(self, path: str, body: dict | None = None) -> dict:
        return self.sim.control(path, body)

    def port(self, platform: str) -> int:
        return urlsplit(self.urls[platform]).port or 0

    def route(self, endpoint: str) -> str:
        """A Web Push endpoint the simulator issued, moved to nginx (same path)."""
        parts = urlsplit(endpoint)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.ports['webpush']}"))

    def peer_unsupported(self) -> dict[str, str]:
        """django-push-notifications' APNs path (aioapns) against nginx: its first call of 500
        devices is delivered, every request of the next call times out (the library gives each
        one second), also when nginx answers with a JSON body. Against the simulator it works."""
        return {"ios": "aioapns times out against nginx after its first call"}

    def cpu_seconds(self) -> float:
        """nginx's and the simulator's: both are the sink (the simulator still answers the
        OAuth token requests and the channels nginx does not take)."""
        return stack.cpu_seconds(stack.process_tree(self.process.pid)) + self.sim.cpu_seconds()

    def _times(self, name: str) -> tuple[list[float], int]:
        """Every request's time (epoch seconds) and how many distinct URIs there were, as far as
        nginx has flushed its log (``_flushed``)."""
        times, uris = [], set()
        path = self.log_dir / f"{name}.log"
        with path.open() as log:
            for line in log:
                at, _, uri = line.rstrip("\n").partition(" ")
                times.append(float(at))
                if URI_NAMES_DEVICE[name]:
                    uris.add(uri)
        return times, len(uris)

    def live_stats(self) -> dict[str, dict[str, int]]:
        """The simulator's counters, cheap enough to poll; nginx's logs are read once, after."""
        return self.sim.stats()

    def stats(self) -> dict[str, dict[str, int | None]]:
        found = self.sim.stats()
        _flushed()
        for name in self.ports:
            times, distinct = self._times(name)
            duplicates = len(times) - distinct if URI_NAMES_DEVICE[name] else None
            found[name] = {"accepted": len(times), "duplicates": duplicates}
        return found

    def request_times(self) -> dict[str, list[float]]:
        """Per platform nginx served, each request's time in epoch seconds, sorted."""
        _flushed()
        return {name: sorted(self._times(name)[0]) for name in self.ports}

    def reset(self) -> None:
        """Forget what was served so far (the raw baseline's requests)."""
        self.sim.reset()
        _flushed()
        for name in self.ports:
            # nginx appends (O_APPEND), so its next line lands at the new end of the file.
            (self.log_dir / f"{name}.log").write_text("")


def _flushed() -> None:
    """Wait until what nginx served so far is in its logs: it flushes them this often."""
    time.sleep(LOG_FLUSH_SECONDS * 2)


@contextlib.contextmanager
def nginx_sink(sim: stack.Simulator, work: Path):
    """nginx on free ports for FCM, APNs and Web Push, with the simulator's certificate."""
    binary = nginx_binary()
    if binary is None:
        raise SystemExit(
            "bench: --sink nginx needs nginx (Debian's nginx-light package; bin/ensure-test-tools "
            "installs it); or pass --sink simulator"
        )
    log_dir = work / "nginx"
    (log_dir / "tmp").mkdir(parents=True, exist_ok=True)
    sim_dir = Path(sim.ca_path).parent
    ports = {name: _free_port() for name in ANSWERS}
    servers = "".join(
        SERVER.format(
            port=port,
            dir=log_dir,
            name=name,
            flush_ms=round(LOG_FLUSH_SECONDS * 1000),
            answer=ANSWERS[name],
            extra=_token_proxy(sim) if name == "fcm" else "",
        )
        for name, port in ports.items()
    )
    config = log_dir / "nginx.conf"
    config.write_text(
        CONFIG.format(
            dir=log_dir, cert=sim_dir / "server.pem", key=sim_dir / "server-key.pem", servers=servers
        )
    )
    with (log_dir / "stderr.log").open("w") as errors:
        process = subprocess.Popen(
            [binary, "-p", str(log_dir), "-c", str(config)], stdout=errors, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(process, ports.values(), log_dir)
        yield NginxSink(sim, process, ports, log_dir)
    finally:
        stack.stop(process)


def _token_proxy(sim: stack.Simulator) -> str:
    """bootstrap_demo's service account has ``token_uri`` = HERALD_FCM_BASE_URL/token: nginx
    hands those few OAuth requests on to the simulator, which issues the tokens."""
    return f"        location = /token {{ access_log off; proxy_pass {sim.urls['fcm']}; }}\n"


def _wait_listening(process: subprocess.Popen, ports, log_dir: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        for port in list(pending):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pending.discard(port)
        time.sleep(0.05)
    if pending:
        errors = "".join(
            (log_dir / name).read_text() for name in ("stderr.log", "error.log") if (log_dir / name).exists()
        )
        raise RuntimeError(f"nginx did not start listening on {sorted(pending)}: {errors[-2000:]}")
