"""CSV import lifecycle: start (store the upload, check its header, one import at a time per
app), run (claimed once by a conditional UPDATE, progress committed per chunk)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.models import App
from core.api.errors import ApiError
from players.exports import require_copy
from players.imports import MAX_ERRORS, ChunkResult, ImportFileError, header_of, import_file
from players.models import CsvImport

logger = logging.getLogger(__name__)

CONCURRENT_IMPORT = "Another CSV import of this app's players is running; try again when it has finished."
EMPTY_FILE = "The CSV file is empty"


def import_path(job: CsvImport) -> Path:
    return Path(settings.MEDIA_ROOT) / job.relative_path


def _active_imports(app: App):
    lease_start = timezone.now() - timedelta(seconds=settings.HERALD_CSV_IMPORT_LEASE_SECONDS)
    return CsvImport.objects.filter(app=app).filter(
        Q(status=CsvImport.Status.PENDING, created_at__gte=lease_start)
        | Q(status=CsvImport.Status.RUNNING, started_at__gte=lease_start)
    )


def csv_import_start(
    *,
    app: App,
    chunks: Iterable[bytes],
    file_name: str = "",
    created_by=None,
    enqueue: bool = True,
) -> CsvImport:
    """Store the uploaded file, check its header, create the job and enqueue it after commit.

    400 with the header's problem, 413 above HERALD_CSV_IMPORT_MAX_BYTES, 400 while another
    import of the app is pending or running. Nothing is kept when it refuses.

    ``enqueue=False`` leaves the job to the caller, who runs it with ``csv_import_run`` in its own
    process (``manage.py import_players``): no worker or broker is needed, and no worker can
    claim it first.
    """
    from players.tasks import csv_import_task

    require_copy("The CSV import")
    if _active_imports(app).exists():  # before reading a large upload
        raise ApiError.bad_request(CONCURRENT_IMPORT)
    job = CsvImport(app=app, file_name=(file_name or "")[:255], created_by=created_by)
    job.relative_path = f"csv_imports/{app.pk}/{job.pk}.upload"
    path = import_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = settings.HERALD_CSV_IMPORT_MAX_BYTES
    try:
        with path.open("wb") as out:
            for chunk in chunks:
                job.size_bytes += len(chunk)
                if job.size_bytes > limit:
                    raise ApiError(413, {"errors": [f"The CSV file is larger than {limit} bytes"]})
                out.write(chunk)
        if job.size_bytes == 0:
            raise ApiError.bad_request(EMPTY_FILE)
        try:
            job.columns = header_of(path)
        except ImportFileError as exc:
            raise ApiError.bad_request(str(exc)) from exc
        with transaction.atomic():
            # Serialise concurrent starts for this app on its row, then check again.
            App.objects.select_for_update().filter(pk=app.pk).first()
            if _active_imports(app).exists():
                raise ApiError.bad_request(CONCURRENT_IMPORT)
            job.save(force_insert=True)
            if enqueue:
                csv_import_task.delay_on_commit(str(job.id))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job


def csv_import_run(*, import_id: str, on_progress: Callable[[int, ChunkResult], None] | None = None) -> None:
    """Run an import once. A redelivered task finds the row already claimed and does nothing,
    unless the claim's lease ran out (the worker died): then it runs again from the start, which
    writes the same result (an upsert of the same rows).

    ``on_progress(bytes_read, chunk_result)`` is called after each chunk's progress is committed
    (``manage.py import_players`` draws its bar from it); the job row has the same numbers."""
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.HERALD_CSV_IMPORT_LEASE_SECONDS)
    claimed = (
        CsvImport.objects.filter(pk=import_id)
        .filter(
            Q(status=CsvImport.Status.PENDING)
            | Q(status=CsvImport.Status.RUNNING, started_at__lt=lease_start)
        )
        .update(
            status=CsvImport.Status.RUNNING,
            started_at=now,
            bytes_read=0,
            rows_processed=0,
            rows_created=0,
            rows_updated=0,
            rows_failed=0,
            errors=[],
            error="",
        )
    )
    if claimed != 1:
        return
    job = CsvImport.objects.get(pk=import_id)
    # Progress and the end are written to our own claim only: a run whose lease ran out and was
    # claimed again stops at its next chunk.
    ours = CsvImport.objects.filter(pk=import_id, status=CsvImport.Status.RUNNING, started_at=now)
    errors: list[dict] = []

    def on_chunk(result: ChunkResult, bytes_read: int) -> bool:
        errors.extend(result.errors)
        recorded = bool(
            ours.update(
                bytes_read=bytes_read,
                rows_processed=F("rows_processed") + result.rows,
                rows_created=F("rows_created") + result.created,
                rows_updated=F("rows_updated") + result.updated,
                rows_failed=F("rows_failed") + result.failed,
                errors=errors[:MAX_ERRORS],
            )
        )
        if recorded and on_progress is not None:
            on_progress(bytes_read, result)
        return recorded

    path = import_path(job)
    try:
        if not path.exists():
            raise ImportFileError("The uploaded file is no longer there; upload it again")
        import_file(app_id=str(job.app_id), path=path, on_chunk=on_chunk)
    except ImportFileError as exc:
        ours.update(status=CsvImport.Status.FAILED, error=str(exc)[:1000], finished_at=timezone.now())
        path.unlink(missing_ok=True)
        return
    except Exception as exc:
        logger.exception("CSV import %s failed", import_id)
        message = f"The import stopped on an unexpected error ({type(exc).__name__}); see the worker's log"
        ours.update(status=CsvImport.Status.FAILED, error=message, finished_at=timezone.now())
        path.unlink(missing_ok=True)
        raise
    if ours.update(status=CsvImport.Status.COMPLETED, bytes_read=F("size_bytes"), finished_at=timezone.now()):
        path.unlink(missing_ok=True)
