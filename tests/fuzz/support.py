"""Shared parts of the schemathesis runs: the app in-process, the checks, id seeding, counting.

The app is Django's own ``WSGIHandler`` behind schemathesis' WSGI transport, so every request
goes through the real middleware stack, URL routing, authentication and exception handling, on
the test's database connection (the fixtures' rows are visible, and everything is rolled back).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# No 5xx, and the status code, media type, headers and body are the ones the schema declares.
# The other built-in checks test authentication and input strictness (item 5 and 6 of issue 8
# cover those), or expect a schema-valid body to be accepted, which random ids cannot promise.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def load(path: str, *, long: bool) -> schemathesis.BaseSchema:
    """The schema served at ``path``, for the short or the long run.

    Both generate schema-valid and schema-violating requests. The long run adds schemathesis'
    coverage phase (boundary values, missing and mistyped parameters, wrong methods for every
    operation, several thousand requests on its own); the short run keeps to a few examples per
    operation. Neither writes an example database into the working tree.
    """
    config = schemathesis.Config.from_dict(
        {
            "phases": {"coverage": {"enabled": long}, "stateful": {"enabled": False}},
            "generation": {"database": "none"},
        }
    )
    return schemathesis.openapi.from_wsgi(path, APP, config=config)


# Short form (make test): a fixed sequence, few examples per operation, no example database.
SHORT = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
# Long form (make test-all): random, enough examples per operation for thousands of requests.
LONG = settings(
    max_examples=70,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


class InProcessApp:
    """Django's ``WSGIHandler``, without closing the database connection after each request.

    Django closes the connection when a request ends (``close_old_connections``), which would
    end the test's transaction; the test client unhooks it for the same reason, and so does this.
    """

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()  # sends request_finished
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)


APP = InProcessApp()


def without_rate_limits(django_settings) -> None:
    """Rate limits would answer 429 to most of a fuzzing run, which is valid but tests nothing."""
    django_settings.HERALD_RATE_LIMITS = {
        bucket: "1000000/s" for bucket in django_settings.HERALD_RATE_LIMITS
    }


def run_all_operations(schema: schemathesis.BaseSchema, call: Callable[[Any], None]) -> None:
    """The short run: every operation of ``schema`` in one test, with ``SHORT`` settings each.

    One pytest test instead of one per operation, so the fixtures are built once (each costs
    about half a second). Each operation mixes schema-valid and schema-violating cases; every
    operation runs even when an earlier one fails, and the failures are reported together.
    """
    failures: dict[str, BaseException] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletes last, the widest (the application itself) at the very end: the rows they remove
    # are what the other operations reach.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", -op.path.count("/")))
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @SHORT
        @given(case=cases)
        def run(case) -> None:
            call(case)

        try:
            run()
        except Exception as error:
            failures[operation.label] = error
    if failures:
        pytest.fail("\n\n".join(f"{label}:\n{error}" for label, error in failures.items()), pytrace=False)


class RequestLog:
    """How many requests each run sent, and their status codes."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.by_operation: Counter[tuple[str, int]] = Counter()

    def record(self, label: str, status: int) -> None:
        self.requests[label] += 1
        self.statuses[status] += 1
        self.by_operation[(label, status)] += 1

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return f"{self.total} requests over {len(self.requests)} operations ({codes})"

    def details(self) -> str:
        lines = []
        for label in sorted(self.requests):
            codes = {code: n for (name, code), n in sorted(self.by_operation.items()) if name == label}
            lines.append(f"{label}: {self.requests[label]} {codes}")
        return "\n".join(lines)


ADDED_WHEN_MISSING = ("app_id", "organization_id")


def body_properties(case: Any) -> set[str]:
    """The property names the operation's JSON request body declares (one ``$ref`` deep)."""
    content = (case.operation.definition.raw.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema") or {}
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = case.operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return set(schema.get("properties") or ())


def seed_ids(case: Any, known: Mapping[str, list[str]], share: float = 0.75) -> None:
    """Replace generated ids by ids of rows that exist, in ``share`` of the cases.

    Random strings for ``app_id`` or ``player_id`` reach only the 400/404 branches; real ones
    reach the code behind them. Only string values are replaced, so type-violating values of the
    negative cases stay as generated. The choice depends on the case only (not on a global
    random state), so Hypothesis replays and shrinks the same request.
    """
    rng = random.Random(repr((case.operation.label, case.path_parameters, case.query, case.body)))

    def pick(name: str, value: Any) -> Any:
        if name in known and isinstance(value, str) and rng.random() < share:
            return rng.choice(known[name])
        return value

    if case.path_parameters:
        case.path_parameters = {name: pick(name, value) for name, value in case.path_parameters.items()}
    if case.query:
        case.query = {name: pick(name, value) for name, value in case.query.items()}
    if isinstance(case.body, dict):
        body = {name: pick(name, value) for name, value in case.body.items()}
        # Tenant ids the schema leaves optional (app_id may come in the query string instead,
        # organization_id defaults to the key's) are added as often as they are replaced.
        declared = body_properties(case)
        for name in ADDED_WHEN_MISSING:
            if name in known and name in declared and name not in body and rng.random() < share:
                body[name] = rng.choice(known[name])
        case.body = body


def with_header(case: Any, name: str, value: str) -> None:
    case.headers = {**(case.headers or {}), name: value}
