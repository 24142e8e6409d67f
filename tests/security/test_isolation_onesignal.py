"""Tenant isolation matrix of the OneSignal surface (issue 8 §5), generated from the URLconf.

Every route of the ``api`` and ``api_v1`` namespaces (``/`` and ``/api/v1/``, each with and
without its trailing slash) and every method its view implements is called as:

- ``own``: the tenant's own key and ids; the documented 2xx;
- ``other_key``: another organization's key (same kind) with the tenant's ids;
- ``teammate_key``: the App key of another app of the same organization (App-key routes);
- ``other_app``: the tenant's own key with another organization's app id (and its objects);
- ``other_object``: the tenant's own key and app, another organization's object ids
  (player, notification, segment, external user id);
- ``no_key``: no ``Authorization``; device routes are keyless by design (OneSignal's SDKs send no
  key), so they are tried on an app that requires a key (``allow_unauthenticated_device_calls``);
- ``revoked_key``: the tenant's key of the right kind, revoked;
- read-only scope: OneSignal has no read-only key, so there is no such case here (the
  ``/imfpush/v1`` matrix and the admin matrix have one).

Every case but ``own`` must answer the documented refusal (legacy root: 400 with OneSignal's old
body; current root: 403 ``Access denied``; unknown ids: 400/404 with the documented text), must
leave every table of the database unchanged (row counts and checksums, ``support.snapshot``) and
must not show either tenant's data (marker strings planted in names, tokens, tags and contents).

A route or method without an entry in ``MATRIX`` fails ``test_every_route_has_a_matrix_entry``
and its own parametrized case: new endpoints are covered, or the suite says which one is not.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.models import App
from apps.services import api_key_revoke, app_key_issue, user_key_issue
from core.api.errors import CURRENT_KEY_ERROR, LEGACY_APP_KEY_ERROR, LEGACY_USER_KEY_ERROR
from notifications.models import Delivery, DeliveryBatch, Notification
from players.models import CsvImport, DeviceType
from tests.conftest import Tenant, make_tenant
from tests.factories import PlayerFactory, SegmentFactory
from tests.security.support import (
    changed_tables,
    leaked_markers,
    module_data,
    rolled_back,
    snapshot,
    url_patterns,
)

pytestmark = pytest.mark.django_db

NAMESPACES = ("api_v1", "api")
# Path parameters of the OneSignal routes and the id each one is filled with.
PARAMETERS = {
    "app_id": "app",
    "player_id": "player",
    "notification_id": "notification",
    "segment_id": "segment",
    "external_user_id": "external",
    "import_id": "import",
}
OBJECT_IDS = ("player", "notification", "segment", "external", "import")


@dataclass(frozen=True)
class Op:
    """One method of one route: who may call it and what each case must answer.

    ``query`` and ``body`` are templates: ``{app}``, ``{player}``, ``{notification}``,
    ``{segment}``, ``{external}`` and ``{import}`` are replaced by the ids of the case.
    ``other_object`` is the documented answer when the tenant's key and app name another
    organization's objects (None: the operation names no object). ``not_applicable`` names cases
    that do not apply, each with the reason."""

    # "user" (User key), "app" (App key), "device" (keyless SDK call; a key, if sent, must be valid)
    auth: str
    own: int
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON, or bytes sent as ``content_type``
    content_type: str = "application/json"
    other_object: int | None = None
    overrides: dict[str, int] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)


SESSION = {"app_id": "{app}", "language": "fr"}
NO_OBJECT = "the operation names no object besides the app"

MATRIX: dict[str, dict[str, Op]] = {
    "apps": {
        # GET /apps lists the caller's organization: another organization's key lists its own apps
        # (200), and the victim's markers must not be in it.
        "GET": Op("user", 200, overrides={"other_key": 200}, not_applicable={"other_app": NO_OBJECT}),
        "POST": Op(
            "user",
            200,
            body={"name": "created-by-matrix"},
            not_applicable={
                "other_key": "POST /apps names no existing object: it creates one in the caller's "
                "organization",
                "other_app": NO_OBJECT,
            },
        ),
    },
    "app-detail": {
        # A User key of another organization does not see the app: 404 Couldn't find app.
        "GET": Op("user", 200, overrides={"other_key": 404, "other_app": 404}),
        "PUT": Op("user", 200, body={"name": "renamed"}, overrides={"other_key": 404, "other_app": 404}),
    },
    "app-web-push-public-key": {"GET": Op("device", 200)},
    "external-user-tags": {
        "PUT": Op("app", 200, body={"tags": {"level": "9"}}, other_object=400),
    },
    "app-outcomes": {"GET": Op("app", 200, query={"outcome_names": "os__click.count"})},
    "players-csv-import": {
        "POST": Op("app", 202, body=b"identifier,device_type\nmatrix-csv-token,1\n", content_type="text/csv"),
    },
    "players-csv-import-detail": {"GET": Op("app", 200, other_object=404)},
    "outcomes-measure": {
        "POST": Op("device", 200, body={"app_id": "{app}", "id": "os__click", "device_type": 1}),
    },
    "outcomes-measure-sources": {
        "POST": Op(
            "device",
            200,
            body={"app_id": "{app}", "id": "os__click", "device_type": 1, "sources": {}},
        ),
    },
    "segments": {
        "GET": Op("app", 200),
        "POST": Op(
            "app",
            201,
            body={
                "name": "matrix-segment",
                "filters": [{"field": "session_count", "relation": ">", "value": "1"}],
            },
        ),
    },
    "segment-detail": {
        "GET": Op("app", 200, other_object=404),
        "PATCH": Op("app", 200, body={"name": "renamed-segment"}, other_object=404),
        "DELETE": Op("app", 200, other_object=404),
    },
    "players": {
        "GET": Op("app", 200, query={"app_id": "{app}"}),
        "POST": Op(
            "device", 200, body={"app_id": "{app}", "device_type": 1, "identifier": "matrix-new-token"}
        ),
    },
    "players-csv-export": {"POST": Op("app", 200, query={"app_id": "{app}"}, body={})},
    "player-detail": {
        "GET": Op("device", 200, query={"app_id": "{app}"}, other_object=400),
        "PUT": Op("device", 200, body={"app_id": "{app}", "tags": {"level": "2"}}, other_object=400),
        "DELETE": Op("app", 200, query={"app_id": "{app}"}, other_object=404),
    },
    "player-on-session": {
        "POST": Op("device", 200, body=SESSION, other_object=400),
        "PUT": Op("device", 200, body=SESSION, other_object=400),
    },
    "player-on-purchase": {
        "POST": Op(
            "device",
            200,
            body={"app_id": "{app}", "purchases": [{"sku": "coins", "amount": 1.5, "iso": "USD"}]},
            other_object=400,
        ),
        "PUT": Op(
            "device",
            200,
            body={"app_id": "{app}", "purchases": [{"sku": "coins", "amount": 1.5, "iso": "USD"}]},
            other_object=400,
        ),
    },
    "player-on-focus": {
        "POST": Op(
            "device", 200, body={"app_id": "{app}", "state": "ping", "active_time": 60}, other_object=400
        ),
        "PUT": Op(
            "device", 200, body={"app_id": "{app}", "state": "ping", "active_time": 60}, other_object=400
        ),
    },
    "notifications": {
        "GET": Op("app", 200, query={"app_id": "{app}"}),
        # Another organization's player ids are "invalid" here: 200 with nobody to send to, nothing
        # stored (onesignal-api.md §2.1).
        "POST": Op(
            "app",
            200,
            body={"app_id": "{app}", "include_player_ids": ["{player}"], "contents": {"en": "Hello"}},
            other_object=200,
        ),
    },
    "notification-detail": {
        "GET": Op("app", 200, query={"app_id": "{app}"}, other_object=404),
        "DELETE": Op("app", 200, query={"app_id": "{app}"}, other_object=404),
        # The SDK's "opened" report (keyless).
        "PUT": Op(
            "device", 200, body={"app_id": "{app}", "opened": True, "player_id": "{player}"}, other_object=404
        ),
    },
    "notification-report-received": {
        "PUT": Op("device", 200, body={"app_id": "{app}", "player_id": "{player}"}, other_object=404),
    },
    "notification-history": {
        "POST": Op("app", 200, body={"app_id": "{app}", "events": "sent"}, other_object=404),
    },
    "notification-export-events": {
        "POST": Op("app", 200, query={"app_id": "{app}"}, other_object=404),
    },
}


# --- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    tenant: Tenant
    ids: dict[str, str]
    markers: list[str]
    revoked_user_key: str
    revoked_app_key: str


def populate(tenant: Tenant, tag: str) -> World:
    """The tenant's app with one of everything, named with markers that must never leak."""
    app = tenant.app
    App.objects.filter(pk=app.pk).update(name=f"mark-{tag}-app")
    player = PlayerFactory(
        app=app,
        device_type=DeviceType.ANDROID,
        identifier=f"mark-{tag}-token",
        external_user_id=f"mark-{tag}-user",
        tags={"secret": f"mark-{tag}-tag"},
    )
    now = timezone.now()
    notification = Notification.objects.create(
        app=app, request={"contents": {"en": f"mark-{tag}-content"}}, send_after=now
    )
    batch = DeliveryBatch.objects.create(notification=notification, device_type=1, size=1, available_at=now)
    Delivery.objects.create(
        notification=notification, batch=batch, player=player, status=Delivery.Status.SENT, sent_at=now
    )
    segment = SegmentFactory(app=app, name=f"mark-{tag}-segment")
    csv_import = CsvImport.objects.create(
        app=app,
        file_name=f"mark-{tag}-import.csv",
        relative_path=f"imports/{tag}.csv",
        status=CsvImport.Status.COMPLETED,
    )
    revoked_user, revoked_user_plain = user_key_issue(organization=tenant.organization, label="old")
    revoked_app, revoked_app_plain = app_key_issue(app=app, label="old")
    api_key_revoke(key=revoked_user)
    api_key_revoke(key=revoked_app)
    return World(
        tenant=tenant,
        ids={
            "app": str(app.id),
            "player": str(player.id),
            "notification": str(notification.id),
            "segment": str(segment.id),
            "external": player.external_user_id,
            "import": str(csv_import.id),
        },
        markers=[
            f"mark-{tag}-{what}" for what in ("app", "token", "user", "tag", "content", "segment", "import")
        ],
        revoked_user_key=revoked_user_plain,
        revoked_app_key=revoked_app_plain,
    )


@pytest.fixture(scope="module")
def module_worlds(django_db_setup, django_db_blocker):
    with module_data(django_db_blocker):
        victim = populate(make_tenant(), "victim")
        outsider = populate(make_tenant(), "outsider")
        teammate = make_tenant(victim.tenant.organization)
        yield victim, outsider, teammate


@pytest.fixture
def worlds(module_worlds, db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # CSV imports and exports write files there
    return module_worlds


# --- the cases ------------------------------------------------------------------------------------


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, bytes):
        return template
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def auth_refusal(legacy: bool, user_key: bool) -> tuple[int, dict]:
    if legacy:
        return 400, LEGACY_USER_KEY_ERROR if user_key else LEGACY_APP_KEY_ERROR
    return 403, CURRENT_KEY_ERROR


@dataclass
class Case:
    name: str
    ids: dict[str, str]
    key: str | None
    expected: int
    body: dict | None = None  # the exact refusal body, when it is an auth refusal
    lock_device_calls: bool = False
    # Whose data must not appear in the answer: the tenants the caller is not.
    hidden: tuple[str, ...] = ("victim", "outsider")


def cases_for(op: Op, victim: World, outsider: World, teammate: Tenant, legacy: bool) -> list[Case]:
    user = op.auth == "user"
    refused, refusal_body = auth_refusal(legacy, user)
    own_key = victim.tenant.user_key if user else victim.tenant.app_key
    other_key = outsider.tenant.user_key if user else outsider.tenant.app_key
    revoked = victim.revoked_user_key if user else victim.revoked_app_key
    cross_app = dict(outsider.ids)
    cross_object = {**outsider.ids, "app": victim.ids["app"]}
    cases = [
        Case("other_key", victim.ids, other_key, refused, refusal_body, hidden=("victim",)),
        Case("other_app", cross_app, own_key, refused, refusal_body, hidden=("outsider",)),
        Case("no_key", victim.ids, None, refused, refusal_body, lock_device_calls=True),
        Case("revoked_key", victim.ids, revoked, refused, refusal_body),
    ]
    if not user:
        cases.append(
            Case("teammate_key", victim.ids, teammate.app_key, refused, refusal_body, hidden=("victim",))
        )
    if op.other_object is not None:
        cases.append(Case("other_object", cross_object, own_key, op.other_object, hidden=("outsider",)))
    for case in cases:
        if case.name in op.overrides:
            case.expected, case.body = op.overrides[case.name], None
    return [c for c in cases if c.name not in op.not_applicable]


# One client for the module: each new Client loads the middleware again (WhiteNoise then scans
# every static file), which would cost more than the requests themselves.
CLIENT = Client()


def send(route, method: str, op: Op, ids: dict[str, str], key: str | None):
    kwargs = {name: ids[PARAMETERS[name]] for name in route.parameters()}
    path = route.path(**kwargs)
    query = fill(op.query, ids)
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = fill(op.body, ids)
    headers = {"HTTP_AUTHORIZATION": f"Key {key}"} if key else {}
    data = body if isinstance(body, bytes) else json.dumps(body) if body is not None else ""
    return CLIENT.generic(method, path, data=data, content_type=op.content_type, **headers)


def routes_by_name() -> dict[str, list]:
    grouped: dict[str, list] = {}
    for namespace in NAMESPACES:
        for route in url_patterns(namespace):
            grouped.setdefault(route.name, []).append(route)
    return grouped


def matrix_params() -> list:
    params = []
    for name, routes in routes_by_name().items():
        for method in routes[0].methods():
            params.append(pytest.param(name, method, id=f"{method} {name}"))
    return params


# --- the tests ------------------------------------------------------------------------------------


def test_every_route_has_a_matrix_entry():
    grouped = routes_by_name()
    missing = [
        f"{method} {name}"
        for name, routes in grouped.items()
        for method in routes[0].methods()
        if method not in MATRIX.get(name, {})
    ]
    assert not missing, f"routes without a tenant-isolation matrix entry: {missing}"
    stale = [f"{m} {name}" for name, ops in MATRIX.items() for m in ops if name not in grouped]
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"
    # The slash twin and the other root serve the same view, so they need no entry of their own,
    # and they are called in every case below.
    for name, routes in grouped.items():
        assert len(routes) == 4, (name, [r.route for r in routes])
        assert len({r.view_class for r in routes}) == 1, name
        parameters = {p for r in routes for p in r.parameters()}
        assert parameters <= set(PARAMETERS), f"{name}: no fixture id for {parameters - set(PARAMETERS)}"


def media_files() -> set[str]:
    """Files under MEDIA_ROOT (exports, uploaded imports): a refused request writes none."""
    root = Path(settings.MEDIA_ROOT)
    return {str(path.relative_to(root)) for path in root.rglob("*")} if root.exists() else set()


def fast_spelling(name: str, method: str) -> int:
    """The one spelling of a route (index into its four URL patterns) that ``make test`` calls:
    it rotates over the routes, so every root and slash form is exercised there, and the slow
    test calls the other three."""
    return zlib.crc32(f"{method} {name}".encode()) % 4


def run_matrix(name: str, method: str, worlds, *, fast: bool) -> None:
    op = MATRIX.get(name, {}).get(method)
    assert op is not None, f"{method} {name} has no tenant-isolation matrix entry"
    victim, outsider, teammate = worlds
    markers = {"victim": victim.markers, "outsider": outsider.markers}
    pristine = snapshot()
    chosen = fast_spelling(name, method)
    for index, route in enumerate(routes_by_name()[name]):
        if (index == chosen) != fast:
            continue
        legacy = route.route.startswith("api/v1/")
        where = f"{method} /{route.route}"

        with rolled_back():
            own_key = victim.tenant.user_key if op.auth == "user" else victim.tenant.app_key
            response = send(route, method, op, victim.ids, own_key)
            assert response.status_code == op.own, (where, "own", response.content)

        for case in cases_for(op, victim, outsider, teammate, legacy):
            with rolled_back():
                before = pristine
                if case.lock_device_calls:
                    App.objects.filter(pk=victim.tenant.app.pk).update(
                        allow_unauthenticated_device_calls=False
                    )
                    before = snapshot()
                files = media_files()
                response = send(route, method, op, case.ids, case.key)
                after = snapshot()
                assert media_files() == files, (where, case.name, "wrote a file")
            label = (where, case.name)
            assert response.status_code == case.expected, (*label, response.content)
            if case.body is not None:
                assert response.json() == case.body, label
            assert not changed_tables(before, after), (*label, changed_tables(before, after))
            hidden = [m for tenant in case.hidden for m in markers[tenant]]
            assert not leaked_markers(response.content, hidden), (*label, response.content)


@pytest.mark.parametrize(("name", "method"), matrix_params())
def test_tenant_isolation(name, method, worlds):
    """One of the route's four spellings (see fast_spelling)."""
    run_matrix(name, method, worlds, fast=True)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "method"), matrix_params())
def test_tenant_isolation_other_spellings(name, method, worlds):
    """The route's three other spellings: ``/api/v1/<route>``, ``/<route>``, each with and
    without its trailing slash."""
    run_matrix(name, method, worlds, fast=False)


def test_the_fast_matrix_calls_every_spelling_somewhere():
    """Across routes, make test's one spelling per route covers both roots and both slash forms."""
    chosen = {
        (route.route.startswith("api/v1/"), route.slash)
        for name, routes in routes_by_name().items()
        for method in routes[0].methods()
        for index, route in enumerate(routes)
        if index == fast_spelling(name, method)
    }
    assert chosen == {(True, True), (True, False), (False, True), (False, False)}
