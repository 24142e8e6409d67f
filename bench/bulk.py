"""Bulk: ``csv_export`` of N players, then the CSV import of that file into an empty app (and
once more, where every row is already there), in rows per second, through the API and a real
Celery worker; compared in the same run with PostgreSQL doing the same reads and writes alone.

    python -m bench bulk --players 1000000

- Seeds N FCM players in SQL (bench/common.py ``seed_players``).
- Export: ``POST /api/v1/players/csv_export`` with every extra column, timed from the POST to the
  export's ``ready`` status (polled every 50 ms), one worker process.
- Import: ``POST /api/v1/apps/{id}/players/csv_import`` with that gzip file as the body, timed from
  the POST (the upload included) to ``completed``; ``upload_ms`` is the POST alone. Then the same
  file again into the same app: every row exists and nothing changes ("re-import").
- Baselines, same run, same database: ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` of the same
  columns gzipped at the same level (``raw_export``), and one ``INSERT … SELECT`` of the same N
  rows into a third app with every index in place (``raw_insert``): what PostgreSQL does with no
  parsing, validation, upsert or progress. ``ratio_*`` = Herald's rows/s over the baseline's.
- Checks that the imported app holds the same players as the source (identifier, device type,
  tags, sessions, last_active, location), so a fast wrong import cannot pass.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time

from bench.common import (
    add_common_arguments,
    celery_worker,
    demo_app,
    new_app,
    ratio,
    run_benchmark,
    seed_players,
    wait_until,
)
from core.progress import progress_bar

EXPORT_COLUMNS = (
    "id, identifier, session_count, language, timezone, game_version, device_os, device_type, device_model, "
    "ad_id, tags, last_active, playtime, amount_spent, created_at, invalid_identifier, badge_count, "
    "CASE WHEN lat IS NOT NULL AND long IS NOT NULL THEN lat || ',' || long END, country, rooted, "
    "notification_types, ip, external_user_id, web_auth, web_p256"
)
COPIED_COLUMNS = (
    "device_type, identifier, external_user_id, language, timezone, country, game_version, device_model, "
    "device_os, ad_id, rooted, ip, tags, session_count, playtime, amount_spent, badge_count, "
    "notification_types, invalid_identifier, unsubscribed_reason, lat, long, location_meta, web_auth, "
    "web_p256, created_at, last_active"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, players=100_000)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each job")


def run(args: argparse.Namespace) -> int:
    return run_benchmark(args, "bulk", _bulk)


def _bulk(args, work, env) -> dict:
    from django.test import Client

    from players.exports import EXTRA_COLUMNS

    source, source_key = demo_app()
    seed_seconds = seed_players(source.id, args.players)
    client = Client()
    with celery_worker(env, work, concurrency=1) as worker:
        export = _export(client, source, source_key, list(EXTRA_COLUMNS), args.timeout, worker)
        target, target_key = new_app("bench-import")
        first = _import(client, target, target_key, export["path"], args.timeout, worker)
        again = _import(client, target, target_key, export["path"], args.timeout, worker)
    raw_export = _raw_export(source.id, work / "raw.csv.gz")
    raw_insert = _raw_insert(source.id, new_app("bench-raw-insert")[0].id)
    mismatches = _compare(source.id, target.id)
    n = args.players
    ok = (
        export["rows"] == n
        and first["rows_created"] == n
        and first["rows_failed"] == 0
        and again["rows_processed"] == n
        and again["rows_created"] == 0
        and again["rows_failed"] == 0
        and mismatches == 0
    )
    result = {
        "ok": ok,
        "seed_seconds": round(seed_seconds, 1),
        "export": _rates(export, n),
        "import": _rates(first, n),
        "reimport": _rates(again, n),
        "raw_export": _rates(raw_export, n),
        "raw_insert": _rates(raw_insert, n),
        "mismatched_players": mismatches,
        "export_file_bytes": export["bytes"],
        "ratio_export_to_raw_copy": ratio(raw_export["seconds"], export["seconds"]),
        "ratio_import_to_raw_insert": ratio(raw_insert["seconds"], first["seconds"]),
        "ratio_reimport_to_import": ratio(first["seconds"], again["seconds"]),
    }
    print(
        f"export {n} players: {export['seconds']:.1f} s ({result['export']['rows_per_second']}/s; "
        f"raw COPY {raw_export['seconds']:.1f} s); import {first['seconds']:.1f} s "
        f"({result['import']['rows_per_second']}/s; raw INSERT {raw_insert['seconds']:.1f} s); "
        f"re-import {again['seconds']:.1f} s",
        flush=True,
    )
    return result


def _rates(measure: dict, rows: int) -> dict:
    seconds = measure["seconds"]
    return {
        **{k: v for k, v in measure.items() if k != "path"},
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds) if seconds else None,
    }


def _export(client, app, key: str, extra_fields: list[str], timeout: float, worker) -> dict:
    from players.exports import export_path
    from players.models import CsvExport

    started = time.perf_counter()
    response = client.post(
        f"/api/v1/players/csv_export?app_id={app.id}",
        data=json.dumps({"extra_fields": extra_fields}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Key {key}",
    )
    assert response.status_code == 200, response.content
    export = CsvExport.objects.filter(app=app).latest("created_at")

    def ready() -> bool:
        export.refresh_from_db()
        if export.status == CsvExport.Status.FAILED or worker.poll() is not None:
            raise RuntimeError(f"export failed: {export.error!r} (worker alive: {worker.poll() is None})")
        return export.status == CsvExport.Status.READY

    # The worker reports no rows until the end: the bar shows the wait, then the rows at once.
    with progress_bar(total=None, desc="Export (worker)", unit=" rows") as bar:
        wait_until(ready, timeout=timeout, what="the export")
        bar.update(export.row_count)
    seconds = time.perf_counter() - started
    path = export_path(export)
    return {
        "seconds": seconds,
        "worker_seconds": round((export.finished_at - export.started_at).total_seconds(), 2),
        "rows": export.row_count,
        "bytes": path.stat().st_size,
        "path": path,
    }


def _import(client, app, key: str, path, timeout: float, worker) -> dict:
    from players.models import CsvImport

    body = path.read_bytes()
    started = time.perf_counter()
    response = client.post(
        f"/api/v1/apps/{app.id}/players/csv_import",
        data=body,
        content_type="application/gzip",
        HTTP_AUTHORIZATION=f"Key {key}",
    )
    upload = time.perf_counter() - started
    assert response.status_code == 202, response.content
    job = CsvImport.objects.get(pk=response.json()["id"])

    def done() -> bool:
        job.refresh_from_db()
        if job.status == CsvImport.Status.FAILED or worker.poll() is not None:
            raise RuntimeError(f"import failed: {job.error!r} (worker alive: {worker.poll() is None})")
        # The job's committed progress, read by the poll that runs anyway.
        bar.update(job.bytes_read - bar.n)
        bar.set_postfix_str(f"rows={job.rows_processed}", refresh=False)
        return job.status == CsvImport.Status.COMPLETED

    with progress_bar(total=job.size_bytes, desc="Import (worker)", unit="B", unit_scale=True) as bar:
        wait_until(done, timeout=timeout, what="the import")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "upload_ms": round(upload * 1000, 1),
        "worker_seconds": round((job.finished_at - job.started_at).total_seconds(), 2),
        "rows_processed": job.rows_processed,
        "rows_created": job.rows_created,
        "rows_updated": job.rows_updated,
        "rows_failed": job.rows_failed,
        "first_errors": job.errors[:3],
    }


def _raw_export(app_id, path) -> dict:
    """PostgreSQL's COPY of the same columns in id order, gzipped at csv_export's level."""
    from django.db import connection

    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor() as raw,
        raw.copy(
            f"COPY (SELECT {EXPORT_COLUMNS} FROM players_player WHERE app_id = '{app_id}' ORDER BY id) "  # noqa: S608 - constants and a UUID
            "TO STDOUT (FORMAT csv)"
        ) as copy,
        gzip.open(path, "wb", compresslevel=6) as out,
    ):
        for block in copy:
            out.write(block)
    return {"seconds": time.perf_counter() - started, "bytes": path.stat().st_size}


def _raw_insert(source_id, target_id) -> dict:
    """The same rows written by PostgreSQL alone: one INSERT … SELECT, every index in place."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO players_player (id, app_id, {COPIED_COLUMNS}) "  # noqa: S608 - constants
            f"SELECT gen_random_uuid(), %s, {COPIED_COLUMNS} FROM players_player WHERE app_id = %s",
            [target_id, source_id],
        )
        rows = cursor.rowcount
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _compare(source_id, target_id) -> int:
    """Players of the source that the import did not reproduce (by identifier)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM players_player s
            LEFT JOIN players_player t ON t.app_id = %s AND t.identifier = s.identifier
            WHERE s.app_id = %s AND (t.id IS NULL OR t.id = s.id
                OR (t.device_type, t.tags, t.session_count, t.language, t.country, t.lat, t.long,
                    t.playtime, t.notification_types, t.invalid_identifier,
                    date_trunc('second', t.last_active), date_trunc('second', t.created_at))
                IS DISTINCT FROM
                   (s.device_type, s.tags, s.session_count, s.language, s.country, s.lat, s.long,
                    s.playtime, s.notification_types, s.invalid_identifier,
                    date_trunc('second', s.last_active), date_trunc('second', s.created_at)))
            """,
            [target_id, source_id],
        )
        return cursor.fetchone()[0]
