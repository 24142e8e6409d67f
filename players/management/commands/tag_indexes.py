"""manage.py tag_indexes: the expression indexes behind HERALD_INDEXED_NUMERIC_TAGS
(players/tag_indexes.py).

    manage.py tag_indexes            # what is there, what is missing, what is no longer wanted
    manage.py tag_indexes --apply    # build, rebuild and drop CONCURRENTLY until it matches
    manage.py tag_indexes --check    # exit 1 unless it matches (for a deploy's health check)
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from players import tag_indexes


class Command(BaseCommand):
    help = "Show, build or drop the numeric tag indexes that HERALD_INDEXED_NUMERIC_TAGS names."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--apply", action="store_true", help="make the indexes match the setting")
        mode.add_argument("--check", action="store_true", help="exit 1 unless they match")

    def handle(self, *args, apply: bool, check: bool, **options):
        if not tag_indexes.supported():
            if tag_indexes.indexed_keys():
                self.stderr.write("HERALD_INDEXED_NUMERIC_TAGS needs PostgreSQL; this database ignores it")
            return
        if apply:
            started = time.perf_counter()
            changes = tag_indexes.sync()
            if not options["verbosity"]:
                return
            for change in changes:
                self.stdout.write(f"{change.action} {change.name} (tag {change.key!r})")
            self.stdout.write(
                f"{len(changes)} change(s) in {time.perf_counter() - started:.1f} s; "
                f"{len(tag_indexes.indexed_keys())} tag key(s) indexed"
            )
            return
        rows = self._status()
        for state, key, name in rows:
            self.stdout.write(f"{state:<8} {name}  tag {key!r}")
        if not rows:
            self.stdout.write("no tag indexes wanted or present")
        pending = [row for row in rows if row[0] != "ok"]
        if check and pending:
            raise CommandError(f"{len(pending)} tag index(es) differ from the setting; run --apply")

    @staticmethod
    def _status() -> list[tuple[str, str, str]]:
        wanted, present = tag_indexes.wanted(), tag_indexes.existing()
        rows = []
        for name, key in wanted.items():
            index = present.get(name)
            state = "missing" if index is None else "ok" if index.valid else "invalid"
            rows.append((state, key, name))
        rows += [("unwanted", index.key, name) for name, index in present.items() if name not in wanted]
        return rows
