"""schemathesis against OneSignal's own description of the classic API (spec 1.0.2).

``../shared/reference/onesignal-openapi-1.0.2.yaml`` is what OneSignal's generated 1.x clients
are built from. Herald claims to answer those clients (onesignal-api.md, opening paragraph and
§10), so requests generated from it are sent to Herald under ``/api/v1`` with ``Authorization:
Bearer <key>`` (§10.2: 1.x clients send Bearer), restricted to the operations Herald implements
(each ``method path`` that Herald's own schema also has). Checks:

- no 5xx, ever;
- a 2xx/3xx status is one OneSignal's description lists for the operation, and its body matches
  the description's schema (``response_schema_conformance``; also for the 4xx it lists);
- a 4xx the description does not list is one of the error statuses of the contract (§2.1, §2.2:
  400, 403, 404, 405, 409, 413, 429; spec 1.0.2 lists almost no errors) with the contract's
  envelope: ``{"errors": [strings]}``, or ``{"success": false}`` (with ``errors``) where §2.1
  says so.

Intentional deviations from the description, each corrected in the loaded copy (never on disk):

1. ``POST /players/csv_export?app_id={app_id}``: the description puts the query string in the
   path; the generated clients send ``app_id`` as a query parameter (§5.5, §10.1 wire traffic),
   which is what this run sends.
2. ``GET /apps``: the description types the 200 body as a string; OneSignal answers an array of
   App objects (§8; spec 1.4.0 ``Apps``), and so does Herald.
3. The description's server is ``https://onesignal.com/api/v1``; Herald serves the same paths
   under ``/api/v1`` (§1.2).

and, in response bodies only (requests are generated from the description as it is):

4. Any property may be ``null``: unset and secret fields are returned as ``null``, not omitted
   (§5.2 last paragraph, §7.1, §8 "present with null"), which spec 1.0.2 never marks nullable.
5. ``writeOnly`` properties may appear: the read model echoes every field accepted on create, as
   OneSignal's own list response does (§7.1).
6. ``success`` is a boolean (§2.1 ``{"success": true}``, §1.5 "Numbers and booleans"); spec
   1.0.2 types it as a string.
7. ``amount_spent`` is a JSON number (§1.5 "Numbers and booleans", §5.2); spec 1.0.2: a string.
8. A notification's ``send_after`` is read back as unix seconds (§1.5 timestamps table, §7.1;
   spec 1.4.0 ``NotificationWithMeta``); spec 1.0.2 reuses the request's date string.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
import yaml
from django.conf import settings as django_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.fuzz.support import APP, LONG, RequestLog, run_all_operations, seed_ids, with_header

REFERENCE = Path(django_settings.BASE_DIR).parent / "shared" / "reference" / "onesignal-openapi-1.0.2.yaml"
if not REFERENCE.exists():
    pytest.skip(f"{REFERENCE} is not beside this checkout", allow_module_level=True)
# §2.1/§2.2: the statuses Herald (like OneSignal) answers with the error envelope.
CONTRACT_ERRORS = {400, 403, 404, 405, 409, 413, 429}
# Deviations 6-8: the JSON type of these properties in response bodies.
RETURNED_TYPES = {"success": "boolean", "amount_spent": "number", "send_after": "integer"}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads a bare ``=`` (the filter relation) as the "value" tag: keep it a string."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def reference_document() -> dict:
    document = yaml.load(REFERENCE.read_text(), _Loader)  # noqa: S506 (a SafeLoader subclass)
    # YAML reads unquoted timestamps in examples as datetimes; JSON Schema knows only strings.
    document = json.loads(json.dumps(document, default=lambda value: value.isoformat()))
    document["servers"] = [{"url": "/api/v1"}]  # deviation 3
    paths = document["paths"]
    # Deviation 1: the query string out of the path, as a query parameter.
    export = paths.pop("/players/csv_export?app_id={app_id}")
    for operation in export.values():
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "app_id":
                parameter["in"] = "query"
    paths["/players/csv_export"] = export
    # Deviation 2: GET /apps answers an array of App objects.
    ok = paths["/apps"]["get"]["responses"]["200"]["content"]["application/json"]
    ok["schema"] = {"type": "array", "items": {"$ref": "#/components/schemas/App"}}
    for item in paths.values():
        for operation in item.values():
            for response in (operation.get("responses") or {}).values():
                for media in (response.get("content") or {}).values():
                    if "schema" in media:
                        media["schema"] = _as_returned(_resolved(media["schema"], document))
    return document


def _resolved(schema, document: dict, depth: int = 0):
    """``schema`` with every ``$ref`` replaced by a copy of its target (deviations 4-8 must not
    touch the request side, which shares the components)."""
    if depth > 20:
        return {}
    if isinstance(schema, list):
        return [_resolved(item, document, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolved(target, document, depth + 1)
    return {key: _resolved(value, document, depth + 1) for key, value in schema.items()}


def _as_returned(schema):
    """Deviations 4-8 on a resolved response schema."""
    if isinstance(schema, list):
        return [_as_returned(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    relaxed = {key: _as_returned(value) for key, value in schema.items() if key != "writeOnly"}
    for name, property_schema in (relaxed.get("properties") or {}).items():
        if name in RETURNED_TYPES:
            property_schema.pop("format", None)
            property_schema["type"] = RETURNED_TYPES[name]
        if "type" in property_schema or "allOf" in property_schema or "oneOf" in property_schema:
            property_schema["nullable"] = True
    if isinstance(relaxed.get("items"), dict) and "type" in relaxed["items"]:
        relaxed["items"]["nullable"] = True
    return relaxed


def herald_operations() -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every operation in Herald's own OneSignal schema."""
    from django.test import Client

    own = Client().get("/api/schema/?format=json").json()
    return {(method.upper(), path) for path, item in own["paths"].items() for method in item}


def load(*, long: bool) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "phases": {"coverage": {"enabled": long}, "stateful": {"enabled": False}},
            "generation": {"database": "none"},
        }
    )
    schema = schemathesis.openapi.from_dict(reference_document(), config=config)
    schema.app = APP
    return schema.include(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in HERALD_OPERATIONS
    )


def contract_status(ctx, response, case) -> bool | None:
    """Undocumented statuses: only the contract's errors, with the contract's envelope (§2.1)."""
    method = case.method.lower()
    if method != case.operation.method.lower():
        # The coverage phase tries the route's other methods: another operation Herald has on
        # the route (in its own schema, checked by test_onesignal_schema), DRF's OPTIONS
        # description, or 405 (§2.2 rule 4).
        if method == "options" or (method.upper(), case.operation.path) in HERALD_OPERATIONS:
            return None
        assert response.status_code == 405 and response.json() == {"errors": ["Method Not Allowed"]}
        return True
    if str(response.status_code) in case.operation.definition.raw.get("responses", {}):
        return True
    assert response.status_code in CONTRACT_ERRORS, (
        f"{response.status_code} is neither in OneSignal's description nor an error of the contract"
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), body
    assert all(isinstance(message, str) for message in body["errors"]), body
    assert body.get("success", False) is False, body
    return True


HERALD_OPERATIONS = herald_operations()
CHECKS = [not_a_server_error, contract_status, content_type_conformance, response_schema_conformance]
short_schema = load(long=False)
long_schema = load(long=True)
SHORT_LOG = RequestLog()
LONG_LOG = RequestLog()


def call(case, world, log: RequestLog) -> None:
    schemes = {
        name for requirement in case.operation.definition.raw.get("security") or [] for name in requirement
    }
    key = world.tenant.user_key if "user_key" in schemes else world.tenant.app_key
    with_header(case, "Authorization", f"Bearer {key}")
    seed_ids(case, world.ids)
    response = case.call()
    log.record(case.operation.label, response.status_code)
    case.validate_response(response, checks=CHECKS)


def test_onesignal_reference_short(onesignal_world):
    # One test for every operation (one fixture setup), a few generated cases each.
    run_all_operations(short_schema, lambda case: call(case, onesignal_world, SHORT_LOG))


@pytest.mark.slow
@long_schema.parametrize()
@LONG
def test_onesignal_reference_long(case, onesignal_world):
    call(case, onesignal_world, LONG_LOG)


def test_onesignal_reference_short_sent_requests():
    if not SHORT_LOG.total:
        pytest.skip("the short run did not run in this session")
    print("short:", SHORT_LOG.summary(), SHORT_LOG.details(), sep="\n")
    # Herald implements all 19 operations of spec 1.0.2: the restriction leaves none out.
    described = sum(
        method in ("get", "put", "post", "patch", "delete")
        for item in reference_document()["paths"].values()
        for method in item
    )
    assert len(SHORT_LOG.requests) == len(list(short_schema.get_all_operations())) == described == 19


@pytest.mark.slow
def test_onesignal_reference_long_sent_at_least_2000_requests():
    if not LONG_LOG.total:
        pytest.skip("the long run did not run in this session")
    print("long:", LONG_LOG.summary(), LONG_LOG.details(), sep="\n")
    assert LONG_LOG.total >= 2000, LONG_LOG.summary()
