from __future__ import annotations

import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Every worker records a heartbeat on its own timer, which ``GET /healthz`` reads: a worker
    that is up but stuck, or gone, makes the deployment unready (core/health.py)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker):
        from django.conf import settings

        self.beat(worker)
        interval = settings.HERALD_WORKER_HEARTBEAT_SECONDS
        self.timer_ref = worker.timer.call_repeatedly(interval, self.beat, (worker,), priority=10)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    def beat(self, worker):
        from core.health import record_worker_heartbeat

        try:
            record_worker_heartbeat(worker.hostname)
        except Exception:  # the cache being away must not stop the worker; /healthz shows it
            import logging

            logging.getLogger(__name__).warning("could not record the worker heartbeat", exc_info=True)


app.steps["worker"].add(WorkerHeartbeat)
