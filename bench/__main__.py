from __future__ import annotations

import argparse
import signal
import sys

from bench import audience, bulk, create, fanout, ingest, scaling
from core import progress

BENCHMARKS = {
    "fanout": (fanout, "one notification to N players, POST to completed_at"),
    "ingest": (ingest, "on_session, POST /players and PUT /players/{id} under load, vs a bare Django view"),
    "create": (create, "POST /notifications latency: a 1,000,000-player segment vs 10 player ids"),
    "audience": (audience, "count and stream filter audiences over N players, with EXPLAIN"),
    "bulk": (bulk, "CSV import and csv_export of N players, rows per second"),
    "scaling": (scaling, "fan-out with 1, 2 and 4 worker processes, without and with gateway latency"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        subparser = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(subparser)
        subparser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress bars of the long phases on stderr (default: only when stderr is a terminal)",
        )
    args = parser.parse_args(argv)
    # Every phase's bar follows this one switch; bars go to stderr, the JSON result to stdout.
    progress.set_default(args.progress)
    # SIGTERM unwinds like Ctrl-C: the benchmark's database is dropped, its processes stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return BENCHMARKS[args.command][0].run(args)


if __name__ == "__main__":
    sys.exit(main())
