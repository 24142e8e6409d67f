"""Fixtures for the reliability tests: a gateway simulator and a Redis server of the module's own,
and per test a whole stack (web, worker, beat) that the test may kill at will."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import every_gateway_env
from tests.gatewaysim.simulator import Simulator
from tests.reliability.stack import RedisServer, Stack, stack_env


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("reliability-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def gateway_env(sim: Simulator) -> dict[str, str]:
    """Every channel sent to ``sim`` (APNs, FCM, Web Push, SMTP, SMS, WNS, Huawei, ADM)."""
    return {
        **every_gateway_env(sim, public_url="http://127.0.0.1:9", retry_base_ms=300),
        "HERALD_HMS_TOKEN_URL": sim.hms_token_url,
        "HERALD_HMS_BASE_URL": sim.hms_url,
        "HERALD_ADM_TOKEN_URL": sim.adm_token_url,
        "HERALD_ADM_BASE_URL": sim.adm_url,
    }


@pytest.fixture
def pipeline_overrides() -> dict:
    """Pipeline settings a test module changes for its stack (see ``stack.pipeline_env``)."""
    return {}


@pytest.fixture
def stack(
    django_db_setup, transactional_db, sim, redis_server, tmp_path: Path, pipeline_overrides
) -> Iterator[Stack]:
    """Nothing started yet: the test starts the parts it needs; all are stopped afterwards.

    The simulator's records and the stack's Redis are cleared first, so counts are this test's.
    """
    sim.reset()
    if not redis_server.ping():
        redis_server.restart()
    redis_server.flush()
    media = tmp_path / "media"
    media.mkdir()
    env = stack_env(redis=redis_server, gateway=gateway_env(sim), media_root=media, **pipeline_overrides)
    stack = Stack(workdir=tmp_path, env=env)
    try:
        yield stack
    finally:
        stack.close()
