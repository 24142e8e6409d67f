"""Django's Redis cache backend, with one redis-py client per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and
with it a table of about 170 response callbacks: 0.25 ms of CPU per call. An SDK ping makes one
cache call (the rate limits' script), so in a profile of ``on_session`` that was an eighth of
the request's CPU. A client is only a pool and that table, and redis-py's pools are thread-safe
and reset themselves after a fork, so one client per pool can serve every call.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._clients: dict[int, object] = {}  # id of a pool in self._pools → its client

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            # Pools live as long as this object (self._pools), so their ids are never reused.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
