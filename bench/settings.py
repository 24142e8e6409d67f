"""Settings for the web server the ingest and create benchmarks start: Herald's own (what
``make run`` uses, DEBUG off through the environment) with the bench-only URLconf, which adds
a bare Django view. Never used outside ``bench/``."""

from __future__ import annotations

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
