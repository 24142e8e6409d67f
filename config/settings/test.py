"""Tests run against real PostgreSQL and Redis (see `make test`), on their own databases."""

from __future__ import annotations

import environ

from config.env import env

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
HERALD_ENCRYPTION_KEYS = [
    "dGVzdC1rZXktb25lLW5vdC1hLXNlY3JldC0wMDAwMDA=",
    "dGVzdC1rZXktdHdvLW5vdC1hLXNlY3JldC0wMDAwMDA=",
]

DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/herald")}
DATABASES["default"]["TEST"] = {"NAME": env.str("HERALD_TEST_DB_NAME", default="test_herald")}
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/14")
CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
# The broker gets its own Redis db, so clearing the cache between tests never drops queued tasks.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise environ.ImproperlyConfigured("Tests need PostgreSQL: set DATABASE_URL=postgres://...")
