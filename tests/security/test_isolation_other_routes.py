"""The routes outside the three matrices (OneSignal surface, /imfpush/v1, dashboard): each one is
classified here, and each that carries tenant data is tried across tenants.

A new top-level route fails ``test_every_top_level_route_is_classified`` until it is listed with
the way it is protected and a test below.
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from imfpush.clients import confidential_client_create
from notifications.unsubscribe import unsubscribe_token
from players.exports import export_path
from players.models import CsvExport, DeviceType, Player
from tests.conftest import make_tenant
from tests.factories import PlayerFactory
from tests.security.support import changed_tables, rolled_back, snapshot
from tests.security.test_isolation_imfpush import token

pytestmark = pytest.mark.django_db

# Namespaces whose every route is in a generated matrix.
MATRIX_NAMESPACES = {
    "api": "tests/security/test_isolation_onesignal.py",
    "api_v1": "tests/security/test_isolation_onesignal.py",
    "imfpush": "tests/security/test_isolation_imfpush.py",
    "admin": "tests/security/test_isolation_admin.py",
}
# Every other named route: how it is protected (tested below unless it shows no tenant data).
OTHER_ROUTES = {
    "schema": "public: the OpenAPI document",
    "swagger-ui": "public: the API docs page",
    "csv-export-download": "the unguessable token in the file name, and the app id must match",
    "email-unsubscribe": "a signed (app, player) token",
    "metrics": "a bearer token or an allowed network; no tenant data",
    "healthz": "public, like every probe: check names and states only, no tenant data",
    "healthz-ready": "the same view as healthz",
    "healthz-live": "public: a constant",
    "mfp-token": "the client's id and secret (HTTP Basic)",
    "mfp-introspection": "a token with authorization.introspect, of the same organization",
}
UNNAMED = {"", "admin", "^.*$"}  # the redirects to the dashboard, and the JSON 404 for anything else


def test_every_top_level_route_is_classified():
    unknown = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace not in MATRIX_NAMESPACES:
                unknown.append(str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            name = pattern.name or ""
            base = name.rsplit("-", 1)[0] if name.startswith(("mfp-token-", "mfp-introspection-")) else name
            if base not in OTHER_ROUTES and str(pattern.pattern) not in UNNAMED:
                unknown.append(str(pattern.pattern))
    assert not unknown, f"routes outside the tenant-isolation tests: {unknown}"


def test_a_csv_export_link_works_only_with_its_own_app_and_token(own, outsider, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    now = timezone.now()
    export = CsvExport.objects.create(
        app=own.app, token="a" * 32, status=CsvExport.Status.READY, created_at=now, expires_at=now
    )
    path = export_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"id\n"))
    client = Client()
    assert client.get(f"/csv_exports/{own.app.id}/{export.file_name}").status_code == 200
    # Another app's id with this file name, and this app with another token: not found.
    assert client.get(f"/csv_exports/{outsider.app.id}/{export.file_name}").status_code == 404
    forged = export.file_name.replace("a" * 32, "b" * 32)
    assert client.get(f"/csv_exports/{own.app.id}/{forged}").status_code == 404


def test_an_unsubscribe_link_names_its_app_and_player_together(own, outsider):
    player = PlayerFactory(app=own.app, device_type=DeviceType.EMAIL, identifier="a@example.com")
    client = Client()
    # Signed, but for another app: nothing changes.
    mixed = unsubscribe_token(outsider.app.id, player.id)
    forged = base64.urlsafe_b64encode(json.dumps([own.app.id.hex, player.id.hex]).encode()).decode()
    for token_value in (mixed, forged):
        with rolled_back():
            before = snapshot()
            response = client.post(f"/email/unsubscribe/{token_value}")
            after = snapshot()
        assert response.status_code == 404 and not changed_tables(before, after)
    assert client.post(f"/email/unsubscribe/{unsubscribe_token(own.app.id, player.id)}").status_code == 200
    assert Player.objects.get(pk=player.pk).notification_types <= 0


def test_metrics_need_the_token_or_an_allowed_network(db, settings):
    settings.HERALD_METRICS_TOKEN = "metrics-secret-token"
    settings.HERALD_METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    assert Client(REMOTE_ADDR="203.0.113.5").get("/metrics").status_code in (401, 403)
    wrong = Client(REMOTE_ADDR="203.0.113.5").get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code in (401, 403)
    assert Client(REMOTE_ADDR="10.9.1.1").get("/metrics").status_code == 200
    right = Client(REMOTE_ADDR="203.0.113.5").get(
        "/metrics", headers={"Authorization": "Bearer metrics-secret-token"}
    )
    assert right.status_code == 200


def test_a_token_needs_the_clients_own_secret(own, outsider):
    _mine, my_secret = confidential_client_create(organization=own.organization, client_id="mine")
    _theirs, their_secret = confidential_client_create(organization=outsider.organization, client_id="theirs")
    for client_id, secret in (("mine", their_secret), ("theirs", my_secret), ("mine", "")):
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = Client().post(
            "/mfp/api/az/v1/token",
            {"grant_type": "client_credentials", "scope": "devices.read push.application.*"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 401, (client_id, response.content)


def test_introspection_shows_only_the_callers_organization():
    victim, outsider = make_tenant(), make_tenant()
    confidential_client_create(organization=victim.organization, client_id="victim-client")
    confidential_client_create(organization=outsider.organization, client_id="outsider-client")
    victim_token = token(("victim-client", None), "devices.read push.application.*")
    own_probe = token(("victim-client", None), "authorization.introspect")
    their_probe = token(("outsider-client", None), "authorization.introspect")

    def introspect(bearer: str):
        return Client().post(
            "/mfp/api/az/v1/introspection",
            {"token": victim_token},
            headers={"Authorization": f"Bearer {bearer}"},
        )

    assert introspect(own_probe).json()["active"] is True
    assert introspect(their_probe).json() == {"active": False}
    assert introspect(victim_token).status_code == 403  # no authorization.introspect


def test_healthz_shows_only_check_states(own):
    for path in ("/healthz", "/healthz/ready", "/healthz/live"):
        response = Client(REMOTE_ADDR="203.0.113.5").get(path)
        text = response.content.decode()
        assert str(own.app.id) not in text and own.app.name not in text
        body = response.json()
        assert set(body) <= {"status", "checks"}
        for check in body.get("checks", {}).values():
            assert set(check) <= {"status", "error", "ms", "age_seconds"}
