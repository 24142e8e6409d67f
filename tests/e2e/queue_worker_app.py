"""The Celery app for an e2e worker that must have a broker queue to itself.

``celery -A tests.e2e.queue_worker_app worker`` runs ``config.celery``'s app with its default queue
taken from ``HERALD_E2E_QUEUE``: the worker consumes only that queue, and the tasks it sends (a
fan-out enqueuing its batches, a batch re-queued for a retry) go there too. A test that kills
workers (tests/e2e/test_delivery.py) sends its own tasks to the same queue, so the module's
shared worker never takes part.
"""

from __future__ import annotations

import os

from config.celery import app

app.conf.task_default_queue = os.environ["HERALD_E2E_QUEUE"]

__all__ = ["app"]
