"""manage.py import_players: the CSV import of POST /apps/{app_id}/players/csv_import, from a
file on this machine, with a progress bar.

By default the import runs here, in this process (``--wait``): an operator running a command
expects it to do the work and say how it went, and it then needs no worker or broker. The job
row is the same as the API's, so the dashboard and GET …/csv_import/{id} follow it too.
``--no-wait`` hands the job to the Celery workers, as the API does, and returns its id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
from players.import_services import csv_import_run, csv_import_start, import_path
from players.imports import ChunkResult
from players.models import CsvImport

READ_BYTES = 1024 * 1024
SHOWN_ERRORS = 20
INTERRUPTED = "Interrupted from the command line; the chunks imported before it stay imported"


class Command(BaseCommand):
    help = (
        "Import players from a CSV file (plain or gzip) with the columns of csv_export, as "
        "POST /apps/{app_id}/players/csv_import does: upserted on (app, identifier)."
    )

    def add_arguments(self, parser):
        add_app_argument(parser)
        parser.add_argument("file", help="the CSV file (plain or .gz)")
        parser.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="run the import here and report (default); --no-wait leaves it to the workers",
        )
        add_progress_arguments(parser)

    def handle(self, *args, **options):
        require_postgresql("The CSV import")
        app = app_from_option(options["app"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        wait = options["wait"]
        try:
            with (
                path.open("rb") as source,
                command_bar(
                    self, options, total=path.stat().st_size, desc="Storing", unit="B", unit_scale=True
                ) as bar,
            ):
                # The service keeps a copy under MEDIA_ROOT first (as it does an upload): for a
                # large file that takes a while too.
                def chunks():
                    for chunk in iter(lambda: source.read(READ_BYTES), b""):
                        bar.update(len(chunk))
                        yield chunk

                job = csv_import_start(app=app, chunks=chunks(), file_name=path.name, enqueue=not wait)
        except ApiError as exc:
            raise CommandError(f"{path}: {api_error_message(exc)}") from None
        except OSError as exc:  # reading the file, or storing its copy under MEDIA_ROOT
            raise CommandError(f"{exc.filename or path}: {exc.strerror or exc}") from None
        quiet = options["quiet"] or options["verbosity"] == 0
        if not wait:
            if not quiet:
                self.stdout.write(
                    f"CSV import {job.id} of {job.size_bytes} bytes queued for the workers; follow it with "
                    f"GET /api/v1/apps/{app.id}/players/csv_import/{job.id} or in the dashboard."
                )
            return
        crash = self._run(job, options)
        job.refresh_from_db()
        if not quiet:
            self._summary(job)
        if job.status != CsvImport.Status.COMPLETED:
            reason = job.error or (f"{type(crash).__name__}: {crash}" if crash else job.status)
            raise CommandError(f"The import failed: {reason}")

    def _run(self, job: CsvImport, options: dict) -> Exception | None:
        """Run the import here, drawing the bar; the unexpected exception that stopped it, if any
        (csv_import_run has logged it and marked the job failed)."""
        rows = 0
        crash = None
        with command_bar(
            self, options, total=job.size_bytes, desc="Importing", unit="B", unit_scale=True
        ) as bar:
            bar.set_postfix_str("rows=0", refresh=False)

            def on_progress(bytes_read: int, result: ChunkResult) -> None:
                nonlocal rows
                rows += result.rows
                bar.update(bytes_read - bar.n)
                bar.set_postfix_str(f"rows={rows}", refresh=False)

            try:
                csv_import_run(import_id=str(job.id), on_progress=on_progress)
            except KeyboardInterrupt:
                CsvImport.objects.filter(pk=job.pk, status=CsvImport.Status.RUNNING).update(
                    status=CsvImport.Status.FAILED, error=INTERRUPTED
                )
                import_path(job).unlink(missing_ok=True)
                raise
            except Exception as exc:
                crash = exc
            job.refresh_from_db(fields=["status", "size_bytes", "rows_processed"])
            if job.status == CsvImport.Status.COMPLETED:
                bar.update(job.size_bytes - bar.n)
                bar.set_postfix_str(f"rows={job.rows_processed}", refresh=False)
        return crash

    def _summary(self, job: CsvImport) -> None:
        self.stdout.write(
            f"CSV import {job.id}: {job.status}. {job.rows_processed} rows read: "
            f"{job.rows_created} created, {job.rows_updated} updated, {job.rows_failed} rejected."
        )
        for entry in job.errors[:SHOWN_ERRORS]:
            self.stdout.write(f"  row {entry.get('row')}: {entry.get('error')}")
        if job.rows_failed > SHOWN_ERRORS:
            self.stdout.write(
                f"  … {job.rows_failed - SHOWN_ERRORS} more rejected rows (the first {len(job.errors)} "
                f"are listed by GET /api/v1/apps/{job.app_id}/players/csv_import/{job.id})"
            )
