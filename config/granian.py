"""Granian's command line for Herald, as ``docker/start-web`` writes it in shell: the benchmarks
(bench/loadgen.py) and the reliability stack (tests/reliability/stack.py) start the same server."""

from __future__ import annotations

import sys
from pathlib import Path


def granian_argv(*, host: str, port: int, workers: int, threads: int) -> list[str]:
    return [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--respawn-failed-workers",
        "--no-ws",
        "--backlog",
        "2048",
        "config.wsgi:application",
    ]
