"""Developer defaults: DEBUG on and a non-secret key, so `make run` works with no setup."""

from __future__ import annotations

from config.env import env, env_bool, env_secret

from .base import *  # noqa: F403
from .base import HERALD_ENCRYPTION_KEYS

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY") or "local-development-only-not-a-secret"
# A fixed development key, so credentials written by `make run` stay readable across restarts.
HERALD_ENCRYPTION_KEYS = HERALD_ENCRYPTION_KEYS or ["ZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldC0wMDA="]
# make run serves 127.0.0.1: let a local Prometheus (or curl) scrape /metrics without a token.
HERALD_METRICS_ALLOWED_NETWORKS = env.list(
    "HERALD_METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
)
