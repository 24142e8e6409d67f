"""Fixed-window rate limits per key (or per app for keyless device calls) and endpoint class.

Counters live in the cache (Redis in production). When the cache is unreachable the request is
allowed: a rate limiter must not turn a Redis outage into an API outage (onesignal-api.md §9).

A request may count against several buckets (a keyless SDK call: its client address, then its
app's endpoint class). On Redis all of them are counted in one round trip, by a Lua script that
stops at the first bucket over its limit, so a request refused for its address is not also
counted against its app (one flooding address must not use up every device's budget).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from redis.commands.core import Script

from core.api.errors import RATE_LIMITED, ApiError

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600}

# KEYS: the counters, then one key to read. ARGV: each counter's limit and expiry, in pairs.
# Each counter is INCRed and gets its expiry if it has none (EXPIRE NX: a counter can never be
# left without one); counting stops at the first counter over its limit. Returns the value of the
# key to read (false when absent), then the counts made.
_COUNT_SCRIPT = """
local counts = {redis.call('GET', KEYS[#KEYS])}
for i = 1, #KEYS - 1 do
  local count = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i], 'NX')
  counts[i + 1] = count
  if count > tonumber(ARGV[2 * i - 1]) then break end
end
return counts
"""
# Bytes, so that no client is needed to encode it: its SHA1 is computed once, here; each call
# passes its own client (EVALSHA, or EVAL once after a Redis restart).
_script = Script(None, _COUNT_SCRIPT.encode())


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


@dataclass(frozen=True)
class _Window:
    bucket: str
    limit: Limit
    key: str
    ends_at: float


def _window(bucket: str, identity: str, now: float) -> _Window | None:
    spec = settings.HERALD_RATE_LIMITS.get(bucket)
    if not spec:
        return None
    limit = parse_limit(spec)
    index = int(now // limit.window)
    return _Window(bucket, limit, f"herald:rl:{bucket}:{identity}:{index}", (index + 1) * limit.window)


def _refusal(window: _Window, now: float) -> ApiError:
    retry_after = max(1, math.ceil(window.ends_at - now))
    return ApiError(
        429, {"errors": [RATE_LIMITED], "limit": window.bucket}, headers={"Retry-After": str(retry_after)}
    )


def _redis_backend() -> RedisCache | None:
    """``cache`` is a proxy, so the backend is looked up in ``caches`` (an ``isinstance`` on the
    proxy is always false)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    return backend if isinstance(backend, RedisCache) else None


def _run_script(backend: RedisCache, keys: list[str], windows: list[_Window], read: str) -> list:
    raw_keys = [backend.make_and_validate_key(key) for key in [*keys, read]]
    client = backend._cache.get_client(raw_keys[0], write=True)
    args = [value for w in windows for value in (w.limit.count, w.limit.window + 1)]
    return _script(keys=raw_keys, args=args, client=client)


def _increment(key: str, window: int) -> int:
    """The window's count after this request (one counter; ``count_requests`` for several).

    On Redis: INCR and EXPIRE NX in one round trip (the script), so the counter always gets its
    expiry and never vanishes between two commands. Other backends: add + incr.
    """
    backend = _redis_backend()
    if backend is not None:
        limit = _Window("", Limit(count=2**62, window=window), key, 0)
        return int(_run_script(backend, [key], [limit], "herald:rl:none")[1])
    cache.add(key, 0, timeout=window + 1)
    return cache.incr(key)


@dataclass(frozen=True)
class Counted:
    """What ``count_requests`` found: one refusal (a ready 429) or None per check, in order,
    and the value of the key it was asked to read (0 when absent; None when not read: no Redis,
    or Redis unreachable)."""

    refusals: list[ApiError | None]
    value: int | None


def count_requests(checks: Sequence[tuple[str, str]], *, read: str | None = None) -> Counted:
    """Count this request against each ``(bucket, identity)`` in order, stopping at the first
    bucket over its limit; buckets without a limit are skipped. ``read``: a cache key holding an
    integer to fetch in the same round trip (on Redis only)."""
    now = time.time()
    windows = [_window(bucket, identity, now) for bucket, identity in checks]
    counted = [w for w in windows if w is not None]
    counts: dict[str, int] = {}
    value = None
    try:
        backend = _redis_backend()
        if backend is not None and (counted or read):
            result = _run_script(backend, [w.key for w in counted], counted, read or "herald:rl:none")
            value = int(result[0]) if result[0] is not None else 0  # absent: never bumped
            counts = {w.key: int(count) for w, count in zip(counted, result[1:], strict=False)}
        else:
            for w in counted:
                counts[w.key] = _increment(w.key, w.limit.window)
                if counts[w.key] > w.limit.count:
                    break
    except Exception:  # any cache failure: fail open, loudly
        logger.warning("rate limiter unavailable; allowing request", exc_info=True)
        return Counted([None] * len(checks), None)
    refusals = [
        _refusal(w, now) if w is not None and counts.get(w.key, 0) > w.limit.count else None for w in windows
    ]
    return Counted(refusals, value)


def check_rate_limit(bucket: str, identity: str) -> None:
    refusal = count_requests([(bucket, identity)]).refusals[0]
    if refusal is not None:
        raise refusal
