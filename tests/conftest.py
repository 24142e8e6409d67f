from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client

from apps.models import App, Organization
from apps.services import app_key_issue, user_key_issue
from tests.factories import AppFactory, OrganizationFactory
from tests.gatewaysim.simulator import Simulator, running_simulator


@dataclass
class Tenant:
    """An organization with one app, its User key and an App key (plaintexts kept for tests)."""

    organization: Organization
    app: App
    user_key: str
    app_key: str


def make_tenant(organization: Organization | None = None) -> Tenant:
    organization = organization or OrganizationFactory()
    app = AppFactory(organization=organization)
    _, user_key = user_key_issue(organization=organization, label="test")
    _, app_key = app_key_issue(app=app, label="test")
    return Tenant(organization=organization, app=app, user_key=user_key, app_key=app_key)


@pytest.fixture
def own(db) -> Tenant:
    return make_tenant()


@pytest.fixture
def teammate(own) -> Tenant:
    """Another app of the same organization: its App key must not reach ``own.app``."""
    return make_tenant(own.organization)


@pytest.fixture
def outsider(db) -> Tenant:
    return make_tenant()


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield


class ApiClient:
    """JSON over the Django test client, as OneSignal's clients send it."""

    def __init__(self, root: str = "/api/v1"):
        self.root = root
        self.client = Client()

    def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        key: str | None = None,
        scheme: str = "Key",
        content_type: str = "application/json",
        raw: bytes | str | None = None,
        **headers,
    ):
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        if key is not None:
            extra["HTTP_AUTHORIZATION"] = f"{scheme} {key}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, self.root + path, data=data, content_type=content_type, **extra)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api() -> ApiClient:
    return ApiClient("/api/v1")


@pytest.fixture
def api_root() -> ApiClient:
    return ApiClient("")


@pytest.fixture(scope="module")
def sim(request, tmp_path_factory) -> Iterator[Simulator]:
    """The gateway simulators, a process of their own for each test module that asks (a module
    that needs the simulator prepared differently defines its own ``sim``)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    with running_simulator(tmp_path_factory.mktemp(f"{module}-sim")) as simulator:
        yield simulator
