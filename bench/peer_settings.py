"""Django settings of the django-push-notifications peer (``python -m bench.peer_run``), for the
benchmark only: that library and nothing of Herald's, so that its models, its migrations and its
``PUSH_NOTIFICATIONS_SETTINGS`` live in a process of their own.

``DATABASE_URL`` is the database the benchmark gives (Herald's own bench database, or any other):
the library's ``push_notifications_*`` tables are migrated there. contenttypes and auth are
there because the library's device models have a foreign key to the user model; on Herald's
database their tables already exist, with the same migrations, so migrating them is a no-op.

``HERALD_PEER_PUSH_SETTINGS`` names a JSON file with ``PUSH_NOTIFICATIONS_SETTINGS`` (credentials
of the app being benchmarked, written by bench/peer.py into a private temporary directory).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import environ

env = environ.Env()

SECRET_KEY = "bench-peer-only-not-a-secret"  # noqa: S105 - this process serves no request
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "push_notifications"]
DATABASES = {"default": env.db_url("DATABASE_URL")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PUSH_NOTIFICATIONS_SETTINGS = json.loads(Path(os.environ["HERALD_PEER_PUSH_SETTINGS"]).read_text())
LOGGING_CONFIG = None  # the library's and its clients' warnings go to stderr as Python prints them
