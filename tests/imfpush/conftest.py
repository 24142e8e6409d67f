"""Fixtures for /imfpush/v1: a confidential client per tenant and tokens with chosen scopes."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

import orjson
import pytest
from django.test import Client

from imfpush.clients import confidential_client_create
from tests.conftest import Tenant

_ids = itertools.count()


class MfpClient:
    """JSON requests to /imfpush/v1 with a Bearer token."""

    def __init__(self, token: str | None = None):
        self.http = Client()
        self.token = token

    def request(self, method: str, path: str, body=None, *, token: str | None = None, headers=None, **kw):
        headers = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {bearer}"
        if body is not None and "content_type" not in kw:
            kw["content_type"] = "application/json"
            body = orjson.dumps(body)
        url = path if path.startswith("/") else f"/imfpush/v1/{path}"
        data = body if body is not None else kw.pop("data", None)
        return self.http.generic(method, url, data=data or b"", headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def request_token(client_id: str, secret: str, scope: str) -> dict:
    response = Client().post(
        "/mfp/api/az/v1/token",
        {"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": basic(client_id, secret)},
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def mfp_client_factory() -> Callable[..., tuple[str, str]]:
    """Register a confidential client for a tenant; returns ``(client_id, secret)``."""

    def make(tenant: Tenant, allowed_scope: str = "*", client_id: str | None = None) -> tuple[str, str]:
        client_id = client_id or f"client-{next(_ids)}"
        _client, secret = confidential_client_create(
            organization=tenant.organization, client_id=client_id, allowed_scope=allowed_scope
        )
        return client_id, secret

    return make


@pytest.fixture
def token_for(mfp_client_factory) -> Callable[..., str]:
    """``token_for(tenant, "devices.read push.application.x")``: an access token with that scope."""
    clients: dict[int, tuple[str, str]] = {}

    def make(tenant: Tenant, scope: str) -> str:
        key = id(tenant)
        if key not in clients:
            clients[key] = mfp_client_factory(tenant)
        return request_token(*clients[key], scope)["access_token"]

    return make


@pytest.fixture
def mfp() -> MfpClient:
    return MfpClient()
