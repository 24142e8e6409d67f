"""manage.py export_players: the CSV export of POST /players/csv_export, run in this process with a
progress bar and written to a file here.

The export is the API's own (the same CsvExport row, written by PostgreSQL's COPY into gzip under
MEDIA_ROOT, downloadable at its URL until it expires); this command then copies that file to
``-o``: as it is for a name ending in ``.gz``, uncompressed otherwise, ``-`` for stdout.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.api.errors import ApiError
from players.cli import (
    add_app_argument,
    add_progress_arguments,
    api_error_message,
    app_from_option,
    command_bar,
    require_postgresql,
)
from players.export_services import csv_export_run, csv_export_start
from players.exports import EXTRA_COLUMNS, export_path
from players.models import CsvExport


class Command(BaseCommand):
    help = "Export an app's players to CSV, as POST /players/csv_export does (the same columns and file)."

    def add_arguments(self, parser):
        add_app_argument(parser)
        parser.add_argument(
            "-o",
            "--output",
            help="where to write it: NAME.csv.gz as gzip, NAME.csv plain, - for stdout "
            "(default: the export's own file name, users_<token>_<date>.csv.gz, here)",
        )
        parser.add_argument(
            "--extra-fields",
            nargs="+",
            action="extend",
            default=[],
            metavar="FIELD",
            help=f"extra columns, space or comma separated: {', '.join(EXTRA_COLUMNS)}",
        )
        parser.add_argument("--segment", help="only the players of this segment (built-in or custom)")
        parser.add_argument(
            "--last-active-since", metavar="UNIX_SECONDS", help="only players active since then"
        )
        add_progress_arguments(parser)

    def handle(self, *args, **options):
        require_postgresql("The CSV export")
        app = app_from_option(options["app"])
        output = options["output"]
        if output and output != "-":
            parent = Path(output).resolve().parent
            if not parent.is_dir():
                raise CommandError(f"-o {output}: the directory {parent} does not exist")
        extra_fields = [f.strip() for value in options["extra_fields"] for f in value.split(",") if f.strip()]
        try:
            export = csv_export_start(
                app=app,
                url_base=settings.HERALD_PUBLIC_URL,
                extra_fields=extra_fields,
                last_active_since=options["last_active_since"],
                segment_name=options["segment"],
                enqueue=False,
            )
        except ApiError as exc:
            raise CommandError(api_error_message(exc)) from None

        with command_bar(self, options, total=None, desc="Exporting", unit=" rows") as bar:

            def progress(rows: int, total: int) -> None:
                bar.total = total
                bar.update(rows - bar.n)

            try:
                csv_export_run(export_id=str(export.id), progress=progress)
            except Exception as exc:
                # csv_export_run logged it and marked the export failed.
                raise CommandError(f"The export failed: {type(exc).__name__}: {exc}") from None
            export.refresh_from_db()
            if export.status == CsvExport.Status.READY:
                # Line ends counted on the way are an estimate; COPY's count is the exact one.
                bar.total = export.row_count
                bar.update(export.row_count - bar.n)
        if export.status != CsvExport.Status.READY:
            raise CommandError(f"The export did not finish: {export.error or export.status}")

        written = self._write(export_path(export), output or export.file_name)
        if not (options["quiet"] or options["verbosity"] == 0) and output != "-":
            url = f" (also at {export.url} until it expires)" if settings.HERALD_PUBLIC_URL else ""
            self.stdout.write(f"Exported {export.row_count} players to {written}{url}.")

    def _write(self, source: Path, output: str) -> str:
        if output == "-":
            with gzip.open(source, "rb") as data:
                shutil.copyfileobj(data, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return "stdout"
        target = Path(output)
        partial = target.with_name(target.name + ".part")
        try:
            if output.endswith(".gz"):
                shutil.copyfile(source, partial)
            else:
                with gzip.open(source, "rb") as data, partial.open("wb") as out:
                    shutil.copyfileobj(data, out)
            os.replace(partial, target)  # a half-written file never has the final name
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"-o {output}: {exc.strerror or exc}") from None
        return str(target)
