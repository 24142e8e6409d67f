"""One simulator for the whole package, reset before each test; see ``simulator.py`` to reuse it elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.gatewaysim.http2 import Http2Client
from tests.gatewaysim.simulator import Simulator, running_simulator


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Overrides tests/conftest.py's: these tests use no Django cache, so they need no Redis."""
    yield


@pytest.fixture(scope="package")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    with running_simulator(tmp_path_factory.mktemp("sim")) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").reset()


@pytest.fixture
def account(sim: Simulator) -> dict[str, Any]:
    """A service account whose key the simulator knows (signatures verified)."""
    return sim.fcm_service_account(project_id="demo")


@pytest.fixture
def access_token(sim: Simulator, account: dict[str, Any]) -> str:
    return sim.fcm_access_token(account)


@pytest.fixture
def client(sim: Simulator) -> Iterator[Http2Client]:
    with Http2Client(sim.ca_path) as http2:
        yield http2
