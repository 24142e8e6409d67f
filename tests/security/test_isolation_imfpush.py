"""Tenant isolation matrix of ``/imfpush/v1`` (issue 8 §5), generated from the URLconf.

Every route of the ``imfpush`` namespace and every method in its view's ``requirements`` (the
scope each operation needs) is called as:

- ``own``: a token of the tenant's client with the operation's scope and
  ``push.application.<own applicationId>``; the documented 2xx;
- ``other_key``: another organization's token with the operation's scope and
  ``push.application.*``, on the tenant's applicationId: 404 FPWSE0001E (the application is
  unknown outside its organization);
- ``other_app``: the tenant's token (``push.application.*``) on another organization's
  applicationId: 404 FPWSE0001E;
- ``app_scope``: the tenant's token for another application of the same organization: 403;
- ``other_object``: the tenant's token and application, another organization's device, tag,
  subscription, webhook or message id: 404;
- ``no_key``: no token: 401 ``WWW-Authenticate: Bearer``;
- ``revoked_key``: a token whose client's secret was rotated (which ends its tokens): 401;
- ``read_only``: for every write operation, a token with only the matching ``.read`` scope: 403.

Every refused case must leave every table unchanged and show no data of the tenant the caller is
not. Routes that need no token (health, the OpenAPI document and its UI) are listed in ``PUBLIC``
with what they expose; anything else without an entry fails the suite.
"""

from __future__ import annotations

import base64
import functools
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value

from imfpush.clients import confidential_client_create, confidential_client_rotate_secret
from imfpush.models import ConfidentialClient, Subscription
from imfpush.services import mfp_application_create
from tests.conftest import make_tenant
from tests.imfpush.test_settings import _multipart, _Upload, p12_file
from tests.security.support import (
    changed_tables,
    leaked_markers,
    module_data,
    rolled_back,
    snapshot,
    url_patterns,
)

pytestmark = pytest.mark.django_db

PARAMETERS = {
    "application_id": "app",
    "device_id": "device",
    "tag_name": "tag",
    "subscription_id": "subscription",
    "webhook_name": "webhook",
    "message_id": "message",
}
# Needs no token; what each one shows (nothing of any tenant).
PUBLIC = {
    "mfp-health": "database and broker health, no tenant data",
    "mfp-swagger": "the OpenAPI document",
    "mfp-docs": "Swagger UI for the OpenAPI document",
}
PUBLIC_IP = "93.184.216.34"  # an IP literal: the SSRF guard needs no DNS for it
WNS = {
    "clientSecret": "Vex8L9WOFZuj95euaLrvSH7XyoDhLJc7",
    "packageSID": "ms-app://S-1-15-2-2972962901-2322836549-3722629029-1345238579-3987825745-2155616079-650196962",
}


def sms_conf(tag: str) -> dict:
    return {
        "host": PUBLIC_IP,
        "name": f"mark-{tag}-sms",
        "parameters": [{"encode": "true", "name": "to", "value": "x"}],
        "port": "80",
        "programName": "/sendsms",
    }


@functools.cache
def apns_upload() -> tuple[bytes, str]:
    blob, _not_after = p12_file()
    upload = {"certificate": _Upload("apns.p12", blob), "password": "pw", "isSandBox": "true"}
    return _multipart(upload), "multipart/form-data; boundary=BoUnDaRy"


@dataclass(frozen=True)
class Op:
    """One operation. ``path`` query and ``body`` are templates over the case's ids; ``body`` may
    be ``"apns-upload"`` (multipart). ``other_object``: the answer for another organization's
    object ids (None: the operation names no object besides the application)."""

    own: int
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    other_object: int | None = None
    overrides: dict[str, int] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)


ORG_LEVEL = "the operation is on the caller's organization, not on an application"
MATRIX: dict[str, dict[str, Op]] = {
    "mfp-apps": {
        # Another organization's token lists its own applications (and none of the victim's).
        "GET": Op(
            200, overrides={"other_key": 200}, not_applicable={"other_app": ORG_LEVEL, "app_scope": ORG_LEVEL}
        ),
        "POST": Op(
            201,
            body={"applicationId": "matrixapp"},
            not_applicable={
                "other_key": "it creates an application in the caller's organization",
                "other_app": ORG_LEVEL,
                "app_scope": ORG_LEVEL,
            },
        ),
    },
    "mfp-app": {"GET": Op(200), "DELETE": Op(204)},
    "mfp-app-status": {"GET": Op(200), "PUT": Op(200, body={"enabled": False})},
    "mfp-devices": {
        "GET": Op(200),
        "POST": Op(201, body={"deviceId": "matrix-device", "token": "matrix-token", "platform": "G"}),
    },
    "mfp-device": {
        "GET": Op(200, other_object=404),
        "PUT": Op(200, body={"userId": "matrix-user"}, other_object=404),
        "DELETE": Op(204, other_object=404),
    },
    "mfp-tags": {"GET": Op(200), "POST": Op(201, body={"name": "MatrixTag"})},
    "mfp-tag": {
        "GET": Op(200, other_object=404),
        "PUT": Op(200, body={"description": "renamed"}, other_object=404),
        "DELETE": Op(204, other_object=404),
    },
    "mfp-subscriptions": {
        "GET": Op(200, query={"deviceId": "{device}"}),
        "POST": Op(201, body={"deviceId": "{device}", "tagName": "{spare_tag}"}, other_object=404),
        "DELETE": Op(204, query={"deviceId": "{device}", "tagName": "{tag}"}, other_object=404),
    },
    "mfp-subscription": {"GET": Op(200, other_object=404), "DELETE": Op(204, other_object=404)},
    "mfp-settings": {"GET": Op(200)},
    "mfp-settings-apns": {"GET": Op(200), "PUT": Op(200, body="apns-upload"), "DELETE": Op(204)},
    "mfp-settings-apns-cert": {"GET": Op(200)},
    "mfp-settings-gcm": {
        "GET": Op(200),
        "PUT": Op(200, body={"senderId": "123456789", "apiKey": "AxBNGYUwehjokn"}),
        "DELETE": Op(204),
    },
    "mfp-settings-gcm-public": {"GET": Op(200)},
    "mfp-settings-wns": {"GET": Op(200), "PUT": Op(200, body=WNS), "DELETE": Op(204)},
    "mfp-settings-sms": {"GET": Op(200), "PUT": Op(200, body=sms_conf("new")), "DELETE": Op(204)},
    "mfp-webhooks": {
        "GET": Op(200),
        "POST": Op(
            201,
            body={"name": "matrixhook", "url": f"https://{PUBLIC_IP}/new", "eventTypes": "onDeviceRegister"},
        ),
        # PUT on the collection names the webhook in the body: another organization's name is 404.
        "PUT": Op(
            200,
            body={"name": "{webhook}", "url": f"https://{PUBLIC_IP}/changed", "eventTypes": "onSubscribe"},
            other_object=404,
        ),
    },
    "mfp-webhook": {
        "GET": Op(200, other_object=404),
        "PUT": Op(
            200, body={"url": f"https://{PUBLIC_IP}/changed", "eventTypes": "onSubscribe"}, other_object=404
        ),
        "DELETE": Op(204, other_object=404),
    },
    "mfp-messages": {"POST": Op(202, body={"message": {"alert": "Hi"}})},
    "mfp-messages-bulk": {"POST": Op(202, body=[{"message": {"alert": "Hi"}}])},
    "mfp-message": {"GET": Op(200, other_object=404), "DELETE": Op(204, other_object=404)},
}


# --- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    application_id: str
    ids: dict[str, str]
    markers: list[str]
    client: tuple[str, str]  # (client_id, secret), allowed every scope
    revoked_token: str


def token(client: tuple[str, str], scope: str) -> str:
    """An access token of ``client`` with ``scope``, as the token endpoint stores it (only its
    SHA-256, through django-oauth-toolkit's own ``set_token_value``). Minted directly because the
    matrix needs several per operation; the token endpoint has its own tests
    (tests/imfpush/test_token_and_apps.py) and issues the world's first token below."""
    model = get_access_token_model()
    access = model(
        application=ConfidentialClient.objects.get(client_id=client[0]),
        scope=scope,
        expires=timezone.now() + timedelta(hours=1),
    )
    raw = secrets.token_urlsafe(30)
    set_token_value(access, raw)
    access.save()
    return raw


def token_from_endpoint(client: tuple[str, str], scope: str) -> str:
    basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    response = CLIENT.post(
        "/mfp/api/az/v1/token",
        {"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def mfp(method: str, path: str, bearer: str | None, body: Any = None, query: dict | None = None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    if body == "apns-upload":
        data, content_type = apns_upload()
    elif body is not None:
        data, content_type = orjson.dumps(body), "application/json"
    else:
        data, content_type = b"", "application/json"
    return CLIENT.generic(method, path, data=data, content_type=content_type, headers=headers)


def populate(tag: str) -> World:
    """An MFP application with one of everything (settings included), named with markers."""
    tenant = make_tenant()
    application_id = f"{tag}app"
    mfp_application_create(organization=tenant.organization, body={"applicationId": application_id})
    mfp_application_create(organization=tenant.organization, body={"applicationId": f"{tag}app2"})
    client_id = f"{tag}-client"
    _client, secret = confidential_client_create(organization=tenant.organization, client_id=client_id)
    client = (client_id, secret)
    everything = token_from_endpoint(client, f"{_ALL_SCOPES} push.application.*")
    base = f"/imfpush/v1/apps/{application_id}"
    device = f"mark-{tag}-device"
    setup = [
        ("POST", "devices", {"deviceId": device, "token": f"mark-{tag}-token", "platform": "G"}),
        ("POST", "tags", {"name": f"Tag{tag}", "description": f"mark-{tag}-tagdesc"}),
        ("POST", "tags", {"name": f"Spare{tag}"}),
        ("POST", "subscriptions", {"deviceId": device, "tagName": f"Tag{tag}"}),
        (
            "POST",
            "webhooks",
            {
                "name": f"hook{tag}",
                "url": f"https://{PUBLIC_IP}/mark-{tag}-hook",
                "eventTypes": "onDeviceRegister",
            },
        ),
        ("POST", "messages", {"message": {"alert": f"mark-{tag}-alert"}}),
        ("PUT", "settings/apnsConf", "apns-upload"),
        ("PUT", "settings/gcmConf", {"senderId": "123456789", "apiKey": "AxBNGYUwehjokn"}),
        ("PUT", "settings/wnsConf", WNS),
        ("PUT", "settings/smsConf", sms_conf(tag)),
    ]
    created = {}
    for method, path, body in setup:
        response = mfp(method, f"{base}/{path}", everything, body)
        assert response.status_code in (200, 201, 202), (path, response.content)
        created[path] = response
    # Rotating a client's secret is how the dashboard revokes its tokens.
    revoked_client, revoked_secret = confidential_client_create(
        organization=tenant.organization, client_id=f"{tag}-revoked"
    )
    revoked_token = token_from_endpoint(
        (revoked_client.client_id, revoked_secret), f"{_ALL_SCOPES} push.application.*"
    )
    confidential_client_rotate_secret(client=revoked_client)
    return World(
        application_id=application_id,
        ids={
            "app": application_id,
            "device": device,
            "tag": f"Tag{tag}",
            "spare_tag": f"Spare{tag}",
            "subscription": str(Subscription.objects.get(tag__name=f"Tag{tag}").pk),
            "webhook": f"hook{tag}",
            "message": created["messages"].json()["messageId"],
        },
        markers=[f"mark-{tag}-{what}" for what in ("token", "tagdesc", "hook", "alert", "sms")],
        client=client,
        revoked_token=revoked_token,
    )


CLIENT = Client()
_ALL_SCOPES = " ".join(
    sorted(
        {
            requirement.scope
            for route in url_patterns("imfpush")
            for requirement in getattr(route.view_class, "requirements", {}).values()
        }
    )
)


@pytest.fixture(scope="module")
def module_worlds(django_db_setup, django_db_blocker):
    with module_data(django_db_blocker):
        yield populate("victim"), populate("outsider")


@pytest.fixture
def worlds(module_worlds, db):
    return module_worlds


# --- the cases ------------------------------------------------------------------------------------


def requirement_of(route, method: str):
    return route.view_class.requirements[method]


@dataclass
class Case:
    name: str
    ids: dict[str, str]
    token: str | None
    expected: int
    code: str | None
    hidden: tuple[str, ...] = ("victim", "outsider")


def app_scope(route, world: World) -> str:
    """``push.application.<id>`` for an application's route; ``push.application.*`` for the
    organization-level ones (``/apps``), which need it (mobilefirst-push-api.md §2.5)."""
    if "application_id" in route.parameters():
        return f"push.application.{world.application_id}"
    return "push.application.*"


def cases_for(route, method: str, op: Op, victim: World, outsider: World) -> list[Case]:
    """The refused cases of one operation; tokens are issued only for the cases that apply."""
    scope = requirement_of(route, method).scope
    own_app = app_scope(route, victim)
    mine, theirs = victim.client, outsider.client
    specs = [
        ("other_key", victim.ids, (theirs, f"{scope} push.application.*"), 404, "FPWSE0001E", ("victim",)),
        ("other_app", outsider.ids, (mine, f"{scope} push.application.*"), 404, "FPWSE0001E", ("outsider",)),
        ("app_scope", victim.ids, (mine, f"{scope} {own_app}2"), 403, "FPWSE9002E", ("victim", "outsider")),
        ("no_key", victim.ids, None, 401, "FPWSE9001E", ("victim", "outsider")),
        ("revoked_key", victim.ids, victim.revoked_token, 401, "FPWSE9001E", ("victim", "outsider")),
    ]
    if scope.endswith(".write"):
        read_only = (mine, f"{scope.removesuffix('.write')}.read {own_app}")
        specs.append(("read_only", victim.ids, read_only, 403, "FPWSE9002E", ("victim", "outsider")))
    if op.other_object is not None:
        mixed = {**outsider.ids, "app": victim.application_id}
        specs.append(
            ("other_object", mixed, (mine, f"{scope} {own_app}"), op.other_object, None, ("outsider",))
        )
    cases = []
    for name, ids, credential, expected, code, hidden in specs:
        if name in op.not_applicable:
            continue
        bearer = token(*credential) if isinstance(credential, tuple) else credential
        if name in op.overrides:
            expected, code = op.overrides[name], None
        cases.append(Case(name, ids, bearer, expected, code, hidden))
    return cases


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str) and template != "apns-upload":
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def send(route, method: str, op: Op, ids: dict[str, str], bearer: str | None):
    path = route.path(**{name: ids[PARAMETERS[name]] for name in route.parameters()})
    body = fill(op.body, ids)
    query = {k: v.format(**ids) for k, v in op.query.items()}
    return mfp(method, path, bearer, body, query)


def routes_by_name() -> dict[str, list]:
    grouped: dict[str, list] = {}
    for route in url_patterns("imfpush"):
        grouped.setdefault(route.name, []).append(route)
    return grouped


def methods_of(route) -> list[str]:
    return list(getattr(route.view_class, "requirements", {}))


def matrix_params() -> list:
    return [
        pytest.param(name, method, id=f"{method} {name}")
        for name, routes in routes_by_name().items()
        if name not in PUBLIC
        for method in methods_of(routes[0])
    ]


# --- the tests ------------------------------------------------------------------------------------


def test_every_route_has_a_matrix_entry():
    grouped = routes_by_name()
    missing = [
        f"{method} {name}"
        for name, routes in grouped.items()
        if name not in PUBLIC
        for method in methods_of(routes[0])
        if method not in MATRIX.get(name, {})
    ]
    assert not missing, f"/imfpush/v1 routes without a tenant-isolation matrix entry: {missing}"
    for name, routes in grouped.items():
        view = routes[0].view_class
        if name in PUBLIC:
            assert getattr(view, "authenticated", False) is False, (
                f"{name} is listed as public but needs a token"
            )
        else:
            assert getattr(view, "authenticated", False) is True and methods_of(routes[0]), (
                f"{name}: no token, no scopes"
            )
        assert len({r.view_class for r in routes}) == 1, name
        assert {p for r in routes for p in r.parameters()} <= set(PARAMETERS), name
    stale = [name for name in MATRIX if name not in grouped]
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


@pytest.mark.parametrize(("name", "method"), matrix_params())
def test_tenant_isolation(name, method, worlds):
    op = MATRIX.get(name, {}).get(method)
    assert op is not None, f"{method} {name} has no tenant-isolation matrix entry"
    victim, outsider = worlds
    markers = {"victim": victim.markers, "outsider": outsider.markers}
    routes = routes_by_name()[name]
    # Both spellings (with and without the trailing slash) serve the same view: the refused
    # cases go to one and the own call to the other, so both are exercised.
    plain = next(r for r in routes if not r.slash)
    slashed = next(r for r in routes if r.slash)
    scope = requirement_of(plain, method).scope

    with rolled_back():
        response = send(
            slashed, method, op, victim.ids, token(victim.client, f"{scope} {app_scope(plain, victim)}")
        )
        assert response.status_code == op.own, (method, slashed.route, "own", response.content)

    cases = cases_for(plain, method, op, victim, outsider)  # issues the cases' tokens first
    before = snapshot()
    for case in cases:
        with rolled_back():
            response = send(plain, method, op, case.ids, case.token)
            after = snapshot()
        label = (method, plain.route, case.name)
        assert response.status_code == case.expected, (*label, response.content)
        if case.code is not None:
            assert response.json()["code"] == case.code, (*label, response.content)
        assert not changed_tables(before, after), (*label, changed_tables(before, after))
        hidden = [m for tenant in case.hidden for m in markers[tenant]]
        assert not leaked_markers(response.content, hidden), (*label, response.content)
