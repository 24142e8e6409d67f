"""Run every simulated gateway and the control API in one process and one asyncio loop.

Each listens on its own port (``httpserver``: HTTP/2 and HTTP/1.1). Sockets are bound here so
that port 0 works: the kernel picks a free port, and the real one is printed. Nothing is printed
before every socket accepts connections, so "gatewaysim ready" means ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from gatewaysim.adm import AdmGateway
from gatewaysim.apns import ApnsGateway
from gatewaysim.control import ControlApp
from gatewaysim.fcm import FcmGateway
from gatewaysim.gateway import Gateway
from gatewaysim.hms import HmsGateway
from gatewaysim.httpserver import BACKLOG, Server, tls_context
from gatewaysim.sms import SmsGateway
from gatewaysim.smtp import SmtpGateway
from gatewaysim.state import DEFAULT_MAX_DELIVERIES, SimState
from gatewaysim.tls import ensure_tls
from gatewaysim.webpush import WebPushGateway
from gatewaysim.wns import WnsGateway

# Simulators served, each with a --<platform>-port option (default ports 9101, 9102, ... in this order).
GATEWAYS: list[type[Gateway]] = [
    FcmGateway,
    ApnsGateway,
    WebPushGateway,
    SmtpGateway,
    SmsGateway,
    WnsGateway,
    HmsGateway,
    AdmGateway,
]
DEFAULT_CONTROL_PORT = 9100
READY_LINE = "gatewaysim ready"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gatewaysim",
        description="Local simulators of the push gateways Herald delivers to, with a control API. "
        f"Prints each listening address, the CA path, then '{READY_LINE}'.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        help="control API port, plain HTTP; 0 picks a free one (default: %(default)s)",
    )
    for gateway in GATEWAYS:
        parser.add_argument(
            f"--{gateway.platform}-port",
            type=int,
            default=gateway.default_port,
            help=f"{gateway.platform} simulator port, "
            f"{getattr(gateway, 'port_help', 'HTTPS (h2 and http/1.1)')}; 0 picks a free one "
            "(default: %(default)s)",
        )
        gateway.add_arguments(parser)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("var/gatewaysim"),
        help="where the CA and server certificate are created and reused (default: %(default)s)",
    )
    parser.add_argument(
        "--record",
        choices=("all", "none"),
        default="all",
        help="'none' keeps exact stats but no per-delivery records, for benchmarks (default: %(default)s)",
    )
    parser.add_argument(
        "--max-deliveries",
        type=int,
        default=DEFAULT_MAX_DELIVERIES,
        help="delivery records kept in memory, most recent first to go (default: %(default)s)",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started the simulator dies (used by the test helper)",
    )
    return parser


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.listen(BACKLOG)
    return sock


def _url(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


async def run(args: argparse.Namespace) -> None:
    state = SimState(record=args.record == "all", max_deliveries=args.max_deliveries)
    gateways = [gateway_class(state) for gateway_class in GATEWAYS]
    tls = ensure_tls(args.state_dir, args.host)
    context = tls_context(str(tls.cert_path), str(tls.key_path))

    listeners: list[tuple[str, str, Server, socket.socket]] = []
    for gateway in gateways:
        sock = _listen(args.host, getattr(args, f"{gateway.platform}_port"))
        # A non-HTTP gateway (SMTP) brings its own server with the same start/close/scheme.
        make_server = getattr(gateway, "make_server", None)
        gateway.configure(args)
        own_context = gateway.server_ssl_context(tls, context) if gateway.tls else None
        server = (
            make_server(context) if make_server else Server(gateway, own_context, gateway.connection_policy())
        )
        url = _url(server.scheme, sock)
        gateway.url = url  # type: ignore[attr-defined]  # for gateways that hand out URLs (WNS channels)
        listeners.append((gateway.platform, url, server, sock))
    sock = _listen(args.host, args.control_port)
    listeners.append(("control", _url("http", sock), Server(ControlApp(state, gateways)), sock))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(_watch_parent(os.getppid(), stop)) if args.exit_with_parent else None

    for _, _, server, sock in listeners:
        await server.start(sock)
    for name, url, _, _ in listeners:
        print(f"{name} {url}")
    print(f"ca {tls.ca_path.resolve()}")
    print(READY_LINE, flush=True)

    await stop.wait()
    await asyncio.gather(*(server.close() for _, _, server, _ in listeners))
    if watcher is not None:
        watcher.cancel()


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(run(args))
    except OSError as error:
        print(f"gatewaysim: {error}", file=sys.stderr)
        return 1
    return 0
