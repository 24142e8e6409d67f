"""Fixed-window rate limits per key (or per app for keyless device calls) and endpoint class.

Counters live in the cache (Redis in production). When the cache is unreachable the request is
allowed: a rate limiter must not turn a Redis outage into an API outage (onesignal-api.md §9).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured

from core.api.errors import RATE_LIMITED, ApiError

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Limit:
    count: int
    window: int


def parse_limit(spec: str) -> Limit:
    try:
        count, period = spec.strip().split("/")
        return Limit(count=int(count), window=_PERIODS[period.strip()])
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"Rate limit {spec!r} must look like '100/s', '10/m' or '5/h'.") from exc


def _increment(key: str, window: int) -> int:
    """The window's count after this request.

    On Redis: INCR and EXPIRE NX in one round trip, so the counter always gets its expiry and
    never vanishes between two commands. ``cache`` is a proxy, so the backend is looked up in
    ``caches`` (an ``isinstance`` on the proxy is always false). Other backends: add + incr.
    """
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1, nx=True)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, timeout=window + 1)
    return cache.incr(key)


def check_rate_limit(bucket: str, identity: str) -> None:
    spec = settings.HERALD_RATE_LIMITS.get(bucket)
    if not spec:
        return
    limit = parse_limit(spec)
    now = time.time()
    window_index = int(now // limit.window)
    key = f"herald:rl:{bucket}:{identity}:{window_index}"
    try:
        count = _increment(key, limit.window)
    except Exception:  # any cache failure: fail open, loudly
        logger.warning("rate limiter unavailable; allowing request", exc_info=True)
        return
    if count > limit.count:
        retry_after = max(1, math.ceil((window_index + 1) * limit.window - now))
        raise ApiError(
            429, {"errors": [RATE_LIMITED], "limit": bucket}, headers={"Retry-After": str(retry_after)}
        )
