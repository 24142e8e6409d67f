"""The OpenAPI document of /imfpush/v1 (GET /imfpush/v1/swagger.json), separate from OneSignal's."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema

from imfpush import urls
from imfpush.api.base import MfpView
from imfpush.schema import SCHEMA_SETTINGS

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "delete")


def document() -> dict:
    response = Client().get("/imfpush/v1/swagger.json", headers={"Authorization": "Bearer whatever"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def mfp_routes() -> list[tuple[str, type[MfpView]]]:
    """Every /imfpush/v1 operation route in the URLconf (each once, without its slash twin)."""
    routes = []
    for pattern in urls.urlpatterns:
        view = getattr(getattr(pattern, "callback", None), "cls", None)
        if not isinstance(pattern, URLPattern) or view is None or not issubclass(view, MfpView):
            continue
        route = str(pattern.pattern)
        if route.endswith("/"):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + camel(m[1]) + "}", route)
        routes.append((path, view))
    return routes


def test_served_without_authentication_valid_and_warning_free():
    schema = document()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["servers"] == [{"url": "http://testserver/imfpush/v1"}]
    GENERATOR_STATS.reset()
    with patched_settings(SCHEMA_SETTINGS):
        SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS, "schema generation emitted warnings or errors"


def test_every_route_and_method_is_documented_with_its_scopes():
    schema = document()
    routes = mfp_routes()
    assert len(routes) >= 10
    documented = set()
    for path, view in routes:
        assert path in schema["paths"], path
        for method in METHODS:
            if not hasattr(view, method):
                continue
            operation = schema["paths"][path].get(method)
            assert operation is not None, f"{method.upper()} {path}"
            documented.add((path, method))
            if not view.authenticated:
                assert "security" not in operation
                continue
            requirement = view.requirements[method.upper()]
            if "{applicationId}" in path or method in ("post", "put"):
                app_scope = "push.application.{applicationId}"
            else:
                app_scope = "push.application.*"
            alternatives = [entry["mfpOAuth2"] for entry in operation["security"]]
            assert alternatives[0] == [requirement.scope, app_scope], f"{method.upper()} {path}"
            for alias in requirement.aliases:
                assert [alias, app_scope] in alternatives
            if requirement.mobile_client:
                assert ["push.mobileclient", app_scope] in alternatives
            assert {"401", "403", "406"} <= set(operation["responses"])
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/MfpError"
            }
    # Nothing else is documented: no slash twins, no non-MFP views (the schema view itself).
    every = {(path, method) for path, item in schema["paths"].items() for method in item if method in METHODS}
    assert every == documented


def test_oauth2_client_credentials_scheme():
    scheme = document()["components"]["securitySchemes"]["mfpOAuth2"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://testserver/mfp/api/az/v1/token"
    assert {"messages.write", "devices.read", "push.application.*", "push.mobileclient"} <= set(
        flow["scopes"]
    )


def test_settings_media_types_and_contract_status_codes():
    paths = document()["paths"]
    settings = "/apps/{applicationId}/settings"
    cert = paths[f"{settings}/apnsCert"]["get"]["responses"]["200"]["content"]
    assert list(cert) == ["application/octet-stream"]
    upload = paths[f"{settings}/apnsConf"]["put"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(upload["properties"]) == {"certificate", "password", "isSandBox"}
    assert paths[f"{settings}/gcmConf"]["delete"]["responses"].keys() >= {"204"}
    assert "201" in paths["/apps"]["post"]["responses"] and "409" in paths["/apps"]["post"]["responses"]
    assert paths["/apps"]["get"]["security"] == [{"mfpOAuth2": ["apps.read", "push.application.*"]}]
    parameter = paths["/apps/{applicationId}"]["get"]["parameters"]
    assert any(p["name"] == "applicationId" and p["in"] == "path" for p in parameter)
    listing = {p["name"] for p in paths["/apps"]["get"]["parameters"]}
    assert {"offset", "size", "expand", "filter"} <= listing
    if "/apps/{applicationId}/messages" in paths:
        assert "202" in paths["/apps/{applicationId}/messages"]["post"]["responses"]


def test_the_onesignal_schema_leaves_imfpush_out():
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/players" in paths
    assert not [path for path in paths if path.startswith("/imfpush")]


def test_swagger_ui_is_mounted():
    response = Client().get("/imfpush/v1/docs/")
    assert response.status_code == 200
    assert "/imfpush/v1/swagger.json" in response.content.decode()
