from __future__ import annotations

import argparse
import sys

from bench import fanout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fanout.add_arguments(
        commands.add_parser("fanout", help="one notification to N players, POST to completed_at")
    )
    args = parser.parse_args(argv)
    return {"fanout": fanout.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
