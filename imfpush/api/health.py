"""``GET /health/status``: no authentication, tenant-neutral (§3.8)."""

from __future__ import annotations

import logging

from django.db import connection
from rest_framework.response import Response

from config.celery import app as celery_app
from imfpush.api.base import MfpView

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


class HealthView(MfpView):
    authenticated = False

    def get(self, request, *args, **kwargs):
        body, failed = {"status": "ok"}, False
        for name, check in (("database", _database), ("broker", _broker)):
            try:
                check()
                body[name] = "ok"
            except Exception as exc:  # any failure of a dependency is reported, never raised
                logger.warning("health check %s failed: %s", name, type(exc).__name__)
                body[name] = "error"
                body["error"] = name
                failed = True
        if failed:
            body["status"] = "error"
        return Response(body, status=500 if failed else 200)
