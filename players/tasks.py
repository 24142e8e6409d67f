"""Celery tasks: ids only, explicit names, time limits; each loads rows and calls a service."""

from __future__ import annotations

from celery import shared_task

from players.export_services import csv_export_run, csv_exports_expire
from players.import_services import csv_import_run


@shared_task(
    name="players.csv_export",
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
    acks_late=True,
    reject_on_worker_lost=True,
)
def csv_export_task(export_id: str, **kwargs) -> None:
    # acks_late is safe: csv_export_run claims the row with a conditional UPDATE.
    csv_export_run(export_id=export_id)


@shared_task(name="players.expire_csv_exports", ignore_result=True, soft_time_limit=300, time_limit=360)
def expire_csv_exports_task(**kwargs) -> None:
    csv_exports_expire()


@shared_task(
    name="players.csv_import",
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
    acks_late=True,
    reject_on_worker_lost=True,
)
def csv_import_task(import_id: str, **kwargs) -> None:
    # acks_late is safe: csv_import_run claims the row with a conditional UPDATE, and running an
    # import again (after its lease ran out) upserts the same rows.
    csv_import_run(import_id=import_id)
