"""App rows for keyless SDK calls, kept a few seconds in each process.

Every SDK ping resolves its App by the id it sends; reading that row again for each of the
thousands of pings a second an app gets costs a query each (BENCHMARKS.md, Ingest). It is kept
safe this way:

- Only the keyless device path uses it (``DeviceView``, views that opt in). A request with a key
  checks the key against the database every time, so a revoked key is refused at once.
- Every change to an App made through the ORM (API, dashboard, admin; deletes too, cascades
  included) bumps a generation counter in Redis once committed, and drops the entry here at
  once. Each request reads the counter in the same round trip as its rate limits
  (``count_requests(read=GENERATION_KEY)``), and an entry fetched under another generation is
  not used: every process sees a change on its next request.
- Entries expire after ``TTL_SECONDS`` anyway, for writes that bypass the ORM's signals
  (``QuerySet.update()``).
- Without the counter (no Redis, or Redis unreachable) nothing is cached.
"""

from __future__ import annotations

import logging
import time
import uuid

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

from apps.models import App

logger = logging.getLogger(__name__)

GENERATION_KEY = "herald:apps:generation"
TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000  # a bound, not a tuning knob: far more apps than one server hosts

_entries: dict[uuid.UUID, tuple[float, int, App]] = {}  # app id -> (expires, generation, app)


def device_app(app_id: uuid.UUID, generation: int | None) -> App | None:
    """The App with this id, from this process's cache when it was read under ``generation``
    less than ``TTL_SECONDS`` ago; None when there is no such app. ``generation`` None: read
    the database and keep nothing."""
    now = time.monotonic()
    entry = _entries.get(app_id) if generation is not None else None
    if entry is not None and entry[1] == generation and now < entry[0]:
        return entry[2]
    app = App.objects.filter(pk=app_id).first()
    if generation is not None:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        if app is None:
            _entries.pop(app_id, None)
        else:
            _entries[app_id] = (now + TTL_SECONDS, generation, app)
    return app


def _bump_generation() -> None:
    _entries.clear()
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return  # nothing is cached without Redis
    try:
        key = backend.make_and_validate_key(GENERATION_KEY)
        backend._cache.get_client(key, write=True).incr(key)
    except Exception:  # other processes fall back on the expiry
        logger.warning("could not publish an app change to the other processes", exc_info=True)


def app_changed(sender, instance: App, **kwargs) -> None:
    """post_save / post_delete of App: forget it here now, everywhere once committed (a process
    that read the row before the commit then reads it again)."""
    _entries.pop(instance.pk, None)
    transaction.on_commit(_bump_generation)
