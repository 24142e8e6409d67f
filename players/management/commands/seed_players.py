"""manage.py seed_players: demo and test players, fast, with a progress bar (players/seeding.py,
the same code that seeds the benchmarks: COPY on PostgreSQL, batched INSERTs on SQLite).

Identifiers are ones the gateway simulators accept, so a notification to the seeded players is
delivered by ``make run``'s simulators. Web Push and WNS identifiers are issued by the simulator
itself, so ``--mix`` with web or wns needs it running (HERALD_GATEWAYSIM_CONTROL_URL).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from players.cli import add_app_argument, add_progress_arguments, app_from_option, command_bar
from players.models import Player
from players.seeding import PLATFORMS, ControlUrl, identities, parse_mix, seed_players, split_evenly

MAX_COUNT = 10_000_000


def parse_tags(values: list[str]) -> dict[str, str]:
    """``key=value`` pairs (space or comma separated), or one JSON object; values are strings,
    as the API stores tags."""
    tags: dict[str, str] = {}
    for value in values:
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise CommandError(f"--tags: not a JSON object ({exc})") from None
            if not isinstance(parsed, dict):
                raise CommandError("--tags: not a JSON object")
            tags.update({str(k): str(v) for k, v in parsed.items()})
            continue
        for pair in filter(None, (p.strip() for p in value.split(","))):
            key, sep, tag_value = pair.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--tags: {pair!r} is not key=value")
            tags[key.strip()] = tag_value.strip()
    return tags


class Command(BaseCommand):
    help = (
        "Seed N subscribed demo players into an app, spread over platforms (--mix), with "
        "identifiers the gateway simulators accept."
    )

    def add_arguments(self, parser):
        add_app_argument(parser)
        parser.add_argument("--count", type=int, required=True, help="how many players")
        parser.add_argument(
            "--mix",
            default="android",
            help=f"comma list of platforms, players spread evenly: {', '.join(PLATFORMS)} (default android)",
        )
        parser.add_argument(
            "--tags",
            nargs="+",
            action="extend",
            default=[],
            metavar="KEY=VALUE",
            help='tags on every player, besides level "0".."49": key=value pairs or a JSON object',
        )
        parser.add_argument(
            "--start",
            type=int,
            help="number the identifiers from here (default: the app's player count, so runs add up)",
        )
        add_progress_arguments(parser)

    def handle(self, *args, **options):
        app = app_from_option(options["app"])
        count = options["count"]
        if not 1 <= count <= MAX_COUNT:
            raise CommandError(f"--count: between 1 and {MAX_COUNT}")
        try:
            mix = parse_mix(options["mix"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        tags = parse_tags(options["tags"])
        start = options["start"]
        if start is None:
            start = Player.objects.filter(app=app).count()
        if start < 0:
            raise CommandError("--start: 0 or more")

        sim = None
        issued_by_sim = [p.name for p in mix if p.issued_by_simulator]
        if issued_by_sim:
            sim = self._simulator(issued_by_sim)
        vapid_public_key = None
        if "web" in issued_by_sim:
            from apps.vapid import ensure_vapid_keys

            vapid_public_key = ensure_vapid_keys(app).vapid_public_key

        counts = split_evenly(count, mix)
        try:
            issued = {
                p.name: identities(p, counts[p.name], sim, vapid_public_key, start=start, prefix="seed")
                for p in mix
            }
        except OSError as exc:
            raise CommandError(f"The gateway simulator did not answer: {exc}") from None

        with command_bar(self, options, total=count, desc="Seeding", unit=" players") as bar:
            try:
                written = seed_players(app.id, mix, issued, tags=tags, progress=bar.update)
            except IntegrityError:
                raise CommandError(
                    "Some of these identifiers are already players of the app; nothing was written. "
                    f"Number them from elsewhere with --start (this run used {start}..{start + count - 1})."
                ) from None
        if not (options["quiet"] or options["verbosity"] == 0):
            per_platform = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
            self.stdout.write(f"Seeded {written} players into app {app.id} ({per_platform}).")

    def _simulator(self, names: list[str]) -> ControlUrl:
        url = settings.HERALD_GATEWAYSIM_CONTROL_URL
        if not url:
            raise CommandError(
                f"{', '.join(names)} players get their endpoints from the gateway simulator, and "
                "HERALD_GATEWAYSIM_CONTROL_URL is not set (make run sets it); leave them out of --mix."
            )
        try:
            return ControlUrl(url)
        except ValueError as exc:
            raise CommandError(f"HERALD_GATEWAYSIM_CONTROL_URL: {exc}") from None
